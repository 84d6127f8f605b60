// Agent restarts under steady load with real binaries: SIGHUP and `ferry agent --takeover`
// hand the router's listening socket to a new agent process (no failed request), and an
// agent killed with -9 is restarted by the server and serves again (measured, printed).
#include <fstream>

#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kRestartApp =
    demo_app({.instances = 2, .progress_deadline = "15s"}, R"(    strategy:
      canary:
        steps:
          - weight: 100
)");

// Pids of the agent processes serving this cluster (command line "agent --listen ADDR"),
// without their keepers (agent/keeper.h: the same command line, named "ferry-keeper").
std::set<int> agent_pids(Cluster& c) {
  std::string out;
  run("pgrep -f '[a]gent --listen 127.0.0.1:" + std::to_string(c.agent_port()) + "'", &out);
  std::set<int> pids;
  std::istringstream in(out);
  int pid;
  while (in >> pid) {
    // A process that exited but is not reaped yet (its parent, the server, reaps it) is gone.
    const bool keeper = read_proc_file(pid, "stat").find("(ferry-keeper)") != std::string::npos;
    if (const char st = proc_state(pid); st != 0 && st != 'Z' && !keeper) pids.insert(pid);
  }
  return pids;
}

int parent_pid(int pid) {
  const std::string line = read_proc_file(pid, "stat");
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string state;
  int ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

std::set<int> instance_pids(Cluster& c) {
  std::set<int> pids;
  for (int i = 0; i < 500; ++i) {
    auto s = c.api("GET", "/api/v1/apps/web/envs/dev/status");
    if (s.ok() && !(*s)["agents"][0].contains("error")) {
      for (const auto& inst : (*s)["agents"][0]["instances"]) pids.insert(inst.value("pid", 0));
      return pids;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pids;
}

// Waits until the agent processes are exactly one that is not `old`; returns it or 0.
int wait_replaced(Cluster& c, int old, int seconds = 30) {
  for (int i = 0; i < seconds * 50; ++i) {
    auto pids = agent_pids(c);
    if (pids.size() == 1 && !pids.count(old)) return *pids.begin();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

void expect_no_failure(Load& l, const char* what) {
  EXPECT_GT(l.requests, 50u) << what;
  EXPECT_EQ(l.transport_errors, 0u) << what << ": " << (l.errors.empty() ? "" : l.errors[0]);
  std::string statuses;
  for (const auto& [code, n] : l.by_status)
    statuses += std::to_string(code) + ":" + std::to_string(n) + " ";
  EXPECT_EQ(l.status_count(200), l.requests) << what << ": " << statuses;
}

TEST(AgentRestartE2E, SighupAndTakeoverHandTheRouterOverWithNoFailedRequestUnderLoad) {
  Cluster c("handoff", kRestartApp);
  c.start_server();
  c.release("v1");
  Json d1 = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();
  const std::set<int> instances = instance_pids(c);
  ASSERT_EQ(instances.size(), 2u);
  auto pids = agent_pids(c);
  ASSERT_EQ(pids.size(), 1u);
  const int first = *pids.begin();

  // 1. SIGHUP: the agent starts its successor, which takes the sockets over.
  Load hup;
  hup.start(c.app_port(), 4, 60, 100000);
  ASSERT_TRUE(hup.wait_more(50));
  ASSERT_EQ(kill(first, SIGHUP), 0);
  const int second = wait_replaced(c, first);
  ASSERT_NE(second, 0) << "the agent was not replaced after SIGHUP";
  EXPECT_TRUE(hup.wait_more(200));  // served by the successor
  hup.finish();
  expect_no_failure(hup, "SIGHUP");
  EXPECT_EQ(instance_pids(c), instances) << "instances were restarted instead of handed over";

  // 2. An upgrade by hand: the new binary started with --takeover.
  Load upgrade;
  upgrade.start(c.app_port(), 4, 60, 100000);
  ASSERT_TRUE(upgrade.wait_more(50));
  ProcessLaunch l;
  const std::string data = (c.dir() / "data").string();
  l.argv = {
      ferry_bin(),  "agent",         "--listen",     "127.0.0.1:" + std::to_string(c.agent_port()),
      "--data-dir", data + "/agent", "--token-file", data + "/agent.token",
      "--takeover"};
  l.log_path = (c.dir() / "agent-takeover.log").string();
  auto third = start_process(l);
  ASSERT_TRUE(third.ok()) << third.status().message();
  // The new binary's agent process, which its keeper (the process started here) forked.
  const int third_agent = wait_replaced(c, second);
  ASSERT_NE(third_agent, 0);
  EXPECT_EQ(parent_pid(third_agent), third->pid);
  EXPECT_TRUE(upgrade.wait_more(200));  // served by the new binary
  upgrade.finish();
  expect_no_failure(upgrade, "--takeover");
  EXPECT_EQ(instance_pids(c), instances);

  // The server still drives the agent: a deployment after the restarts succeeds.
  Json rel{{"app", "web"}, {"version", "v2"}, {"git_sha", "abcv2"}, {"env", Json::object()}};
  ASSERT_TRUE(c.api("POST", "/api/v1/releases", &rel).ok());
  Json body{{"app", "web"}, {"env", "dev"}, {"release", "v2"}};
  auto d2 = c.api("POST", "/api/v1/deployments", &body);
  ASSERT_TRUE(d2.ok());
  EXPECT_EQ(c.wait_final(d2->value("id", "")).value("state", ""), "succeeded") << c.log();
}

TEST(AgentRestartE2E, AgentKilledWithSigkillUnderLoadServesAgainQuickly) {
  Cluster c("killed", kRestartApp);
  c.start_server();
  c.release("v1");
  Json d1 = c.wait_final(c.deploy("v1"));
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();
  const std::set<int> instances = instance_pids(c);
  auto pids = agent_pids(c);
  ASSERT_EQ(pids.size(), 1u);
  Load load;
  load.start(c.app_port(), 2, 30, 100000);
  ASSERT_TRUE(load.wait_more(30));
  ASSERT_EQ(kill(*pids.begin(), SIGKILL), 0);
  const auto killed = std::chrono::steady_clock::now();
  double back_ms = -1;
  for (int i = 0; i < 5000; ++i) {
    HttpClient h(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{500, 1 << 20});
    auto r = h.request("GET", "/");
    if (r.ok() && r->status == 200) {
      back_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed)
                    .count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_TRUE(load.wait_more(30));
  load.finish();
  ASSERT_GE(back_ms, 0) << "router did not come back";
  std::cout << "[ measure ] router back " << back_ms << " ms after kill -9 of the agent; "
            << load.transport_errors << " of " << load.requests << " requests failed\n";
  EXPECT_EQ(instance_pids(c), instances) << "instances were restarted instead of re-adopted";
  EXPECT_EQ(agent_pids(c).size(), 1u);
}

}  // namespace
}  // namespace ferry::e2e
