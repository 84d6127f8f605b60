// A load balancer in front of several hosts (issue 16, item 6; deploy/edge/): the real
// HAProxy and nginx of the machine, on loopback, in front of two hosts' routers, each host a
// real `ferry agent` serving the demo app. The balancer follows each agent's per-app
// readiness (GET /v1/ready/APP): `ferry agents out` (PUT /v1/ready {"out": true}) takes host
// b out while its router still serves, the balancer stops sending to b, and only then is b's
// app drained and stopped — with no failed request through the balancer at any point.
// The configs are the ones in deploy/edge/, with the test's addresses put in. The agents run
// as remote agents do: their API in mutual TLS (`--tls-dir`), so the balancers ask each
// agent's plain readiness listener (`--ready-listen`), which answers readiness and nothing
// else. A stopping agent answers 503 first (its drain) while its router still serves, and
// a host taken out stays out across an agent restart.
#include <sys/wait.h>

#include <functional>

#include "agent/http_agent_client.h"
#include "common/tls.h"
#include "e2e/e2e_env.h"
#include "test_skip.h"

namespace ferry::e2e {
namespace {

class EdgeHosts {
 public:
  EdgeHosts() {
    dir_ = std::filesystem::temp_directory_path() / ("ferry-e2e-edge-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    token_ = "edge-agent-token-" + std::to_string(getpid()) + "-0123456789abcdef";
    std::ofstream(dir_ / "agent.token") << token_ << "\n";
    std::filesystem::permissions(dir_ / "agent.token", std::filesystem::perms::owner_read |
                                                           std::filesystem::perms::owner_write);
    ca_ = make_ca("edge test CA", 2).value();
    const std::string key = make_private_key().value();
    server_id_ = TlsIdentity{
        sign_csr(ca_, make_csr(key, kServerCertName).value(), kServerCertName, 2).value(),
        key,
        ca_.cert_pem,
        {}};
  }
  ~EdgeHosts() {
    for (auto& p : procs_) stop(p);
    for (size_t i = 0; i < agent_ports_.size(); ++i) {
      std::ifstream state(dir_ / ("agent-" + std::to_string(i)) / "agent-state.json");
      std::string text((std::istreambuf_iterator<char>(state)), {});
      if (auto j = parse_json(text); j.ok())
        for (const auto& app : (*j)["apps"])
          for (const auto& inst : app["instances"])
            if (int pid = inst["status"].value("pid", 0); pid > 0) kill(-pid, SIGKILL);
    }
    if (!::testing::Test::HasFailure()) std::filesystem::remove_all(dir_);
  }
  const std::filesystem::path& dir() const { return dir_; }

  // Host i: an agent on loopback serving web.production (one demo instance, answering with
  // X-Demo-Version: host-i) on its own app port.
  // The agent runs with mutual TLS (a certificate of the test's CA named host-i) and its
  // plain readiness listener on a port of its own.
  void start_host(size_t i) {
    agent_ports_.push_back(free_port());
    app_ports_.push_back(free_port());
    ready_ports_.push_back(free_port());
    const auto tls = dir_ / ("tls-" + std::to_string(i));
    std::filesystem::create_directories(tls);
    const std::string name = "host-" + std::to_string(i);
    const std::string key = make_private_key().value();
    write_private(tls / "agent.key", key);
    write_private(tls / "agent.crt", sign_csr(ca_, make_csr(key, name).value(), name, 2).value());
    write_private(tls / "ca.crt", ca_.cert_pem);
    procs_.emplace_back();
    ASSERT_NO_FATAL_FAILURE(run_agent(i));
    ASSERT_TRUE(
        testing::wait_until([&] { return agent(i).health().ok(); }, std::chrono::seconds(30)));
    AppDesiredState d;
    d.app = "web.production";
    d.app_name = "web";
    d.env = "production";
    d.generation = 1;
    d.listen_port = app_ports_[i];
    d.weights = {{"v1", 100}};
    d.stable_release = "v1";
    InstanceSpec inst;
    inst.id = "web.production-v1-" + std::to_string(i);
    inst.release = "v1";
    inst.run.command = {demo_bin(), "--port", "${PORT}", "--version", "host-" + std::to_string(i)};
    inst.checks.readiness.kind = ProbeSpec::Kind::kHttp;
    inst.checks.readiness.path = "/healthz";
    inst.checks.readiness.interval_ms = 100;
    d.instances.push_back(inst);
    ASSERT_TRUE(agent(i).put_app(d).ok());
  }
  // (Re)starts host i's agent process on its data dir; `drain_ms`: its --ready-drain-ms.
  void run_agent(size_t i, int drain_ms = 3000) {
    ProcessLaunch l;
    l.argv = {ferry_bin(),        "agent",
              "--listen",         "127.0.0.1:" + std::to_string(agent_ports_[i]),
              "--data-dir",       (dir_ / ("agent-" + std::to_string(i))).string(),
              "--token-file",     (dir_ / "agent.token").string(),
              "--tls-dir",        (dir_ / ("tls-" + std::to_string(i))).string(),
              "--ready-listen",   std::to_string(ready_ports_[i]),
              "--ready-drain-ms", std::to_string(drain_ms)};
    l.log_path = (dir_ / ("agent-" + std::to_string(i) + ".log")).string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    procs_.at(i) = *h;
  }
  // Sends `sig` to host i's agent; `wait`: until it ended.
  void signal_agent(size_t i, int sig, bool wait) {
    kill(procs_.at(i).pid, sig);
    int code;
    if (wait) {
      ASSERT_TRUE(testing::wait_until([&] { return reap_child(procs_.at(i).pid, &code); },
                                      std::chrono::seconds(60)));
      procs_.at(i) = {};
    }
  }
  bool agent_running(size_t i) {
    int code;
    if (procs_.at(i).pid <= 0) return false;
    if (!reap_child(procs_.at(i).pid, &code)) return true;
    procs_.at(i) = {};
    return false;
  }
  HttpAgentClient agent(size_t i) const {
    const std::string name = "host-" + std::to_string(i);
    return HttpAgentClient(Endpoint{"127.0.0.1", agent_ports_.at(i)}, token_, 2000, name,
                           TlsContext::create(TlsContext::Role::kClient, server_id_, name).value());
  }
  // The agent's readiness as a balancer sees it: plain HTTP on its readiness port, no token.
  int readiness(size_t i) const {
    HttpClient c(Endpoint{"127.0.0.1", ready_ports_.at(i)}, HttpClientOptions{1000, 1 << 16});
    auto r = c.request("GET", "/v1/ready/web.production");
    return r.ok() ? r->status : 0;
  }
  uint16_t app_port(size_t i) const { return app_ports_.at(i); }
  uint16_t agent_port(size_t i) const { return agent_ports_.at(i); }
  uint16_t ready_port(size_t i) const { return ready_ports_.at(i); }

  // Starts a balancer process (its output in NAME.log).
  void start(const std::string& name, std::vector<std::string> argv) {
    ProcessLaunch l;
    l.argv = std::move(argv);
    l.log_path = (dir_ / (name + ".log")).string();
    auto h = start_process(l);
    ASSERT_TRUE(h.ok()) << h.status().message();
    procs_.push_back(*h);
  }
  std::string log(const std::string& name) const {
    std::ifstream f(dir_ / (name + ".log"));
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  static void stop(ProcessHandle& h) {
    if (h.pid <= 0) return;
    kill(h.pid, SIGTERM);
    int code;
    if (!testing::wait_until([&] { return reap_child(h.pid, &code); }, std::chrono::seconds(10))) {
      kill(h.pid, SIGKILL);
      testing::wait_until([&] { return reap_child(h.pid, &code); }, std::chrono::seconds(5));
    }
    h = {};
  }

  static void write_private(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
    std::filesystem::permissions(
        p, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }

  std::filesystem::path dir_;
  std::string token_;
  CertAuthority ca_;
  TlsIdentity server_id_;
  std::vector<uint16_t> agent_ports_, app_ports_, ready_ports_;
  std::vector<ProcessHandle> procs_;
};

// The full path of a program on PATH ("" when there is none).
std::string program(const std::string& name) {
  std::string out;
  if (run("command -v " + name, &out) != 0) return "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// What one host served through the balancer so far.
uint64_t served_by(Load& load, size_t host) {
  std::lock_guard lk(load.mu);
  auto it = load.by_release.find("host-" + std::to_string(host));
  return it == load.by_release.end() ? 0 : it->second;
}

// The scenario both balancers go through: both hosts serve; b is taken out and stops
// getting requests while its router still serves; then b's app is drained and stopped;
// no request fails. `refresh` runs whatever the balancer needs to look again (nginx).
void take_a_host_out_under_load(EdgeHosts& h, uint16_t lb_port,
                                const std::function<void()>& refresh = {}) {
  Load load;
  load.start(Endpoint{"127.0.0.1", lb_port}, 3, 120, 100000);
  ASSERT_TRUE(testing::wait_until(
      [&] { return served_by(load, 0) > 20 && served_by(load, 1) > 20; }, std::chrono::seconds(60)))
      << "host-0 " << served_by(load, 0) << ", host-1 " << served_by(load, 1);

  ASSERT_TRUE(h.agent(1).set_out(true).ok());
  EXPECT_EQ(h.readiness(1), 503);
  EXPECT_EQ(h.readiness(0), 200);
  if (refresh) refresh();
  // The balancer stops sending to b: 100 requests in a row reach a only.
  uint64_t b_before = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        b_before = served_by(load, 1);
        if (!load.wait_more(100, std::chrono::seconds(30))) return false;
        return served_by(load, 1) == b_before;
      },
      std::chrono::seconds(60)))
      << "the balancer kept sending to the host taken out";
  // Only now is b drained: its app removed (instances drained and stopped).
  ASSERT_TRUE(h.agent(1).remove_app("web.production").ok());
  ASSERT_TRUE(load.wait_more(200));
  load.finish();
  EXPECT_EQ(served_by(load, 1), b_before);
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors[0]);
  EXPECT_EQ(load.status_count(200), load.requests);
}

// deploy/edge/haproxy.cfg with the test's addresses (its checks and timings as shipped),
// started in front of hosts 0 and 1; returns its port once it answers.
uint16_t start_haproxy(EdgeHosts& h, const std::string& haproxy) {
  // deploy/edge/haproxy.cfg with this test's addresses: its checks and timings as shipped.
  std::string cfg = read_text(testing::source_dir() + "/deploy/edge/haproxy.cfg");
  EXPECT_NE(cfg.find("http-check send meth GET uri /v1/ready/web.production"), std::string::npos);
  const uint16_t lb = free_port();
  cfg = std::regex_replace(cfg, std::regex("bind :80"), "bind 127.0.0.1:" + std::to_string(lb));
  cfg = std::regex_replace(cfg, std::regex("    server box-[0-9].*\n"), "");
  for (size_t i = 0; i < 2; ++i)
    cfg += "    server host-" + std::to_string(i) + " 127.0.0.1:" + std::to_string(h.app_port(i)) +
           " check port " + std::to_string(h.ready_port(i)) + "\n";
  std::ofstream(h.dir() / "haproxy.cfg") << cfg;
  EXPECT_EQ(run(haproxy + " -c -f " + (h.dir() / "haproxy.cfg").string()), 0);
  h.start("haproxy", {haproxy, "-db", "-f", (h.dir() / "haproxy.cfg").string()});
  EXPECT_TRUE(testing::wait_until(
      [&] {
        HttpClient c(Endpoint{"127.0.0.1", lb}, HttpClientOptions{1000, 1 << 16});
        auto r = c.request("GET", "/");
        return r.ok() && r->status == 200;
      },
      std::chrono::seconds(30)))
      << h.log("haproxy");
  return lb;
}

TEST(EdgeE2E, HaproxyTakesAHostOutOnItsReadinessBeforeItDrains) {
  const std::string haproxy = program("haproxy");
  if (haproxy.empty()) FERRY_SKIP_OR_FAIL("haproxy is not installed (Debian package haproxy)");
  EdgeHosts h;
  ASSERT_NO_FATAL_FAILURE(h.start_host(0));
  ASSERT_NO_FATAL_FAILURE(h.start_host(1));
  ASSERT_TRUE(testing::wait_until([&] { return h.readiness(0) == 200 && h.readiness(1) == 200; },
                                  std::chrono::seconds(30)));
  // Nobody takes a host out through the readiness port (it answers readiness only), and
  // the TLS API answers nothing in plain HTTP.
  HttpClient anon(Endpoint{"127.0.0.1", h.ready_port(1)}, HttpClientOptions{1000, 1 << 16});
  auto refused = anon.request("PUT", "/v1/ready", R"({"out": true})");
  ASSERT_TRUE(refused.ok()) << refused.status().message();
  EXPECT_EQ(refused->status, 404);
  HttpClient plain_api(Endpoint{"127.0.0.1", h.agent_port(1)}, HttpClientOptions{1000, 1 << 16});
  auto plain = plain_api.request("GET", "/v1/ready/web.production");
  EXPECT_FALSE(plain.ok() && plain->status == 200);
  EXPECT_EQ(h.readiness(1), 200);
  // An app the host does not run answers like one with no ready instance.
  HttpClient c(Endpoint{"127.0.0.1", h.ready_port(0)}, HttpClientOptions{1000, 1 << 16});
  auto unknown = c.request("GET", "/v1/ready/nope.production");
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 503);
  const uint16_t lb = start_haproxy(h, haproxy);
  ASSERT_FALSE(::testing::Test::HasFailure());
  take_a_host_out_under_load(h, lb);
}

// Stopping an agent: its readiness answers 503 first (the drain) while its router still
// serves, so HAProxy stops sending to it before it stops; no request fails. A host taken
// out stays out when its agent restarts (the mark is kept in its data dir).
TEST(EdgeE2E, AStoppingAgentIsTakenOutBeforeItStopsAndTheOutMarkSurvivesARestart) {
  const std::string haproxy = program("haproxy");
  if (haproxy.empty()) FERRY_SKIP_OR_FAIL("haproxy is not installed (Debian package haproxy)");
  EdgeHosts h;
  ASSERT_NO_FATAL_FAILURE(h.start_host(0));
  ASSERT_NO_FATAL_FAILURE(h.start_host(1));
  // Host 1 drains for up to 10 minutes: the test ends the drain itself (a second SIGTERM).
  h.signal_agent(1, SIGTERM, true);
  ASSERT_NO_FATAL_FAILURE(h.run_agent(1, 600'000));
  ASSERT_TRUE(testing::wait_until([&] { return h.readiness(0) == 200 && h.readiness(1) == 200; },
                                  std::chrono::seconds(60)));
  const uint16_t lb = start_haproxy(h, haproxy);
  ASSERT_FALSE(::testing::Test::HasFailure());
  Load load;
  load.start(Endpoint{"127.0.0.1", lb}, 3, 120, 100000);
  ASSERT_TRUE(
      testing::wait_until([&] { return served_by(load, 0) > 20 && served_by(load, 1) > 20; },
                          std::chrono::seconds(60)));
  h.signal_agent(1, SIGTERM, false);
  ASSERT_TRUE(testing::wait_until([&] { return h.readiness(1) == 503; }, std::chrono::seconds(30)));
  // HAProxy stops sending to host 1 while its agent (and router) still runs.
  uint64_t b_before = 0;
  ASSERT_TRUE(testing::wait_until(
      [&] {
        b_before = served_by(load, 1);
        if (!load.wait_more(100, std::chrono::seconds(30))) return false;
        return served_by(load, 1) == b_before;
      },
      std::chrono::seconds(60)))
      << "the balancer kept sending to the stopping host";
  EXPECT_TRUE(h.agent_running(1)) << "the agent stopped before its drain ended";
  h.signal_agent(1, SIGTERM, true);  // the drain ends now
  ASSERT_TRUE(load.wait_more(100));
  load.finish();
  EXPECT_EQ(served_by(load, 1), b_before);
  EXPECT_EQ(load.transport_errors, 0u) << (load.errors.empty() ? "" : load.errors[0]);
  EXPECT_EQ(load.status_count(200), load.requests);

  // Out, then restarted (its instance re-adopted and ready): still out.
  ASSERT_TRUE(h.agent(0).set_out(true).ok());
  EXPECT_EQ(h.readiness(0), 503);
  h.signal_agent(0, SIGTERM, false);
  h.signal_agent(0, SIGTERM, true);
  ASSERT_NO_FATAL_FAILURE(h.run_agent(0));
  ASSERT_TRUE(
      testing::wait_until([&] { return h.agent(0).health().ok(); }, std::chrono::seconds(30)));
  ASSERT_TRUE(testing::wait_until(
      [&] {
        auto st = h.agent(0).app_status("web.production");
        return st.ok() && !st->instances.empty() && st->instances[0].state == InstanceState::kReady;
      },
      std::chrono::seconds(30)));
  EXPECT_EQ(h.readiness(0), 503);
  ASSERT_TRUE(h.agent(0).set_out(false).ok());
  EXPECT_EQ(h.readiness(0), 200);
}

TEST(EdgeE2E, NginxFollowsTheReadinessThroughTheUpstreamScript) {
  const std::string nginx = program("nginx");
  if (nginx.empty()) FERRY_SKIP_OR_FAIL("nginx is not installed (Debian package nginx)");
  if (run("curl --version") != 0) FERRY_SKIP_OR_FAIL("curl is not installed");
  EdgeHosts h;
  ASSERT_NO_FATAL_FAILURE(h.start_host(0));
  ASSERT_NO_FATAL_FAILURE(h.start_host(1));
  ASSERT_TRUE(testing::wait_until([&] { return h.readiness(0) == 200 && h.readiness(1) == 200; },
                                  std::chrono::seconds(30)));
  const std::string d = h.dir().string();
  const std::string upstream = d + "/web.production.upstream";
  std::string cfg = read_text(testing::source_dir() + "/deploy/edge/nginx.conf");
  ASSERT_NE(cfg.find("include /etc/nginx/ferry/web.production.upstream;"), std::string::npos);
  const uint16_t lb = free_port();
  cfg = std::regex_replace(cfg, std::regex("/etc/nginx/ferry/web.production.upstream"), upstream);
  cfg = std::regex_replace(cfg, std::regex("listen 80;"),
                           "listen 127.0.0.1:" + std::to_string(lb) + ";");
  cfg = "pid " + d + "/nginx.pid;\nerror_log " + d + "/nginx-error.log;\n" + cfg;
  cfg =
      std::regex_replace(cfg, std::regex("http \\{\n"),
                         "http {\n    client_body_temp_path " + d + "/nb;\n    proxy_temp_path " +
                             d + "/np;\n    fastcgi_temp_path " + d + "/nf;\n    uwsgi_temp_path " +
                             d + "/nu;\n    scgi_temp_path " + d + "/ns;\n");
  std::ofstream(d + "/nginx.conf") << cfg;
  // The upstream script as shipped, once per look; nginx reloaded through its pid file.
  const std::string hosts =
      " host-0=127.0.0.1:" + std::to_string(h.app_port(0)) + ":" + std::to_string(h.ready_port(0)) +
      " host-1=127.0.0.1:" + std::to_string(h.app_port(1)) + ":" + std::to_string(h.ready_port(1));
  const std::string script = "RELOAD='" + nginx + " -p " + d + " -c " + d +
                             "/nginx.conf -s reload' " + testing::source_dir() +
                             "/deploy/edge/ferry-nginx-upstream --once web.production " + upstream +
                             hosts;
  std::string out;
  ASSERT_EQ(run("RELOAD=true " + testing::source_dir() +
                    "/deploy/edge/ferry-nginx-upstream --once web.production " + upstream + hosts,
                &out),
            0)
      << out;
  ASSERT_EQ(read_text(upstream).find(" down;"), std::string::npos) << read_text(upstream);
  ASSERT_EQ(run(nginx + " -t -p " + d + " -c " + d + "/nginx.conf", &out), 0) << out;
  ASSERT_NO_FATAL_FAILURE(
      h.start("nginx", {nginx, "-p", d, "-c", d + "/nginx.conf", "-g", "daemon off;"}));
  ASSERT_TRUE(testing::wait_until(
      [&] {
        HttpClient c(Endpoint{"127.0.0.1", lb}, HttpClientOptions{1000, 1 << 16});
        auto r = c.request("GET", "/");
        return r.ok() && r->status == 200;
      },
      std::chrono::seconds(30)))
      << h.log("nginx") << read_text(d + "/nginx-error.log");
  take_a_host_out_under_load(h, lb, [&] {
    std::string o;
    EXPECT_EQ(run(script, &o), 0) << o;
    EXPECT_NE(read_text(upstream).find("down;  # host-1: readiness 503"), std::string::npos)
        << read_text(upstream);
  });
}

}  // namespace
}  // namespace ferry::e2e
