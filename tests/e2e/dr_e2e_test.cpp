// Disaster recovery end to end (docs/runbook.md, "Disaster recovery"), with real binaries and
// the demo app under load, each recovery timed for the runbook:
// - the server's host is lost (store, keys, everything in its data directory but the agent's
//   host): a new one is made from the newest backup and its keys kept apart, while the app
//   keeps serving;
// - an agent's host is lost (its process, its instances and its state): a new agent with the
//   same name and token gets the app back from the server without a deployment.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kDrApp =
    demo_app({.instances = 1, .stop_grace = "2s", .progress_deadline = "15s"});

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(DisasterRecoveryE2E, ServerHostLostIsRebuiltFromTheBackupAndItsKeysWhileTheAppServes) {
  Cluster c("drhost", kDrApp);
  c.start_server();
  c.release("v1");
  c.release("v2");
  Json secret{{"value", "s3cr3t-for-the-new-host"}};
  ASSERT_TRUE(c.api("PUT", "/api/v1/apps/web/envs/dev/secrets/DB_PASSWORD", &secret).ok());
  ASSERT_EQ(c.wait_final(c.deploy("v1", "dev")).value("state", ""), "succeeded") << c.log();
  Load load;
  struct Finish {
    Load& l;
    ~Finish() { l.finish(); }  // its threads are joined whichever way the test ends
  } finish_load{load};
  load.start(c.app_port(), 2, 240, 100'000);
  ASSERT_TRUE(load.wait_more(100));

  // The newest backup, its keys kept apart (as they would be, off the host).
  const auto backups = c.dir() / "offsite-backups", keys = c.dir() / "offsite-keys";
  int rc = 0;
  std::string out = c.cli("--json backup create --config " + c.config() + " --to " +
                              backups.string() + " --keys-to " + keys.string(),
                          &rc);
  ASSERT_EQ(rc, 0) << out;
  auto made = parse_json(out);
  ASSERT_TRUE(made.ok()) << out;
  const std::string backup = made->value("dir", "");
  ASSERT_FALSE(backup.empty()) << out;
  // The keys of this backup, in their own folder under --keys-to.
  const std::string backup_keys = (*made)["manifest"].value("keys_dir", "");
  ASSERT_FALSE(backup_keys.empty()) << out;
  ASSERT_FALSE(std::filesystem::exists(std::filesystem::path(backup) / "keys"));

  // The host is gone: the server dies at once, and its data directory with it (the store,
  // secrets.key, audit.key, locks). The agent stands for another host: it keeps serving,
  // with its own files (its folder, its token, its log).
  c.stop_server(SIGKILL);
  const auto data = c.dir() / "data";
  const std::set<std::string> agent_host = {"agent", "agent.token", "agent.log"};
  for (const auto& e : std::filesystem::directory_iterator(data))
    if (!agent_host.count(e.path().filename().string())) std::filesystem::remove_all(e.path());
  ASSERT_FALSE(std::filesystem::exists(data / "secrets.key"));
  ASSERT_TRUE(load.wait_more(100)) << "the app stopped serving without its server";

  // The new host: restore, then start the server.
  const auto t0 = std::chrono::steady_clock::now();
  out =
      c.cli("backup restore " + backup + " --keys " + backup_keys + " --config " + c.config(), &rc);
  const double restore_s = seconds_since(t0);
  ASSERT_EQ(rc, 0) << out;
  c.start_server();
  bool ready = testing::wait_until(
      [&] {
        auto r = c.api("GET", "/api/v1/deployments?app=web");
        return r.ok() && (*r)["deployments"].is_array() && !(*r)["deployments"].empty();
      },
      std::chrono::seconds(60));
  const double ready_s = seconds_since(t0);
  ASSERT_TRUE(ready) << c.log();
  std::cout << "[ measure ] server host rebuilt: restore " << restore_s
            << " s, restore to a server answering with its deployments " << ready_s << " s\n";

  // What the backup held: the deployment, the secret (it decrypts with the kept key), an
  // unbroken audit chain; and the new server drives the agent: v2 goes out.
  out = c.cli("secrets list web --env dev", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("DB_PASSWORD"), std::string::npos) << out;
  out = c.cli("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(c.wait_final(c.deploy("v2", "dev")).value("state", ""), "succeeded") << c.log();
  load.finish();
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors.front());
  EXPECT_EQ(load.status_count(200), load.requests) << "every request answered 200";
}

TEST(DisasterRecoveryE2E, AgentHostLostGetsItsAppsBackFromTheServerWithoutADeployment) {
  Cluster c("dragent", kDrApp);
  c.start_server();
  c.release("v1");
  ASSERT_EQ(c.wait_final(c.deploy("v1", "dev")).value("state", ""), "succeeded") << c.log();
  auto before = c.api("GET", "/api/v1/deployments?app=web");
  ASSERT_TRUE(before.ok());

  // The host is gone: its agent and instances die at once and its state with them.
  const int agent = c.agent_pid();
  ASSERT_GT(agent, 0);
  std::vector<int> instances;
  {
    std::ifstream state(c.dir() / "data/agent/agent-state.json");
    std::string text((std::istreambuf_iterator<char>(state)), {});
    auto j = parse_json(text);
    ASSERT_TRUE(j.ok()) << text;
    for (const auto& app : (*j)["apps"])
      for (const auto& i : app["instances"])
        if (int pid = i["status"].value("pid", 0); pid > 0) instances.push_back(pid);
  }
  ASSERT_FALSE(instances.empty());
  // The state goes first: the server restarts its agent at once, and a new agent that found
  // the old state would re-adopt, as on the same host.
  std::filesystem::remove(c.dir() / "data/agent/agent-state.json");
  const auto t0 = std::chrono::steady_clock::now();
  kill(agent, SIGKILL);
  for (int pid : instances) kill(-pid, SIGKILL);

  // The replacement (here the server starts its local agent again, as systemd would a
  // remote one) knows nothing; the server finds the app missing and sends it again.
  bool serving = testing::wait_until(
      [&] {
        HttpClient h(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{1000, 1 << 20});
        auto r = h.request("GET", "/");
        return r.ok() && r->status == 200;
      },
      std::chrono::seconds(90));
  const double back_s = seconds_since(t0);
  ASSERT_TRUE(serving) << c.log();
  std::cout << "[ measure ] agent host lost: the app served again after " << back_s << " s\n";
  EXPECT_NE(c.agent_pid(), agent);
  // No deployment was needed: the list is the same.
  auto after = c.api("GET", "/api/v1/deployments?app=web");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ((*after)["deployments"].size(), (*before)["deployments"].size()) << after->dump(2);
}

}  // namespace
}  // namespace ferry::e2e
