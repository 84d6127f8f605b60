// hosts_bench: many hosts, one control plane (issue 16, item 8). Starts N real `ferry
// agent` processes on loopback (each its own port, data dir and app port), gives each the
// same app (one instance of v1 and one of v2, `sleep`: no traffic is needed), then measures
// what the server does on every canary step and every status read, with the server's own
// code: HttpAgentClient per agent, fanned out with engine/reconciler.h's fan_out.
//   weight change: set_weights to all N at once → every agent accepted (the call returns
//                  once the agent's router has the new table), then confirmed: a status
//                  read of all N that shows the new weights everywhere;
//   status read:   app_status of all N at once (what `ferry status` and the analysis read).
// Reported: p50/p95/max over the rounds, CPU-seconds of the agents (/proc/PID/stat) and of
// this process (getrusage) over the measured part, and the load average before and after.
//
// Usage: hosts_bench --ferry build/src/cli/ferry [--agents 50] [--rounds 30]
// Touches only loopback and a temporary directory; stops only the agents it started (by
// pid) after removing the app from each (which stops its instances).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/http_agent_client.h"
#include "common/spawn.h"
#include "common/tls.h"
#include "engine/reconciler.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// A free TCP port on loopback (bound and released; the agent binds it next).
uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return ntohs(sa.sin_port);
}

// utime + stime of a process, in seconds.
double cpu_seconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), {});
  const auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)
    if (i == 14 || i == 15) ticks += std::stod(field);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The same for an agent: its process and its children (the keeper's worker does the work).
double agent_cpu_seconds(pid_t pid) {
  double total = cpu_seconds(pid);
  std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child = 0;
  while (f >> child) total += cpu_seconds(child);
  return total;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

struct Stats {
  double p50 = 0, p95 = 0, max = 0;
};
Stats stats_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return {};
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]; };
  return {at(0.5), at(0.95), v.back()};
}

int run(int argc, char** argv) {
  std::string ferry;
  int agents = 50, rounds = 30;
  bool tls = false, fresh = false;
  for (int i = 1; i < argc; ++i) {
    const bool value = i + 1 < argc;
    if (!std::strcmp(argv[i], "--tls")) {
      tls = true;
    } else if (!std::strcmp(argv[i], "--fresh-connections")) {
      // A new connection (and TLS handshake) for every measured call, as before issue 16's
      // kept-alive connections: for a comparison at the same load.
      fresh = true;
    } else if (value && !std::strcmp(argv[i], "--ferry")) {
      ferry = argv[++i];
    } else if (value && !std::strcmp(argv[i], "--agents")) {
      agents = std::clamp(std::atoi(argv[++i]), 1, 500);
    } else if (value && !std::strcmp(argv[i], "--rounds")) {
      rounds = std::clamp(std::atoi(argv[++i]), 1, 10000);
    }
  }
  if (ferry.empty()) {
    std::fprintf(stderr,
                 "usage: hosts_bench --ferry PATH [--agents N] [--rounds R] [--tls] "
                 "[--fresh-connections]\n");
    return 2;
  }
  const fs::path dir =
      fs::temp_directory_path() / ("ferry-bench-hosts-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string token = "bench-agent-token-" + std::to_string(getpid()) + "-0123456789abcdef";
  {
    std::ofstream(dir / "agent.token") << token << "\n";
    fs::permissions(dir / "agent.token", fs::perms::owner_read | fs::perms::owner_write);
  }
  // --tls: a CA, the server's client certificate and one per agent (as `ferry agents
  // enroll` makes them): every call over mutual TLS, the agent's name pinned.
  CertAuthority ca;
  TlsIdentity server_id;
  auto issue = [&](const std::string& cn) {
    auto key = make_private_key().value();
    auto cert = sign_csr(ca, make_csr(key, cn).value(), cn, 1).value();
    return TlsIdentity{cert, key, ca.cert_pem, {}};
  };
  if (tls) {
    ca = make_ca("bench CA", 1).value();
    server_id = issue(kServerCertName);
  }
  std::vector<pid_t> pids;
  std::vector<std::unique_ptr<HttpAgentClient>> clients;
  std::vector<uint16_t> app_ports;
  for (int i = 0; i < agents; ++i) {
    const uint16_t port = free_port();
    SpawnOptions o;
    o.argv = {ferry,          "agent",
              "--listen",     "127.0.0.1:" + std::to_string(port),
              "--data-dir",   (dir / ("agent-" + std::to_string(i))).string(),
              "--token-file", (dir / "agent.token").string(),
              "--log-level",  "warn"};
    std::shared_ptr<TlsContext> ctx;
    if (tls) {
      const fs::path td = dir / ("tls-" + std::to_string(i));
      fs::create_directories(td);
      const TlsIdentity id = issue("h" + std::to_string(i));
      for (const auto& [file, text] :
           {std::pair{"agent.crt", id.cert_pem}, std::pair{"agent.key", id.key_pem},
            std::pair{"ca.crt", ca.cert_pem}}) {
        std::ofstream(td / file) << text;
        fs::permissions(td / file, fs::perms::owner_read | fs::perms::owner_write);
      }
      o.argv.push_back("--tls-dir");
      o.argv.push_back(td.string());
      ctx =
          TlsContext::create(TlsContext::Role::kClient, server_id, "h" + std::to_string(i)).value();
    }
    auto pid = spawn(o);
    if (!pid.ok()) {
      std::fprintf(stderr, "agent %d: %s\n", i, pid.status().message().c_str());
      return 1;
    }
    pids.push_back(*pid);
    clients.push_back(std::make_unique<HttpAgentClient>(Endpoint{"127.0.0.1", port}, token, 3000,
                                                        "h" + std::to_string(i), ctx));
    app_ports.push_back(free_port());
  }
  int exit_code = 0;
  auto stop_all = [&] {
    fan_out<Status>(clients.size(), [&](size_t i) { return clients[i]->remove_app("web.bench"); });
    for (pid_t p : pids) ::kill(p, SIGTERM);
    for (pid_t p : pids) ::waitpid(p, nullptr, 0);
    fs::remove_all(dir);
  };
  // All agents answer.
  const auto t_start = Clock::now();
  for (;;) {
    auto up = fan_out<Status>(clients.size(), [&](size_t i) { return clients[i]->health(); });
    if (std::all_of(up.begin(), up.end(), [](const Status& s) { return s.ok(); })) break;
    if (ms_since(t_start) > 60'000) {
      std::fprintf(stderr, "not all agents answered within 60 s\n");
      stop_all();
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("%d agents up in %.0f ms\n", agents, ms_since(t_start));
  // The app on every host: v1 and v2, one instance each, weights v1=100.
  int64_t generation = 1;
  auto put = fan_out<Status>(clients.size(), [&](size_t i) {
    AppDesiredState d;
    d.app = "web.bench";
    d.app_name = "web";
    d.env = "bench";
    d.generation = generation;
    d.listen_port = app_ports[i];
    d.weights = {{"v1", 100}, {"v2", 0}};
    for (const std::string rel : {"v1", "v2"}) {
      InstanceSpec inst;
      inst.id = "web.bench-" + rel + "-" + std::to_string(i);
      inst.release = rel;
      inst.run.command = {"/bin/sleep", "3600"};
      d.instances.push_back(inst);
    }
    return clients[i]->put_app(d);
  });
  for (size_t i = 0; i < put.size(); ++i)
    if (!put[i].ok()) {
      std::fprintf(stderr, "put on agent %zu: %s\n", i, put[i].message().c_str());
      stop_all();
      return 1;
    }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // instances started

  std::vector<double> agent_cpu0;
  for (pid_t p : pids) agent_cpu0.push_back(agent_cpu_seconds(p));
  rusage self0{};
  getrusage(RUSAGE_SELF, &self0);
  const std::string load_before = loadavg();
  std::vector<double> accepted_ms, confirmed_ms, status_ms;
  int failures = 0;
  for (int r = 0; r < rounds; ++r) {
    ++generation;
    const int w2 = (r % 9 + 1) * 10;
    const std::map<std::string, int> want{{"v1", 100 - w2}, {"v2", w2}};
    const auto t0 = Clock::now();
    auto acks = fan_out<Status>(clients.size(), [&](size_t i) {
      if (fresh) clients[i]->close_idle_connections();
      return clients[i]->set_weights("web.bench", generation, want);
    });
    accepted_ms.push_back(ms_since(t0));
    auto seen = fan_out<bool>(clients.size(), [&](size_t i) {
      if (fresh) clients[i]->close_idle_connections();
      auto s = clients[i]->app_status("web.bench");
      return s.ok() && s->weights == want;
    });
    confirmed_ms.push_back(ms_since(t0));
    for (size_t i = 0; i < acks.size(); ++i)
      if (!acks[i].ok() || !seen[i]) ++failures;
    const auto t1 = Clock::now();
    auto reads = fan_out<bool>(clients.size(), [&](size_t i) {
      if (fresh) clients[i]->close_idle_connections();
      return clients[i]->app_status("web.bench").ok();
    });
    status_ms.push_back(ms_since(t1));
    for (bool ok : reads)
      if (!ok) ++failures;
  }
  rusage self1{};
  getrusage(RUSAGE_SELF, &self1);
  double agent_cpu = 0;
  for (size_t i = 0; i < pids.size(); ++i) agent_cpu += agent_cpu_seconds(pids[i]) - agent_cpu0[i];
  auto tv = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  const double self_cpu =
      tv(self1.ru_utime) + tv(self1.ru_stime) - tv(self0.ru_utime) - tv(self0.ru_stime);
  const Stats a = stats_of(accepted_ms), c = stats_of(confirmed_ms), s = stats_of(status_ms);
  std::printf("agents %d, rounds %d, failed calls %d\n", agents, rounds, failures);
  std::printf("weight change accepted by all:  p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", a.p50,
              a.p95, a.max);
  std::printf("weight change seen on all:      p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", c.p50,
              c.p95, c.max);
  std::printf("status read of all:             p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", s.p50,
              s.p95, s.max);
  std::printf("cpu: agents %.2f s in total (%.1f ms per agent per round), bench %.2f s\n",
              agent_cpu, 1000 * agent_cpu / agents / rounds, self_cpu);
  std::printf("loadavg before %s, after %s, cores %u\n", load_before.c_str(), loadavg().c_str(),
              std::thread::hardware_concurrency());
  uint64_t opened = 0, reused = 0;
  for (const auto& c : clients) {
    opened += c->connection_counts().opened;
    reused += c->connection_counts().reused;
  }
  std::printf(
      "%s; connections opened %llu, calls on a kept connection %llu; threads started "
      "by the fan-out pool %zu\n",
      tls ? "mutual TLS" : "plain HTTP", static_cast<unsigned long long>(opened),
      static_cast<unsigned long long>(reused), WorkerPool::shared().threads_started());
  if (failures) exit_code = 1;
  stop_all();
  return exit_code;
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  return ferry::run(argc, argv);
}
