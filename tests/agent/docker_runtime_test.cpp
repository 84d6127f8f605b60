// DockerRuntime against a real dockerd (tests/docker_test_env.h): the demo app as a
// FROM-scratch image made here, run on the port ferry assigns with its env, labels,
// limits and logs; graceful and forced stops; pull policies with no registry reachable;
// adoption by a restarted agent, stray removal, and an exit from outside reported.
#include "agent/docker_runtime.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fstream>
#include <sstream>

#include "agent/agent_runtime.h"
#include "common/http_client.h"
#include "docker_test_env.h"
#include "test_skip.h"
#include "test_paths.h"

namespace ferry {
namespace {

using testing::TestDockerd;

constexpr const char* kDemoImage = "ferry-test-demo:1";

uint16_t docker_free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

template <typename F>
bool docker_wait_until(F&& f, int ms = 30'000) {
  for (int waited = 0; waited < ms; waited += 25) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return f();
}

std::string docker_read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class DockerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dockerd_.start()) FERRY_SKIP_OR_FAIL("no dockerd: " + dockerd_.why());
    dir_ = std::filesystem::temp_directory_path() / ("ferry-docker-rt-" + std::to_string(getpid()));
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    std::filesystem::create_directories(dir_);
    std::string err;
    ASSERT_TRUE(TestDockerd::make_context(
        (dir_ / "ctx").string(),
        testing::demo_app_binary(), &err, /*bare=*/true))
        << err;
    Status s = dockerd_.import_rootfs((dir_ / "ctx/rootfs").string(), kDemoImage);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void TearDown() override {
    // Every container this test's agents made (by their label), then the folder.
    DockerApi api(dockerd_.socket());
    for (const std::string& agent : {agent_a(), agent_b()}) {
      const Json filters{{"label", Json::array({"ferry.agent=" + agent})}};
      auto list = api.json(
          "GET", "/containers/json?all=1&filters=" + url_encode(dump_json(filters)), "list");
      if (list.ok())
        for (const auto& c : *list)
          (void)api.call("DELETE", "/containers/" + c.value("Id", "") + "?force=1");
    }
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  // Agent ids of this test process: tests sharing a host's dockerd never touch each other's.
  static std::string agent_a() { return "test-agent-a-" + std::to_string(getpid()); }
  static std::string agent_b() { return "test-agent-b-" + std::to_string(getpid()); }

  std::unique_ptr<DockerRuntime> runtime(const std::string& agent = agent_a()) {
    DockerRuntimeOptions o;
    o.socket = dockerd_.socket();
    o.log_dir = (dir_ / "logs").string();
    o.agent_id = agent;
    o.pull_timeout_ms = 30'000;
    return std::make_unique<DockerRuntime>(o);
  }

  LaunchSpec demo(uint16_t port, const std::string& instance = "web-v1-0") {
    LaunchSpec l;
    l.app = "web.dev";
    l.instance = instance;
    l.release = "v1";
    l.image = kDemoImage;
    l.pull = PullPolicy::kNever;
    l.argv = {"/usr/local/bin/ferry-demo-app", "--port", std::to_string(port), "--version", "v1"};
    l.env = {{"PORT", std::to_string(port)}, {"API_TOKEN", "s3cr3t-token"}};
    return l;
  }

  static bool answers(uint16_t port, const std::string& version) {
    HttpClient c(Endpoint{"127.0.0.1", port}, HttpClientOptions{500, 1 << 20});
    auto r = c.request("GET", "/");
    if (!r.ok() || r->status != 200) return false;
    for (const auto& [k, v] : r->headers)
      if ((k == "x-demo-version" || k == "X-Demo-Version") && v == version) return true;
    return false;
  }

  TestDockerd dockerd_;
  std::filesystem::path dir_;
};

TEST_F(DockerRuntimeTest, RunsTheImageOnTheAssignedPortWithEnvLabelsLimitsAndLogs) {
  auto rt = runtime();
  const uint16_t port = docker_free_port();
  LaunchSpec l = demo(port);
  l.cpus = 0.5;
  l.memory_bytes = 64LL << 20;
  auto h = rt->start(l);
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_FALSE(h->id.empty());
  EXPECT_GT(h->pid, 0);  // the program's pid on the host
  EXPECT_TRUE(docker_wait_until([&] { return answers(port, "v1"); }))
      << "not answering on 127.0.0.1";
  EXPECT_TRUE(rt->alive(*h));
  EXPECT_FALSE(rt->exit_status(*h).has_value());

  DockerApi api(dockerd_.socket());
  auto info = api.inspect(h->id);
  ASSERT_TRUE(info.ok()) << info.status().message();
  const Json& labels = (*info)["Config"]["Labels"];
  EXPECT_EQ(labels.value("ferry.app", ""), "web");
  EXPECT_EQ(labels.value("ferry.env", ""), "dev");
  EXPECT_EQ(labels.value("ferry.release", ""), "v1");
  EXPECT_EQ(labels.value("ferry.instance", ""), "web-v1-0");
  EXPECT_EQ(labels.value("ferry.agent", ""), agent_a());
  EXPECT_EQ((*info)["HostConfig"].value("NetworkMode", ""), "host");
  EXPECT_EQ((*info)["HostConfig"].value("NanoCpus", int64_t{0}), 500'000'000);
  EXPECT_EQ((*info)["HostConfig"].value("Memory", int64_t{0}), 64LL << 20);
  // What docs/agent.md says: the environment, secrets included, is in `docker inspect`.
  bool token_shown = false;
  for (const auto& e : (*info)["Config"]["Env"]) token_shown |= e == "API_TOKEN=s3cr3t-token";
  EXPECT_TRUE(token_shown) << (*info)["Config"]["Env"].dump();

  // Output reaches the instance's log file through the logs API.
  const std::string log = rt->log_path("web.dev", "web-v1-0");
  EXPECT_TRUE(docker_wait_until([&] { return !docker_read_file(log).empty(); })) << log;

  rt->stop(*h, StopMode::kGraceful);
  std::optional<int> code;
  EXPECT_TRUE(docker_wait_until([&] { return (code = rt->exit_status(*h)).has_value(); }));
  EXPECT_EQ(code.value_or(-1), 0) << "SIGTERM: the demo app ends cleanly";
  EXPECT_FALSE(rt->alive(*h));
  EXPECT_EQ(api.inspect(h->id).status().code(), Code::kNotFound) << "the container is removed";
  EXPECT_EQ(rt->exit_status(*h), kExitUnknown) << "an end is reported once";
}

TEST_F(DockerRuntimeTest, KillEndsItAtOnceAndAStartFailureLeavesNothing) {
  auto rt = runtime();
  const uint16_t port = docker_free_port();
  auto h = rt->start(demo(port));
  ASSERT_TRUE(h.ok()) << h.status().message();
  ASSERT_TRUE(docker_wait_until([&] { return answers(port, "v1"); }));
  rt->stop(*h, StopMode::kKill);
  std::optional<int> code;
  EXPECT_TRUE(docker_wait_until([&] { return (code = rt->exit_status(*h)).has_value(); }));
  EXPECT_EQ(code.value_or(0), -9);

  // A command the image does not have: the error names it, no container is left.
  LaunchSpec bad = demo(docker_free_port(), "web-v1-1");
  bad.argv = {"/no/such/program"};
  auto r = rt->start(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no/such/program"), std::string::npos)
      << r.status().message();
  EXPECT_TRUE(rt->tracked().empty());
  auto left = rt->remove_strays();
  ASSERT_TRUE(left.ok()) << left.status().message();
  EXPECT_EQ(*left, 0);
}

TEST_F(DockerRuntimeTest, PullPoliciesGiveAClearErrorWhenTheImageCannotBeHad) {
  auto rt = runtime();
  // A registry on loopback where nothing listens: no traffic leaves the machine.
  const std::string absent = "localhost:1/ferry-absent:1";
  Status never = rt->ensure_image(absent, PullPolicy::kNever);
  EXPECT_EQ(never.code(), Code::kFailedPrecondition);
  EXPECT_NE(never.message().find("is not on this host and run.pull is never"), std::string::npos)
      << never.message();
  Status missing = rt->ensure_image(absent, PullPolicy::kMissing);
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("image " + absent + " could not be made present"),
            std::string::npos)
      << missing.message();
  EXPECT_NE(missing.message().find("pulling image"), std::string::npos) << missing.message();
  // missing/never with the image present: no pull at all.
  EXPECT_TRUE(rt->ensure_image(kDemoImage, PullPolicy::kNever).ok());
  EXPECT_TRUE(rt->ensure_image(kDemoImage, PullPolicy::kMissing).ok());
  // always pulls even when present: the same image under a loopback registry's name.
  DockerApi api(dockerd_.socket());
  auto tag = api.call(
      "POST", std::string("/images/") + kDemoImage + "/tag?repo=localhost%3A1%2Fferry-demo&tag=1");
  ASSERT_TRUE(tag.ok() && tag->status / 100 == 2) << (tag.ok() ? tag->body : "");
  EXPECT_TRUE(rt->ensure_image("localhost:1/ferry-demo:1", PullPolicy::kMissing).ok());
  Status always = rt->ensure_image("localhost:1/ferry-demo:1", PullPolicy::kAlways);
  EXPECT_FALSE(always.ok());
  EXPECT_NE(always.message().find("run.pull: always"), std::string::npos) << always.message();
  // start() reports the same error and leaves no container.
  LaunchSpec l = demo(docker_free_port());
  l.image = absent;
  auto r = rt->start(l);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(absent), std::string::npos);
  // A hostile reference never reaches dockerd's URLs.
  EXPECT_EQ(rt->ensure_image("web/../../containers/x?y=1", PullPolicy::kNever).code(),
            Code::kInvalidArgument);
}

TEST_F(DockerRuntimeTest, RestartedAgentAdoptsItsContainersRemovesStraysAndSeesOutsideKills) {
  const uint16_t p1 = docker_free_port(), p2 = docker_free_port(), p3 = docker_free_port();
  RuntimeHandle kept, stray;
  {
    auto first = runtime();
    auto a = first->start(demo(p1, "web-v1-0"));
    auto b = first->start(demo(p2, "web-v1-1"));
    ASSERT_TRUE(a.ok() && b.ok());
    kept = *a;
    stray = *b;  // the new agent's state file will not name it
    ASSERT_TRUE(docker_wait_until([&] { return answers(p1, "v1") && answers(p2, "v1"); }));
  }                                 // the agent is gone; its containers run on
  auto other = runtime(agent_b());  // another agent on the same dockerd
  auto theirs = other->start(demo(p3, "api-v1-0"));
  ASSERT_TRUE(theirs.ok()) << theirs.status().message();

  auto second = runtime();
  EXPECT_FALSE(second->adopt(*theirs)) << "another agent's container is not ours";
  ASSERT_TRUE(second->adopt(kept));
  EXPECT_TRUE(answers(p1, "v1"));
  auto removed = second->remove_strays();
  ASSERT_TRUE(removed.ok()) << removed.status().message();
  EXPECT_EQ(*removed, 1);
  DockerApi api(dockerd_.socket());
  EXPECT_EQ(api.inspect(stray.id).status().code(), Code::kNotFound);
  EXPECT_TRUE(api.inspect(kept.id).ok());
  EXPECT_TRUE(api.inspect(theirs->id).ok()) << "the other agent's container is left alone";
  EXPECT_EQ(second->tracked(), std::vector<std::string>{kept.id});

  // Killed from outside (docker kill): the end is seen and reported as a signal.
  auto k = api.call("POST", "/containers/" + kept.id + "/kill?signal=SIGKILL");
  ASSERT_TRUE(k.ok() && k->status == 204) << (k.ok() ? k->body : k.status().message());
  std::optional<int> code;
  EXPECT_TRUE(docker_wait_until([&] { return (code = second->exit_status(kept)).has_value(); }));
  EXPECT_EQ(code.value_or(0), -9);
  // Adopting a container that is gone fails (the supervisor then starts a new one).
  EXPECT_FALSE(second->adopt(kept));
}

TEST(DockerRuntimeSelection, ImagesNeedDockerdAndProcessesDoNot) {
  // The selection point: run.image → container, else process. With DOCKER_HOST of a
  // scheme the agent cannot use, images fail with a clear error and processes still run.
  const char* old = std::getenv("DOCKER_HOST");
  const std::string saved = old ? old : "";
  const auto dir =
      std::filesystem::temp_directory_path() / ("ferry-docker-sel-" + std::to_string(getpid()));
  setenv("DOCKER_HOST", "tcp://127.0.0.1:2375", 1);
  {
    AgentRuntime rt(dir.string(), LogPolicy{});
    EXPECT_EQ(rt.docker(), nullptr);
    LaunchSpec l;
    l.app = "web.dev";
    l.instance = "web-v1-0";
    l.image = "web:1";
    auto r = rt.start(l);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("run.image needs dockerd"), std::string::npos);
    EXPECT_NE(r.status().message().find("unix://PATH"), std::string::npos);
    l.image.clear();
    l.argv = {"/bin/sleep", "30"};
    auto p = rt.start(l);
    ASSERT_TRUE(p.ok()) << p.status().message();
    EXPECT_TRUE(p->id.empty());
    EXPECT_TRUE(rt.alive(*p));
    rt.stop(*p, StopMode::kKill);
    EXPECT_TRUE(docker_wait_until([&] { return rt.exit_status(*p).has_value(); }));
  }
  setenv("DOCKER_HOST", ("unix://" + (dir / "no-dockerd.sock").string()).c_str(), 1);
  {
    AgentRuntime rt(dir.string(), LogPolicy{});
    LaunchSpec l;
    l.app = "web.dev";
    l.instance = "web-v1-0";
    l.image = "web:1";
    auto r = rt.start(l);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("dockerd is not running"), std::string::npos)
        << r.status().message();
    EXPECT_EQ(rt.remove_strays(), "") << "no socket: nothing to check, nothing said";
  }
  if (old)
    setenv("DOCKER_HOST", saved.c_str(), 1);
  else
    unsetenv("DOCKER_HOST");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
