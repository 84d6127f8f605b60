// Helpers for end-to-end tests: a temporary folder, free loopback ports, the ferry
// binary started as a real server, API calls with a token, and a bounded load loop
// through an app's router that counts what it got.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "agent/process.h"
#include "common/http_client.h"
#include "common/json.h"
#include "free_port.h"
#include "test_paths.h"
#include "wait_until.h"

namespace ferry::e2e {

inline std::string ferry_bin() {
  return testing::ferry_binary();
}
inline std::string demo_bin() {
  return testing::demo_app_binary();
}

using testing::free_loopback_port;
// The e2e tests' name for it.
inline uint16_t free_port() {
  return free_loopback_port();
}

// Runs a command, returns its exit code and (stdout) output.
inline int run(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  const int rc = pclose(p);
  if (out) *out = s;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The state letter of /proc/PID/stat ('R', 'S', 'Z' …), 0 when the process is gone.
inline char proc_state(int pid) {
  const auto f = proc_stat_fields(pid);
  return f.empty() || f[0].empty() ? 0 : f[0][0];
}

// The demo app as most e2e tests declare it under `apps.web`: the demo binary on the
// cluster's app port, a readiness check on /healthz every 100 ms (timeout 500 ms), its
// stop grace and progress deadline; `rest` follows at the same indentation (strategy,
// analysis, …: the part a test is about).
struct DemoApp {
  int instances = 2;
  std::string stop_grace = "3s";
  std::string progress_deadline;  // "": the default
  std::string port = "@APP_PORT@";
};
inline std::string demo_app(const DemoApp& o, const std::string& rest = "") {
  std::string y = "    port: " + o.port + "\n    instances: " + std::to_string(o.instances) +
                  "\n    run:\n      command: [\"@DEMO@\", \"--port\", \"${PORT}\", \"--version\", "
                  "\"${VERSION}\"]\n      stop_grace: " +
                  o.stop_grace +
                  "\n    checks:\n      readiness:\n        http: {path: /healthz}\n        "
                  "interval: 100ms\n        timeout: 500ms\n";
  if (!o.progress_deadline.empty()) y += "    progress_deadline: " + o.progress_deadline + "\n";
  return y + rest;
}

// A deployment in a few lines for a failure message: state and reason first, then one
// line per event (type and message), so that a CI log cut in the middle still says why it
// ended as it did (the whole JSON of a deployment runs to hundreds of lines).
inline std::string story(const Json& d) {
  if (!d.is_object()) return "no deployment: " + d.dump();
  std::string s = "deployment " + d.value("id", std::string("?")) + " ended " +
                  d.value("state", std::string("?")) + ": " + d.value("reason", std::string()) +
                  "\n";
  if (d.contains("events") && d["events"].is_array())
    for (const auto& e : d["events"])
      s += "  " + e.value("type", std::string()) + ": " + e.value("message", std::string()) + "\n";
  return s;
}

struct Load {
  std::atomic<bool> stop{false};
  std::mutex mu;
  uint64_t requests = 0, transport_errors = 0;
  std::map<int, uint64_t> by_status;
  std::map<std::string, uint64_t> by_release;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;

  // `threads` loops of GET / with keep-alive, each at most `max_seconds` and `max_requests`.
  void start(uint16_t port, int nthreads = 4, int max_seconds = 120, int max_requests = 200000) {
    start(Endpoint{"127.0.0.1", port}, nthreads, max_seconds, max_requests);
  }
  // The same against a router at any address (a host in a network namespace: e2e/netns.h).
  void start(Endpoint at, int nthreads, int max_seconds, int max_requests) {
    for (int t = 0; t < nthreads; ++t)
      threads.emplace_back([this, at, max_seconds, max_requests] {
        HttpClient c(at, HttpClientOptions{5000, 1 << 20});
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(max_seconds);
        for (int i = 0; i < max_requests && !stop && std::chrono::steady_clock::now() < until;
             ++i) {
          auto r = c.request("GET", "/");
          std::lock_guard lk(mu);
          ++requests;
          if (!r.ok()) {
            ++transport_errors;
            if (errors.size() < 10) errors.push_back(r.status().message());
          } else {
            ++by_status[r->status];
            for (const auto& [k, v] : r->headers)
              if (k == "x-demo-version" || k == "X-Demo-Version") ++by_release[v];
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
      });
  }
  void finish() {
    stop = true;
    for (auto& t : threads) t.join();
    threads.clear();
  }
  uint64_t status_count(int s) {
    std::lock_guard lk(mu);
    return by_status.count(s) ? by_status[s] : 0;
  }
  // Waits until `n` more requests have ended (answered or failed) than when called: a test
  // keeps load on a phase for a number of requests, not for a time that a slow machine
  // fills with fewer. False when the load stops first (its bounds) or after `timeout`.
  bool wait_more(uint64_t n, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    uint64_t from;
    {
      std::lock_guard lk(mu);
      from = requests;
    }
    return testing::wait_until(
        [&] {
          std::lock_guard lk(mu);
          return requests >= from + n;
        },
        timeout);
  }
};

// A running `ferry server` with its local agent in a temporary folder.
class Cluster {
 public:
  // `app_yaml` is the body of the `web` app (indented 4 spaces), with @DEMO@ for the demo app.
  explicit Cluster(const std::string& name, const std::string& app_yaml,
                   const std::string& envs_yaml = "  dev: {}\n") {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-e2e-" + name + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    server_port_ = free_port();
    agent_port_ = free_port();
    app_port_ = free_port();
    std::string app = std::regex_replace(app_yaml, std::regex("@DEMO@"), demo_bin());
    app = std::regex_replace(app, std::regex("@APP_PORT@"), std::to_string(app_port_));
    std::ofstream(config()) << "version: 1\nserver:\n  listen: 127.0.0.1:" << server_port_
                            << "\n  store: sqlite:" << (dir_ / "data/ferry.db").string()
                            << "\n  data_dir: " << (dir_ / "data").string() << "\nenvironments:\n"
                            << envs_yaml << "apps:\n  web:\n"
                            << app;
    std::string out;
    const int rc = run(ferry_bin() + " --json token create --offline --config " + config() +
                           " --name e2e-admin --role admin",
                       &out);
    EXPECT_EQ(rc, 0) << out;
    auto j = parse_json(out);
    if (j.ok()) token_ = j->value("token", "");
  }
  ~Cluster() {
    stop_server();
    // The agent outlives the server by design: stop it (by its pid) and its instances.
    if (const int pid = agent_pid(); pid > 0) {
      kill(pid, SIGTERM);
      if (!testing::wait_until([&] { return agent_pid() != pid; }, std::chrono::seconds(5)))
        kill(pid, SIGKILL);
    }
    // Its instances run in their own sessions: stop the ones its state file names.
    std::ifstream state(dir_ / "data/agent/agent-state.json");
    std::string text((std::istreambuf_iterator<char>(state)), {});
    if (auto j = parse_json(text); j.ok())
      for (const auto& app : (*j)["apps"])
        for (const auto& i : app["instances"])
          if (int pid = i["status"].value("pid", 0); pid > 0) kill(-pid, SIGKILL);
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  // The pid of this cluster's agent (the one the server started, which writes
  // DATA_DIR/agent/agent.pid), or 0 when none runs: a pid the file names counts only while
  // that process is alive and is this cluster's agent, so a reused pid is never signalled.
  int agent_pid() const {
    std::ifstream f(dir_ / "data/agent/agent.pid");
    int pid = 0;
    if (!(f >> pid) || pid <= 0) return 0;
    if (const char st = proc_state(pid); st == 0 || st == 'Z') return 0;
    std::string argv = read_proc_file(pid, "cmdline");
    for (char& ch : argv)
      if (ch == '\0') ch = ' ';
    const std::string mine = "agent --listen 127.0.0.1:" + std::to_string(agent_port_) + " ";
    return argv.find(mine) == std::string::npos ? 0 : pid;
  }
  std::string config() const { return (dir_ / "ferry.yaml").string(); }
  uint16_t app_port() const { return app_port_; }
  uint16_t agent_port() const { return agent_port_; }
  const std::string& token() const { return token_; }
  std::filesystem::path dir() const { return dir_; }

  void start_server() {
    ProcessLaunch l;
    l.argv = {ferry_bin(), "server",         "--config",
              config(),    "--agent-listen", "127.0.0.1:" + std::to_string(agent_port_)};
    l.log_path = (dir_ / "server.log").string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    server_ = *h;
    if (testing::wait_until(
            [&] {
              HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{500, 1 << 20});
              auto r = c.request("GET", "/health/live");
              return r.ok() && r->status == 200;
            },
            std::chrono::seconds(30)))
      return;
    FAIL() << "server did not start; log:\n" << log();
  }
  void stop_server(int sig = SIGTERM) {
    if (server_.pid <= 0) return;
    kill(server_.pid, sig);
    int code;
    testing::wait_until([&] { return reap_child(server_.pid, &code); }, std::chrono::seconds(5));
    server_ = {};
  }
  std::string log() const {
    std::ifstream f(dir_ / "server.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  Result<Json> api(const std::string& method, const std::string& target,
                   const Json* body = nullptr) {
    HttpClient c(Endpoint{"127.0.0.1", server_port_}, HttpClientOptions{10000, 16 << 20});
    c.set_header("Authorization", "Bearer " + token_);
    return c.call(method, target, body);
  }
  std::string cli(const std::string& args, int* rc = nullptr) {
    std::string out;
    const int code = run("FERRY_SERVER=127.0.0.1:" + std::to_string(server_port_) +
                             " FERRY_TOKEN=" + token_ + " " + ferry_bin() + " " + args,
                         &out);
    if (rc) *rc = code;
    return out;
  }
  // Registers release `v` of the web app (its env: extra environment for the instances).
  Json release(const std::string& v, Json env = Json::object()) {
    Json body{{"app", "web"}, {"version", v}, {"git_sha", "abc" + v}, {"env", std::move(env)}};
    auto r = api("POST", "/api/v1/releases", &body);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : Json();
  }
  // Starts a deployment of the web app's release `v` to `env`; returns its id.
  std::string deploy(const std::string& v, const std::string& env = "dev") {
    Json body{{"app", "web"}, {"env", env}, {"release", v}};
    auto r = api("POST", "/api/v1/deployments", &body);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->value("id", "") : "";
  }
  // Waits for a deployment to end; returns it (with its events).
  Json wait_final(const std::string& id, int seconds = 90) {
    Json d;
    const bool ended = testing::wait_until(
        [&] {
          auto r = api("GET", "/api/v1/deployments/" + id);
          if (!r.ok()) return false;
          d = *r;
          const std::string s = d.value("state", "");
          return s == "succeeded" || s == "failed" || s == "rolled_back" || s == "aborted";
        },
        std::chrono::seconds(seconds), std::chrono::milliseconds(50));
    if (ended) return d;
    ADD_FAILURE() << "deployment " << id << " did not end; last: " << d.dump();
    return d;
  }

 private:
  std::filesystem::path dir_;
  uint16_t server_port_ = 0, agent_port_ = 0, app_port_ = 0;
  std::string token_;
  ProcessHandle server_;
};

}  // namespace ferry::e2e
