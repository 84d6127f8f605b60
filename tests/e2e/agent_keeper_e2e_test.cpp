// A real `ferry agent` (its keeper and the agent process, agent/keeper.h) with a demo app
// behind its router: after `kill -9` of the agent process, connections made while no agent
// runs are not refused and are answered once the keeper's next agent process serves; the
// kept sockets and the lock never reach an instance; an app that leaves its port lets it go
// although the keeper held a copy of its socket.
#include <arpa/inet.h>
#include <dirent.h>
#include <poll.h>
#include <sys/stat.h>

#include "e2e_env.h"

namespace ferry::e2e {
namespace {

// The inode of the TCP socket listening on 127.0.0.1:`port` (/proc/net/tcp), 0 if none.
uint64_t listening_inode(uint16_t port) {
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // header
  char want[16];
  std::snprintf(want, sizeof want, "0100007F:%04X", port);
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string sl, local, remote, state, queues, timer, retr, uid, timeout;
    uint64_t inode = 0;
    in >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (local == want && state == "0A") return inode;
  }
  return 0;
}

// What process `pid` has open: readlink of each /proc/PID/fd entry.
std::vector<std::string> open_files(int pid) {
  std::vector<std::string> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  // With error codes throughout: the process may end while its descriptors are listed
  // (the range-for's increment would throw).
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code lec;
    auto target = std::filesystem::read_symlink(it->path(), lec);
    if (!lec) out.push_back(target.string());
  }
  return out;
}

bool holds_socket(int pid, uint64_t inode) {
  const std::string want = "socket:[" + std::to_string(inode) + "]";
  for (const auto& f : open_files(pid))
    if (f == want) return true;
  return false;
}

bool gone(int pid) {
  return kill(pid, 0) != 0 && errno == ESRCH;
}

// One `ferry agent` run the way a host runs it (keeper included), with its API on TCP.
class KeeperAgent {
 public:
  explicit KeeperAgent(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() /
             ("ferry-keeper-e2e-" + name + "-" + std::to_string(getpid()))) {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    token_ = "keeper-e2e-token-" + std::to_string(getpid()) + "-0123456789abcdef";
    std::ofstream(dir_ / "token") << token_ << "\n";
    std::filesystem::permissions(
        dir_ / "token", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    api_port_ = free_port();
    app_port_ = free_port();
  }
  ~KeeperAgent() {
    if (keeper_.pid > 0) {
      kill(keeper_.pid, SIGTERM);
      int code;
      if (!testing::wait_until([&] { return reap_child(keeper_.pid, &code); },
                               std::chrono::seconds(15))) {
        kill(keeper_.pid, SIGKILL);
        if (const int w = worker(); w > 0) kill(w, SIGKILL);
        testing::wait_until([&] { return reap_child(keeper_.pid, &code); },
                            std::chrono::seconds(5));
      }
    }
    // The instances run in their own sessions: stop the ones the state file names.
    std::ifstream state(dir_ / "agent/agent-state.json");
    std::string text((std::istreambuf_iterator<char>(state)), {});
    std::regex pid_re("\"pid\":([0-9]+)");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pid_re);
         it != std::sregex_iterator(); ++it)
      if (const int pid = std::stoi((*it)[1]); pid > 1) kill(-pid, SIGKILL);
    std::filesystem::remove_all(dir_);
  }

  void start() {
    ProcessLaunch l;
    const auto first = static_cast<uint16_t>(21000 + (getpid() % 80) * 100);
    l.argv = {ferry_bin(),        "agent",
              "--listen",         "127.0.0.1:" + std::to_string(api_port_),
              "--data-dir",       (dir_ / "agent").string(),
              "--token-file",     (dir_ / "token").string(),
              "--instance-ports", std::to_string(first) + "-" + std::to_string(first + 99),
              "--drain-ms",       "1000"};
    l.log_path = (dir_ / "agent.log").string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    keeper_ = *h;
    ASSERT_TRUE(testing::wait_until([&] { return api("GET", "/v1/health").ok(); },
                                    std::chrono::seconds(30)))
        << log();
  }

  Result<Json> api(const std::string& method, const std::string& path, const Json* body = nullptr) {
    HttpClient c(Endpoint{"127.0.0.1", api_port_}, HttpClientOptions{5000, 1 << 20});
    c.set_header("Authorization", "Bearer " + token_);
    auto r = c.request(method, path, body ? body->dump() : "");
    if (!r.ok()) return r.status();
    if (r->status / 100 != 2)
      return unavailable("status " + std::to_string(r->status) + " " + r->body);
    auto j = parse_json(r->body);
    if (!j.ok()) return Json::object();
    return *j;
  }

  // App "web" with these demo instances (release v1) behind the router on app_port().
  void put_web(int64_t generation, const std::vector<std::string>& ids) {
    Json instances = Json::array();
    for (const auto& id : ids)
      instances.push_back(
          {{"id", id},
           {"release", "v1"},
           {"run",
            {{"command", {demo_bin(), "--port", "${PORT}", "--version", "v1"}},
             {"stop_grace_ms", 1000}}},
           {"checks",
            {{"readiness", {{"kind", "http"}, {"path", "/healthz"}, {"interval_ms", 50}}}}}});
    Json d{{"app", "web"},
           {"generation", generation},
           {"listen_port", app_port_},
           {"weights", {{"v1", 100}}},
           {"instances", instances}};
    auto r = api("PUT", "/v1/apps/web", &d);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }
  // The instances' pids once `n` are ready.
  std::vector<int> ready_pids(size_t n) {
    std::vector<int> pids;
    testing::wait_until(
        [&] {
          pids.clear();
          auto s = api("GET", "/v1/apps/web");
          if (!s.ok()) return false;
          for (const auto& i : (*s)["instances"])
            if (i.value("state", "") == "ready") pids.push_back(i.value("pid", 0));
          return pids.size() >= n;
        },
        std::chrono::seconds(30));
    return pids;
  }
  // How many instances the agent's state file records as ready: what an agent process
  // started after a crash routes to at once. The file is written just after each change
  // (Agent::save_loop, with an fsync): an instance the API already reports ready can still
  // be "starting" there for a moment (0-80 ms measured at load 15), and a process killed
  // then comes back with it "starting" and answers 503 until its first probe passes.
  size_t saved_ready() const {
    auto j = parse_json(read_file(dir_ / "agent/agent-state.json"));
    size_t n = 0;
    if (!j.ok() || !j->is_object()) return 0;
    for (const auto& app : j->value("apps", Json::array()))
      for (const auto& i : app.value("instances", Json::array()))
        n += i.value("status", Json::object()).value("state", "") == "ready";
    return n;
  }
  int router_status() const {
    HttpClient c(Endpoint{"127.0.0.1", app_port_}, HttpClientOptions{3000, 1 << 20});
    auto r = c.request("GET", "/");
    return r.ok() ? r->status : -1;
  }
  // The agent process (the keeper's worker), from its pid file.
  int worker() const {
    std::ifstream f(dir_ / "agent/agent.pid");
    int pid = 0;
    f >> pid;
    return pid;
  }
  int keeper() const { return keeper_.pid; }
  uint16_t app_port() const { return app_port_; }
  uint16_t api_port() const { return api_port_; }
  std::string log() const { return read_file(dir_ / "agent.log"); }
  std::filesystem::path dir() const { return dir_; }

 private:
  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  std::filesystem::path dir_;
  std::string token_;
  uint16_t api_port_ = 0, app_port_ = 0;
  ProcessHandle keeper_;
};

// A GET on a connection made now: "refused", or the status line of the answer.
struct EarlyRequest {
  int fd = -1;
  bool refused = false;
};
EarlyRequest connect_and_send(uint16_t port) {
  EarlyRequest r;
  r.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(r.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    r.refused = true;
    close(r.fd);
    r.fd = -1;
    return r;
  }
  const std::string req = "GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n";
  if (write(r.fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) r.refused = true;
  return r;
}
std::string status_line(int fd, int timeout_ms) {
  std::string got;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (got.find("\r\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    char buf[512];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got.substr(0, got.find("\r\n"));
}

TEST(AgentKeeperE2E, ConnectionsMadeWhileTheAgentIsDeadAreAnsweredAfterTheRestart) {
  KeeperAgent a("dead");
  a.start();
  a.put_web(1, {"web-0"});
  ASSERT_EQ(a.ready_pids(1).size(), 1u) << a.log();
  ASSERT_TRUE(testing::wait_until([&] { return a.router_status() == 200; }));
  const uint64_t router = listening_inode(a.app_port());
  ASSERT_NE(router, 0u);
  // The keeper holds the router's and the API's listening sockets.
  ASSERT_TRUE(testing::wait_until([&] {
    return holds_socket(a.keeper(), router) &&
           holds_socket(a.keeper(), listening_inode(a.api_port()));
  })) << a.log();
  // What the crash must keep is what was saved: wait for the state file to have it.
  ASSERT_TRUE(testing::wait_until([&] { return a.saved_ready() == 1; })) << a.log();
  const int worker = a.worker();
  ASSERT_GT(worker, 0);
  ASSERT_NE(worker, a.keeper());

  ASSERT_EQ(kill(worker, SIGKILL), 0);
  ASSERT_TRUE(testing::wait_until([&] { return gone(worker); }, std::chrono::seconds(30)));
  // Right after the agent process is gone (before the next one can have started up):
  // every connection is taken into the kept socket's backlog, none is refused.
  std::vector<EarlyRequest> early;
  for (int i = 0; i < 8; ++i) early.push_back(connect_and_send(a.app_port()));
  int refused = 0;
  for (auto& r : early) {
    if (r.refused) {
      ++refused;
      continue;
    }
    EXPECT_EQ(status_line(r.fd, 30'000), "HTTP/1.1 200 OK");
    close(r.fd);
  }
  EXPECT_EQ(refused, 0) << "connections refused while the agent restarted";
  // A new agent process serves, under the same keeper, on the same socket.
  EXPECT_TRUE(testing::wait_until([&] { return a.worker() != worker && a.worker() > 0; }));
  EXPECT_FALSE(gone(a.keeper()));
  EXPECT_EQ(listening_inode(a.app_port()), router);
  EXPECT_NE(a.log().find("the keeper starts it again"), std::string::npos) << a.log();
  EXPECT_EQ(a.router_status(), 200);
  EXPECT_TRUE(a.api("GET", "/v1/apps").ok());
}

TEST(AgentKeeperE2E, KeptSocketsAndTheLockNeverReachAnInstance) {
  KeeperAgent a("leak");
  a.start();
  a.put_web(1, {"web-0"});
  ASSERT_EQ(a.ready_pids(1).size(), 1u) << a.log();
  const uint64_t router = listening_inode(a.app_port());
  const uint64_t api = listening_inode(a.api_port());
  ASSERT_TRUE(testing::wait_until([&] { return holds_socket(a.keeper(), router); })) << a.log();
  ASSERT_TRUE(testing::wait_until([&] { return a.saved_ready() == 1; })) << a.log();
  // A crash: the next agent process has the kept descriptors (inherited from the keeper);
  // the instance it starts must not.
  const int worker = a.worker();
  ASSERT_EQ(kill(worker, SIGKILL), 0);
  ASSERT_TRUE(testing::wait_until([&] { return a.worker() != worker && a.router_status() == 200; },
                                  std::chrono::seconds(30)))
      << a.log();
  a.put_web(2, {"web-0", "web-1"});
  const auto pids = a.ready_pids(2);
  ASSERT_EQ(pids.size(), 2u) << a.log();
  for (int pid : pids) {
    ASSERT_GT(pid, 0);
    EXPECT_FALSE(holds_socket(pid, router)) << "instance " << pid << " has the router's socket";
    EXPECT_FALSE(holds_socket(pid, api)) << "instance " << pid << " has the agent API's socket";
    for (const auto& f : open_files(pid))
      EXPECT_EQ(f.find("agent.lock"), std::string::npos) << "instance " << pid << " has " << f;
  }
}

TEST(AgentKeeperE2E, AnAppThatLeavesItsPortLetsItGoThoughTheKeeperHeldIt) {
  KeeperAgent a("leave");
  a.start();
  a.put_web(1, {"web-0"});
  ASSERT_EQ(a.ready_pids(1).size(), 1u) << a.log();
  const uint64_t router = listening_inode(a.app_port());
  ASSERT_TRUE(testing::wait_until([&] { return holds_socket(a.keeper(), router); })) << a.log();
  ASSERT_TRUE(a.api("DELETE", "/v1/apps/web").ok());
  // Nobody listens on the port any more (the keeper's copy included): refused, and it can
  // be bound again at once.
  EXPECT_TRUE(testing::wait_until([&] { return listening_inode(a.app_port()) == 0; },
                                  std::chrono::seconds(30)))
      << "the port still listens after the app left";
  EXPECT_TRUE(testing::wait_until([&] {
    auto r = connect_and_send(a.app_port());
    if (r.fd >= 0) close(r.fd);
    return r.refused;
  }));
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(a.app_port());
  EXPECT_EQ(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(listen(s, 4), 0);
  close(s);
}

}  // namespace
}  // namespace ferry::e2e
