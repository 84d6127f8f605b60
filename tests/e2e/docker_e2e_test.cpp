// Containers end to end, with a real dockerd (tests/docker_test_env.h): the demo app as a
// FROM-scratch image made from this build's binary, deployed by `ferry server` through its
// local agent's docker runtime. The same scenarios as for processes (deploy_e2e_test.cpp):
// a canary under load with no failed request, a bad canary rolled back, the agent killed
// with -9 re-adopting the same containers, a container killed from outside restarted. And
// deploy/Dockerfile built the same way: it starts, runs as non-root, answers /health/live,
// and `ferry --version` inside prints the version.
#include "docker_test_env.h"
#include "e2e/e2e_env.h"
#include "test_skip.h"

namespace ferry::e2e {
namespace {

using testing::TestDockerd;

constexpr const char* kDockerE2EImage = "ferry-e2e-demo:1";

const char* kDockerApp = R"(    port: @APP_PORT@
    instances: 2
    run:
      image: ferry-e2e-demo:1
      pull: never
      command: ["/usr/local/bin/ferry-demo-app", "--port", "${PORT}", "--version", "${VERSION}"]
      stop_grace: 3s
      resources: {cpus: 1, memory: 512MB}
    checks:
      readiness:
        http: {path: /healthz}
        interval: 100ms
        timeout: 500ms
    progress_deadline: 30s
    strategy:
      canary:
        steps:
          - weight: 20
          - analysis: 3s
          - weight: 100
    analysis:
      interval: 500ms
      window: 3s
      min_requests: 10
      max_error_rate: 5%
      mann_whitney: false
)";

// A dockerd (ours or the host's), the demo image in it, DOCKER_HOST pointing at it for
// the agent the server starts, and at the end every container of the cluster's agent gone.
class DockerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dockerd_.start()) FERRY_SKIP_OR_FAIL("no dockerd: " + dockerd_.why());
    ctx_ = std::filesystem::temp_directory_path() / ("ferry-e2e-ctx-" + std::to_string(getpid()));
    std::string err;
    ASSERT_TRUE(TestDockerd::make_context(ctx_.string(), demo_bin(), &err, /*bare=*/true)) << err;
    Status s = dockerd_.import_rootfs((ctx_ / "rootfs").string(), kDockerE2EImage);
    ASSERT_TRUE(s.ok()) << s.message();
    setenv("DOCKER_HOST", ("unix://" + dockerd_.socket()).c_str(), 1);
  }
  void TearDown() override {
    // Whatever the test's end, its agents' containers go (the agent outlives a server).
    for (const auto& id : agents_) remove_containers(id);
    std::error_code ec;
    std::filesystem::remove_all(ctx_, ec);
  }

  // Containers of the cluster's agent (label ferry.agent = its data dir), running ones.
  std::set<std::string> containers(const Cluster& c) const {
    DockerApi api(dockerd_.socket());
    const Json filters{{"label", Json::array({"ferry.agent=" + agent_id(c), "ferry.app=web"})}};
    auto list =
        api.json("GET", "/containers/json?filters=" + url_encode(dump_json(filters)), "list");
    std::set<std::string> ids;
    if (list.ok())
      for (const auto& x : *list) ids.insert(x.value("Id", ""));
    return ids;
  }
  static std::string agent_id(const Cluster& c) {
    return std::filesystem::weakly_canonical(c.dir() / "data/agent").string();
  }
  void remove_containers(const std::string& agent) const {
    DockerApi api(dockerd_.socket());
    const Json filters{{"label", Json::array({"ferry.agent=" + agent})}};
    auto list =
        api.json("GET", "/containers/json?all=1&filters=" + url_encode(dump_json(filters)), "list");
    if (list.ok())
      for (const auto& x : *list)
        (void)api.call("DELETE", "/containers/" + x.value("Id", "") + "?force=1");
  }

  std::vector<std::string> agents_;  // ferry.agent labels of the clusters made
  TestDockerd dockerd_;
  std::filesystem::path ctx_;
};

TEST_F(DockerE2E, CanaryOfContainersUnderLoadAndBadCanaryRolledBack) {
  Cluster c("docker-canary", kDockerApp);
  agents_.push_back(agent_id(c));
  c.start_server();
  c.release("v1");
  c.release("v2");
  c.release("v3", Json{{"DEMO_FAIL_RATE", "0.5"}});

  Json d1 = c.wait_final(c.deploy("v1"), 120);
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();
  EXPECT_EQ(containers(c).size(), 2u);

  Load good;
  good.start(c.app_port());
  Json d2 = c.wait_final(c.deploy("v2"), 120);
  EXPECT_TRUE(good.wait_more(50));  // and on v2 alone after it
  good.finish();
  EXPECT_EQ(d2.value("state", ""), "succeeded") << d2.dump(2);
  EXPECT_EQ(good.transport_errors, 0u) << (good.errors.empty() ? "" : good.errors[0]);
  EXPECT_EQ(good.status_count(502) + good.status_count(503) + good.status_count(500), 0u);
  EXPECT_GT(good.by_release["v2"], 0u);
  EXPECT_GT(good.requests, 100u);

  Load bad;
  bad.start(c.app_port());
  Json d3 = c.wait_final(c.deploy("v3"), 120);
  EXPECT_TRUE(bad.wait_more(50));  // requests that were in flight at the rollback end
  {
    std::lock_guard lk(bad.mu);
    bad.by_release.clear();  // from here on only v2 may answer
  }
  EXPECT_TRUE(bad.wait_more(200));
  bad.finish();
  EXPECT_EQ(d3.value("state", ""), "rolled_back") << d3.dump(2);
  EXPECT_EQ(bad.transport_errors, 0u) << (bad.errors.empty() ? "" : bad.errors[0]);
  EXPECT_EQ(bad.status_count(502) + bad.status_count(503), 0u);
  EXPECT_EQ(bad.by_release.count("v3"), 0u);
  EXPECT_GT(bad.by_release["v2"], 0u);
  // The canary's containers are gone; v2's two remain.
  std::set<std::string> left;
  for (int i = 0; i < 200 && (left = containers(c)).size() != 2u; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(left.size(), 2u);
}

TEST_F(DockerE2E, AgentKill9ReadoptsSameContainersAndOutsideKillIsRestarted) {
  Cluster c("docker-readopt", kDockerApp);
  agents_.push_back(agent_id(c));
  c.start_server();
  c.release("v1");
  Json d1 = c.wait_final(c.deploy("v1"), 120);
  ASSERT_EQ(d1.value("state", ""), "succeeded") << d1.dump(2) << c.log();
  const std::set<std::string> before = containers(c);
  ASSERT_EQ(before.size(), 2u);

  const int agent = c.agent_pid();
  ASSERT_GT(agent, 0) << "no agent pid for this cluster";
  ASSERT_EQ(kill(agent, SIGKILL), 0);
  // The server restarts its agent; the router comes back and the containers never stopped.
  bool back = false;
  for (int i = 0; i < 1500 && !back; ++i) {
    HttpClient h(Endpoint{"127.0.0.1", c.app_port()}, HttpClientOptions{500, 1 << 20});
    auto r = h.request("GET", "/");
    back = r.ok() && r->status == 200;
    if (!back) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(back) << "router did not come back\n" << c.log();
  EXPECT_EQ(containers(c), before) << "the same containers, re-adopted";
  auto ready_count = [&] {
    auto s = c.api("GET", "/api/v1/apps/web/envs/dev/status");
    int n = 0;
    if (s.ok() && (*s)["agents"].is_array() && !(*s)["agents"].empty())
      for (const auto& i : (*s)["agents"][0]["instances"]) n += i.value("state", "") == "ready";
    return n;
  };
  int ready = 0;
  for (int i = 0; i < 600 && (ready = ready_count()) != 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ready, 2);

  // Killed from outside: the agent sees the end and starts a new container for it.
  const std::string victim = *before.begin();
  DockerApi api(dockerd_.socket());
  auto k = api.call("POST", "/containers/" + victim + "/kill?signal=SIGKILL");
  ASSERT_TRUE(k.ok() && k->status == 204) << (k.ok() ? k->body : k.status().message());
  std::set<std::string> now;
  for (int i = 0; i < 600; ++i) {
    now = containers(c);
    if (now.size() == 2u && !now.count(victim) && ready_count() == 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(now.size(), 2u);
  EXPECT_EQ(now.count(victim), 0u);
  EXPECT_EQ(ready_count(), 2);
  auto s = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  ASSERT_TRUE(s.ok());
  int restarts = 0;
  for (const auto& i : (*s)["agents"][0]["instances"]) restarts += i.value("restarts", 0);
  EXPECT_GE(restarts, 1) << s->dump(2);
}

// deploy/Dockerfile, built through the Engine API from deploy/docker-context.sh's context
// with this build's ferry binary.
TEST_F(DockerE2E, DeployDockerfileImageRunsAsNonRootAndAnswersHealth) {
  const auto ctx =
      std::filesystem::temp_directory_path() / ("ferry-image-ctx-" + std::to_string(getpid()));
  std::string err;
  ASSERT_TRUE(TestDockerd::make_context(ctx.string(), ferry_bin(), &err)) << err;
  const std::string ref = "ferry-e2e-image:" + std::to_string(getpid());
  Status b = dockerd_.build(ctx.string(), ref);
  ASSERT_TRUE(b.ok()) << b.message();
  DockerApi api(dockerd_.socket());
  auto run_container = [&](const Json& body) -> std::string {
    auto created = api.json("POST", "/containers/create", "create", dump_json(body));
    EXPECT_TRUE(created.ok()) << created.status().message();
    if (!created.ok()) return "";
    const std::string id = created->value("Id", "");
    auto st = api.call("POST", "/containers/" + id + "/start");
    EXPECT_TRUE(st.ok() && st->status == 204) << (st.ok() ? st->body : st.status().message());
    return id;
  };

  // `ferry --version` prints the version.
  const std::string v = run_container(Json{{"Image", ref}, {"Cmd", Json::array({"--version"})}});
  ASSERT_FALSE(v.empty());
  auto waited = api.call("POST", "/containers/" + v + "/wait", {}, "application/json", 60'000);
  ASSERT_TRUE(waited.ok()) << waited.status().message();
  EXPECT_NE(waited->body.find("\"StatusCode\":0"), std::string::npos) << waited->body;
  auto logs = api.call("GET", "/containers/" + v + "/logs?stdout=1&stderr=1");
  ASSERT_TRUE(logs.ok());
  std::string text;
  LogDemux demux;
  demux.feed(logs->body, &text);
  std::string expected;
  ASSERT_EQ(run(ferry_bin() + " --version", &expected), 0);
  while (!expected.empty() && expected.back() == '\n') expected.pop_back();
  EXPECT_NE(text.find(expected), std::string::npos) << text;
  (void)api.call("DELETE", "/containers/" + v + "?force=1");

  // The server: as the image's user, on loopback (host network), /health/live answers.
  const uint16_t port = free_port();
  const auto cfg = ctx / "ferry.yaml";
  std::ofstream(cfg) << "version: 1\nserver:\n  listen: 127.0.0.1:" << port
                     << "\n  store: sqlite:/var/lib/ferry/ferry.db\n  data_dir: /var/lib/ferry\n"
                        "environments:\n  dev: {}\napps:\n  web:\n    port: "
                     << free_port() << "\n    run:\n      command: [/bin/true]\n";
  std::filesystem::permissions(
      cfg, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
               std::filesystem::perms::group_read | std::filesystem::perms::others_read);
  const std::string s = run_container(Json{
      {"Image", ref},
      {"Cmd", Json::array({"server", "--config", "/etc/ferry/ferry.yaml", "--no-local-agent"})},
      {"HostConfig",
       {{"NetworkMode", "host"},
        {"Binds", Json::array({cfg.string() + ":/etc/ferry/ferry.yaml:ro"})}}}});
  ASSERT_FALSE(s.empty());
  bool live = false;
  for (int i = 0; i < 600 && !live; ++i) {
    HttpClient h(Endpoint{"127.0.0.1", port}, HttpClientOptions{500, 1 << 20});
    auto r = h.request("GET", "/health/live");
    live = r.ok() && r->status == 200;
    if (live) break;
    if (auto st = api.inspect(s); !st.ok() || !(*st)["State"].value("Running", false)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto info = api.inspect(s);
  ASSERT_TRUE(info.ok());
  if (!live) {
    auto l = api.call("GET", "/containers/" + s + "/logs?stdout=1&stderr=1");
    ADD_FAILURE() << "the server in the image did not answer /health/live; its output:\n"
                  << (l.ok() ? l->body : l.status().message());
  }
  EXPECT_EQ((*info)["Config"].value("User", ""), "10001:10001");
  // The kernel's word: the server's process runs as uid 10001, not root.
  const int pid = (*info)["State"].value("Pid", 0);
  ASSERT_GT(pid, 0);
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line, uid_line;
  while (std::getline(status, line))
    if (line.starts_with("Uid:")) uid_line = line;
  EXPECT_NE(uid_line.find("\t10001\t"), std::string::npos) << uid_line;
  EXPECT_EQ(uid_line.find("\t0\t"), std::string::npos) << uid_line;
  (void)api.call("DELETE", "/containers/" + s + "?force=1&v=1");
  (void)api.call("DELETE", "/images/" + ref + "?force=1");
  std::error_code ec;
  std::filesystem::remove_all(ctx, ec);
}

}  // namespace
}  // namespace ferry::e2e
