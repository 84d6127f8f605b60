// Many hosts with real binaries and a real network: three agents, each in its own network
// namespace (e2e/netns.h) at its own address, the server in the root namespace. A canary of
// 4 instances over the three hosts runs under load from the root namespace to every host's
// router; at 50% one host is cut off (its link down). The deployment follows on_agent_loss
// (rollback) and records only what the agents did: the hosts that answer are on the stable
// release, the cut one is named as behind and the deployment stays `rolling_back` — also
// across a kill -9 and restart of the server in the middle of the partition — until the link
// is back and the reconciler brings that host to the stable release. Meanwhile the cut-off
// host's own clients (inside its namespace) are served by its router with the last desired
// state; the time from the link's return to the recorded rollback is printed. Each host is asked
// directly (its own agent API), not through the server, to check what the server says.
// Between the server and the agents: mutual TLS (`tls: true`), each agent enrolled through the
// running server's API and `ferry agent init`/`join`, no server restart.
// An attacker's test: a server configured for a remote agent that is not enrolled sends
// nothing to whoever listens at that agent's address (no desired state, no token).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <atomic>
#include <thread>

#include "agent/http_agent_client.h"
#include "common/tls.h"
#include "e2e/e2e_env.h"
#include "e2e/netns.h"
#include "test_skip.h"

namespace ferry::e2e {
namespace {

constexpr uint16_t kAgentPort = 7071;  // inside each host's own namespace: nothing else there
constexpr uint16_t kAppPort = 18080;

const std::string kHostsApp =
    demo_app({.instances = 4, .stop_grace = "2s", .progress_deadline = "30s", .port = "18080"},
             R"(    strategy:
      canary:
        steps:
          - weight: 20
          - pause: 1s
          - weight: 50
          - pause: 120s
          - weight: 100
    analysis:
      # Errors only: this test is about hosts and partitions, not the latency test (fresh vs
      # warm instances on a loaded CI machine), which tests/analysis covers.
      mann_whitney: false
)");

class HostsCluster {
 public:
  explicit HostsCluster(NetnsHosts& net) : net_(net) {
    dir_ = std::filesystem::temp_directory_path() / ("ferry-e2e-hosts-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    server_port_ = free_port();
    while (server_port_ == kAppPort) server_port_ = free_port();
    std::ofstream(dir_ / "agent.token")
        << "hosts-agent-token-" << getpid() << "-0123456789abcdef\n";
    std::filesystem::permissions(dir_ / "agent.token", std::filesystem::perms::owner_read |
                                                           std::filesystem::perms::owner_write);
    std::ostringstream y;
    y << "version: 1\nserver:\n  listen: 127.0.0.1:" << server_port_
      << "\n  store: sqlite:" << (dir_ / "data/ferry.db").string()
      << "\n  data_dir: " << (dir_ / "data").string() << "\n  start_local_agent: false\nagents:\n";
    for (size_t i = 0; i < net_.size(); ++i)
      y << "  " << net_.host(i).name << ":\n    address: " << net_.host(i).addr << ":" << kAgentPort
        << "\n    token_file: " << (dir_ / "agent.token").string()
        << "\n    listen: " << net_.host(i).addr << "\n    tls: true\n";
    y << "environments:\n  dev:\n    agents: [";
    for (size_t i = 0; i < net_.size(); ++i) y << (i ? ", " : "") << net_.host(i).name;
    y << "]\n    agent_timeout: 2s\n    on_agent_loss: rollback\napps:\n  web:\n"
      << std::regex_replace(kHostsApp, std::regex("@DEMO@"), demo_bin());
    std::ofstream(config()) << y.str();
    std::string out;
    const int rc = run(ferry_bin() + " --json token create --offline --config " + config() +
                           " --name e2e-admin --role admin",
                       &out);
    EXPECT_EQ(rc, 0) << out;
    if (auto j = parse_json(out); j.ok()) token_ = j->value("token", "");
    agents_.resize(net_.size());
  }
  ~HostsCluster() {
    stop(server_, SIGKILL);
    for (size_t i = 0; i < agents_.size(); ++i) {
      stop(agents_[i], SIGTERM);
      // Instances run in their own sessions: stop the ones the agent's state file names.
      std::ifstream state(agent_dir(i) / "agent-state.json");
      std::string text((std::istreambuf_iterator<char>(state)), {});
      if (auto j = parse_json(text); j.ok())
        for (const auto& app : (*j)["apps"])
          for (const auto& inst : app["instances"])
            if (int pid = inst["status"].value("pid", 0); pid > 0) kill(-pid, SIGKILL);
    }
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string config() const { return (dir_ / "ferry.yaml").string(); }
  std::filesystem::path agent_dir(size_t i) const { return dir_ / ("agent-" + net_.host(i).name); }

  // Enrolls host i through the running server (an admin's `ferry agents enroll`), makes its
  // key and CSR and joins with the one-time token, checking the CA's fingerprint.
  void enroll_agent(size_t i) {
    const std::string& name = net_.host(i).name;
    Json none = Json::object();
    auto e = api("POST", "/api/v1/agents/" + name + "/enroll", &none);
    ASSERT_TRUE(e.ok()) << e.status().message();
    const std::string tls = (agent_dir(i) / "tls").string();
    std::string out;
    ASSERT_EQ(run(ferry_bin() + " agent init --tls-dir " + tls + " --name " + name, &out), 0)
        << out;
    ASSERT_EQ(run("FERRY_SERVER=127.0.0.1:" + std::to_string(server_port_) + " " + ferry_bin() +
                      " agent join --tls-dir " + tls + " --name " + name + " --token " +
                      e->value("token", "") + " --ca-sha256 " + e->value("ca_sha256", ""),
                  &out),
              0)
        << out;
  }
  void start_agent(size_t i) {
    ProcessLaunch l;
    l.argv = net_.exec_in(i);
    for (const std::string& a :
         {ferry_bin(), std::string("agent"), std::string("--listen"),
          net_.host(i).addr + ":" + std::to_string(kAgentPort), std::string("--data-dir"),
          agent_dir(i).string(), std::string("--token-file"), (dir_ / "agent.token").string(),
          std::string("--tls-dir"), (agent_dir(i) / "tls").string()})
      l.argv.push_back(a);
    l.log_path = (dir_ / ("agent-" + net_.host(i).name + ".log")).string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    agents_[i] = *h;
    ASSERT_TRUE(
        testing::wait_until([&] { return agent(i).health().ok(); }, std::chrono::seconds(30)))
        << "agent " << net_.host(i).name << " did not answer";
  }
  void start_server() {
    ProcessLaunch l;
    l.argv = {ferry_bin(), "server", "--config", config()};
    l.log_path = (dir_ / "server.log").string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    server_ = *h;
    ASSERT_TRUE(testing::wait_until(
        [&] {
          HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{500, 1 << 20});
          auto r = c.request("GET", "/health/live");
          return r.ok() && r->status == 200;
        },
        std::chrono::seconds(30)))
        << "server did not start; log:\n"
        << log();
  }
  void kill_server() { stop(server_, SIGKILL); }
  std::string log() const {
    std::ifstream f(dir_ / "server.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  // Host i's agent, asked directly from the root namespace (the truth the server must tell),
  // over mutual TLS with the server's certificate, pinned to the host's name.
  HttpAgentClient agent(size_t i) const {
    std::ifstream t(dir_ / "agent.token");
    std::string token;
    std::getline(t, token);
    const std::string tls = (dir_ / "data" / "tls").string() + "/";
    auto id = load_tls_identity(tls + "server.crt", tls + "server.key", tls + "ca.crt");
    std::shared_ptr<TlsContext> ctx;
    if (id.ok())
      if (auto c = TlsContext::create(TlsContext::Role::kClient, *id, net_.host(i).name); c.ok())
        ctx = *c;
    return HttpAgentClient(Endpoint{net_.host(i).addr, kAgentPort}, token, 1000, net_.host(i).name,
                           ctx);
  }
  Result<Json> api(const std::string& method, const std::string& target,
                   const Json* body = nullptr) {
    HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{10000, 16 << 20});
    c.set_header("Authorization", "Bearer " + token_);
    return c.call(method, target, body);
  }
  Json deployment(const std::string& id) {
    auto r = api("GET", "/api/v1/deployments/" + id);
    return r.ok() ? *r : Json();
  }
  std::string deploy(const std::string& v) {
    Json rel{{"app", "web"}, {"version", v}, {"git_sha", "abc" + v}, {"env", Json::object()}};
    auto r = api("POST", "/api/v1/releases", &rel);
    EXPECT_TRUE(r.ok()) << r.status().message();
    Json body{{"app", "web"}, {"env", "dev"}, {"release", v}};
    auto d = api("POST", "/api/v1/deployments", &body);
    EXPECT_TRUE(d.ok()) << d.status().message();
    return d.ok() ? d->value("id", "") : "";
  }
  // Waits until the deployment's state is `state` (or a final state other than it: false).
  bool wait_state(const std::string& id, const std::string& state, int seconds = 60) {
    std::string last;
    testing::wait_until(
        [&] {
          last = deployment(id).value("state", "");
          return last == state || last == "succeeded" || last == "failed" ||
                 last == "rolled_back" || last == "aborted";
        },
        std::chrono::seconds(seconds), std::chrono::milliseconds(50));
    return last == state;
  }

 private:
  static void stop(ProcessHandle& h, int sig) {
    if (h.pid <= 0) return;
    kill(h.pid, sig);
    int code;
    if (!testing::wait_until([&] { return reap_child(h.pid, &code); }, std::chrono::seconds(10))) {
      kill(h.pid, SIGKILL);
      testing::wait_until([&] { return reap_child(h.pid, &code); }, std::chrono::seconds(5));
    }
    h = {};
  }

  NetnsHosts& net_;
  std::filesystem::path dir_;
  uint16_t server_port_ = 0;
  std::string token_;
  ProcessHandle server_;
  std::vector<ProcessHandle> agents_;
};

// What host i's agent itself reports for the web app: its weights and the releases of its
// running (not stopped) instances.
struct HostView {
  bool reachable = false;
  std::map<std::string, int> weights;
  std::map<std::string, int> running;  // release → instances not stopped
  std::string states;                  // for messages
};
HostView view_of(const HostsCluster& c, size_t i) {
  HostView v;
  auto s = c.agent(i).app_status(agent_app_name("web", "dev"));
  if (!s.ok()) return v;
  v.reachable = true;
  for (const auto& [rel, w] : s->weights)
    if (w > 0) v.weights[rel] = w;
  for (const auto& inst : s->instances)
    if (inst.state != InstanceState::kStopped) {
      ++v.running[inst.release];
      v.states += " " + inst.id + ":" + std::string(to_string(inst.state));
    }
  return v;
}
std::string describe(const HostView& v) {
  std::string s = v.reachable ? "weights" : "unreachable";
  for (const auto& [r, w] : v.weights) s += " " + r + "=" + std::to_string(w);
  s += "; running";
  for (const auto& [r, n] : v.running) s += " " + r + "×" + std::to_string(n);
  return s + ";" + v.states;
}
// The host serves only the stable release v1 and runs no v2 instance.
bool on_stable(const HostView& v) {
  return v.reachable && v.weights == std::map<std::string, int>{{"v1", 100}} &&
         v.running.count("v2") == 0 && v.running.count("v1") > 0;
}

// Clients inside host i's namespace (its own users, whom a partition from the server does not
// cut off): GET / on its router in a loop until stopped, each answer counted.
class InsideLoad {
 public:
  InsideLoad(const NetnsHosts& net, size_t i) {
    const std::string ns_path = "/run/netns/" + net.host(i).ns;
    thread_ = std::thread([this, ns_path, addr = net.host(i).addr] {
      // setns moves only this thread: the client's sockets live in the host's namespace.
      const int nsfd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) {
        failed_ = -1;
        return;
      }
      ::close(nsfd);
      HttpClient c(Endpoint{addr, kAppPort}, HttpClientOptions{2000, 1 << 20});
      for (int n = 0; n < 100'000 && !stop_; ++n) {
        auto r = c.request("GET", "/");
        if (r.ok() && r->status == 200)
          ++ok_;
        else
          ++failed_;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
  }
  ~InsideLoad() { finish(); }
  void finish() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> ok_{0}, failed_{0};
};

TEST(HostsE2E, HostCutAtFiftyPercentRollsBackWhatAgentsDidAndReconcilesItWhenBack) {
  if (const std::string why = NetnsHosts::unavailable(); !why.empty()) FERRY_SKIP_OR_FAIL(why);
  NetnsHosts net({"a", "b", "c"});
  ASSERT_TRUE(net.error().empty()) << net.error();
  HostsCluster c(net);
  // The server first (enrollment goes through its API), then each agent enrolled and started
  // with TLS: the running server calls them over mutual TLS without a restart.
  ASSERT_NO_FATAL_FAILURE(c.start_server());
  for (size_t i = 0; i < net.size(); ++i) {
    ASSERT_NO_FATAL_FAILURE(c.enroll_agent(i));
    ASSERT_NO_FATAL_FAILURE(c.start_agent(i));
  }

  // v1 everywhere: 4 instances over 3 hosts (2, 1, 1), each host's router at its address.
  const std::string d1 = c.deploy("v1");
  ASSERT_TRUE(c.wait_state(d1, "succeeded")) << c.deployment(d1).dump(2) << c.log();
  int total = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    const HostView v = view_of(c, i);
    EXPECT_TRUE(on_stable(v)) << net.host(i).name << ": " << describe(v);
    total += v.running.count("v1") ? v.running.at("v1") : 0;
  }
  EXPECT_EQ(total, 4);

  // Load from the root namespace on every host's router.
  std::vector<std::unique_ptr<Load>> loads;
  for (size_t i = 0; i < net.size(); ++i) {
    loads.push_back(std::make_unique<Load>());
    loads.back()->start(Endpoint{net.host(i).addr, kAppPort}, 2, 90, 100000);
  }
  for (auto& l : loads) ASSERT_TRUE(l->wait_more(20));

  // v2 to 50% on every host, then host c is cut off.
  const std::string d2 = c.deploy("v2");
  ASSERT_TRUE(testing::wait_until(
      [&] {
        for (size_t i = 0; i < net.size(); ++i)
          if (view_of(c, i).weights["v2"] != 50) return false;
        return true;
      },
      std::chrono::seconds(60), std::chrono::milliseconds(50)))
      << c.deployment(d2).dump(2);
  ASSERT_EQ(c.deployment(d2).value("state", ""), "running");
  loads[2]->finish();  // c's load ends with its link: the counts below are a's and b's
  const uint64_t c_requests = loads[2]->requests;
  // c's own clients, inside its namespace: the cut does not reach them.
  InsideLoad inside(net, 2);
  ASSERT_TRUE(testing::wait_until([&] { return inside.ok() + inside.failed() >= 20; },
                                  std::chrono::seconds(30)));
  ASSERT_TRUE(net.cut(2)) << net.error();
  const int inside_before_cut = inside.ok();

  // on_agent_loss: rollback after agent_timeout (2 s). a and b take it; c cannot: the
  // deployment says rolling_back and names c, and it stays so.
  ASSERT_TRUE(c.wait_state(d2, "rolling_back")) << c.deployment(d2).dump(2) << c.log();
  ASSERT_TRUE(
      testing::wait_until([&] { return on_stable(view_of(c, 0)) && on_stable(view_of(c, 1)); },
                          std::chrono::seconds(30)))
      << "a: " << describe(view_of(c, 0)) << "\nb: " << describe(view_of(c, 1));
  // The rollback waits for c and says so, naming it with its address and error.
  const std::string c_named = "c (" + net.host(2).addr;
  auto waiting_seq = [&](const Json& d) {
    int64_t seq = 0;
    for (const auto& e : d["events"])
      if (e.value("type", "") == "rollback_waiting" &&
          e.value("message", "").find(c_named) != std::string::npos)
        seq = e.value("seq", int64_t{0});
    return seq;
  };
  Json rolling;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        rolling = c.deployment(d2);
        return waiting_seq(rolling) > 0;
      },
      std::chrono::seconds(30)))
      << rolling.dump(2);
  EXPECT_EQ(rolling.value("state", ""), "rolling_back") << rolling.dump(2);
  EXPECT_NE(rolling.value("reason", "").find("agents still behind: " + c_named), std::string::npos)
      << rolling.dump(2);
  bool lost_named = false;
  for (const auto& e : rolling["events"]) {
    const std::string type = e.value("type", "");
    if (type == "agent_lost" &&
        e.value("message", "").find("agent " + c_named) != std::string::npos)
      lost_named = true;
    EXPECT_NE(type, "rolled_back") << "a rollback recorded while host c was cut off";
  }
  EXPECT_TRUE(lost_named) << rolling.dump(2);
  // The server's per-host status says the same as the hosts: c unreachable and behind.
  auto status = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  ASSERT_TRUE(status.ok()) << status.status().message();
  for (const auto& h : (*status)["agents"])
    if (h.value("agent", "") == "c") {
      EXPECT_FALSE(h.value("reachable", true)) << h.dump();
      EXPECT_TRUE(h.value("behind", false)) << h.dump();
    }

  // kill -9 of the server in the middle of the partition: the restarted server resumes the
  // rollback and still does not claim it is done.
  c.kill_server();
  ASSERT_NO_FATAL_FAILURE(c.start_server());
  const int64_t before_restart = waiting_seq(rolling);
  Json resumed;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        resumed = c.deployment(d2);
        return waiting_seq(resumed) > before_restart ||
               resumed.value("state", "") != "rolling_back";
      },
      std::chrono::seconds(30)))
      << resumed.dump(2) << c.log();
  EXPECT_EQ(resumed.value("state", ""), "rolling_back") << resumed.dump(2);
  EXPECT_TRUE(on_stable(view_of(c, 0)) && on_stable(view_of(c, 1)));

  // All through the partition (and the server's restart) host c served its own clients
  // with the last desired state it had: v2 at 50%.
  ASSERT_TRUE(testing::wait_until([&] { return inside.ok() >= inside_before_cut + 50; },
                                  std::chrono::seconds(30)));
  inside.finish();
  EXPECT_EQ(inside.failed(), 0) << "clients inside the cut-off host saw failures";

  // The link comes back: the reconciler brings c to the stable release and only then is the
  // rollback recorded.
  ASSERT_TRUE(net.restore(2)) << net.error();
  const auto healed = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.wait_state(d2, "rolled_back", 60)) << c.deployment(d2).dump(2) << c.log();
  const double recorded_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count();
  // Every host serves only v1 now; c's v2 instance is stopped (it drains first) within the
  // same bound as the others' were.
  for (size_t i = 0; i < net.size(); ++i) {
    const HostView v = view_of(c, i);
    EXPECT_EQ(v.weights, (std::map<std::string, int>{{"v1", 100}}))
        << "host " << net.host(i).name << " when rolled_back was recorded: " << describe(v);
  }
  EXPECT_TRUE(
      testing::wait_until([&] { return on_stable(view_of(c, 2)); }, std::chrono::seconds(30)))
      << "c: " << describe(view_of(c, 2));
  std::cout << "[ measure ] partition healed: rollback recorded after " << recorded_s
            << " s, host c on the stable release alone after "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - healed).count()
            << " s; clients inside c: " << inside.ok() << " answered 200, " << inside.failed()
            << " failed\n";
  const Json done = c.deployment(d2);
  EXPECT_EQ(done.value("reason", "").find("agents still behind"), std::string::npos)
      << done.dump(2);

  // No request failed on the hosts that stayed up, through the canary and the rollback.
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(loads[i]->wait_more(20));
    loads[i]->finish();
    EXPECT_GT(loads[i]->requests, 50u);
    EXPECT_EQ(loads[i]->transport_errors, 0u)
        << net.host(i).name << ": " << (loads[i]->errors.empty() ? "" : loads[i]->errors[0]);
    EXPECT_EQ(loads[i]->status_count(200), loads[i]->requests) << net.host(i).name;
  }
  EXPECT_GT(c_requests, 0u);
}

// Listens at host i's agent address from inside its namespace, as whoever took that address
// would, and counts the connections and the bytes they sent.
class AddressTaker {
 public:
  AddressTaker(const NetnsHosts& net, size_t i) {
    const std::string ns_path = "/run/netns/" + net.host(i).ns;
    std::atomic<int> ready{0};
    thread_ = std::thread([this, ns_path, addr = net.host(i).addr, &ready] {
      // setns moves only this thread: the socket it makes lives in the host's namespace.
      const int nsfd = ::open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (nsfd < 0 || ::setns(nsfd, CLONE_NEWNET) != 0) {
        ready = -1;
        return;
      }
      ::close(nsfd);
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(kAgentPort);
      ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr);
      if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 16) != 0) {
        ::close(fd);
        ready = -1;
        return;
      }
      ready = 1;
      while (!stop_) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int c = ::accept(fd, nullptr, nullptr);
        if (c < 0) continue;
        ++connections_;
        char buf[4096];
        pollfd q{c, POLLIN, 0};
        while (::poll(&q, 1, 200) > 0) {
          const ssize_t n = ::read(c, buf, sizeof buf);
          if (n <= 0) break;
          received_.fetch_add(static_cast<int>(n));
        }
        ::close(c);
      }
      ::close(fd);
    });
    testing::wait_until([&] { return ready.load() != 0; }, std::chrono::seconds(10));
    ok_ = ready.load() == 1;
  }
  ~AddressTaker() {
    stop_ = true;
    thread_.join();
  }
  bool ok() const { return ok_; }
  int connections() const { return connections_.load(); }
  int received() const { return received_.load(); }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0}, received_{0};
  bool ok_ = false;
};

TEST(HostsE2E, ARemoteAgentThatIsNotEnrolledIsSentNoDesiredStateAndNoToken) {
  if (const std::string why = NetnsHosts::unavailable(); !why.empty()) FERRY_SKIP_OR_FAIL(why);
  NetnsHosts net({"a", "b", "c"});
  ASSERT_TRUE(net.error().empty()) << net.error();
  HostsCluster c(net);         // agents a, b, c with tls: true; none enrolled
  AddressTaker taker(net, 0);  // someone listens at a's address in a's place
  ASSERT_TRUE(taker.ok());
  ASSERT_NO_FATAL_FAILURE(c.start_server());
  const std::string d = c.deploy("v1");
  // The deployment cannot start anything and says why, naming the agent and how to enroll.
  Json seen;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        seen = c.deployment(d);
        return seen.dump().find("ferry agents enroll ") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << seen.dump(2) << c.log();
  auto status = c.api("GET", "/api/v1/apps/web/envs/dev/status");
  ASSERT_TRUE(status.ok()) << status.status().message();
  bool a_listed = false;
  for (const auto& h : (*status)["agents"]) {
    if (h.value("agent", "") != "a") continue;
    a_listed = true;
    EXPECT_NE(h.value("error", "").find("not enrolled"), std::string::npos) << h.dump();
  }
  EXPECT_TRUE(a_listed) << status->dump(2);
  EXPECT_EQ(taker.connections(), 0) << "the server connected to an agent it may not call in clear";
  EXPECT_EQ(taker.received(), 0);
  EXPECT_EQ(c.log().find("hosts-agent-token"), std::string::npos);
  // The taker was reachable all along: a connection from the root namespace arrives.
  HttpClient probe(Endpoint{net.host(0).addr, kAgentPort}, HttpClientOptions{1000, 1 << 16});
  (void)probe.request("GET", "/v1/health");
  EXPECT_TRUE(
      testing::wait_until([&] { return taker.connections() == 1; }, std::chrono::seconds(10)));
}

}  // namespace
}  // namespace ferry::e2e
