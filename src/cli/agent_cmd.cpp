// `ferry agent`: the data plane process (supervisor, health checks, router, agent API).
// SIGHUP (or `ferry agent --takeover` with the same settings) replaces the running agent
// process without dropping a request: see src/agent/handoff.h and docs/agent.md.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <iostream>
#include <mutex>
#include <optional>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/edge_readiness.h"
#include "agent/keeper.h"
#include "agent/process.h"
#include "agent/revocation_list.h"
#include "agent/unix_http.h"
#include "cli/client.h"
#include "common/http_client.h"
#include "common/log.h"
#include "common/port_range.h"
#include "common/spawn.h"
#include "common/tls.h"

namespace ferry::cli {

namespace {

// The agent's signals, blocked in every thread and taken by sigwait: stop (INT, TERM),
// hand over to a new process of the binary on disk (HUP), handed over (USR1, from the
// handoff thread; ignored unless a handoff really happened).
sigset_t agent_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  return set;
}

// The binary to start on SIGHUP: the file this process was started from, as it is on
// disk now (an upgrade that replaced the file runs the new version).
std::string self_binary_path() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "ferry";
  std::string path(buf, static_cast<size_t>(n));
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() &&
      path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

// Tells systemd (Type=notify, NotifyAccess=all) that this process is the service's main
// process and ready; nothing when not run by systemd.
void notify_systemd(const std::string& text) {
  const char* where = std::getenv("NOTIFY_SOCKET");
  if (!where || !*where) return;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  const std::string path = where;
  if (path.size() >= sizeof a.sun_path) return;
  std::memcpy(a.sun_path, path.data(), path.size());
  if (a.sun_path[0] == '@') a.sun_path[0] = '\0';  // abstract namespace
  const int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  (void)sendto(fd, text.data(), text.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&a),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size()));
  close(fd);
}

int wait_for_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace

// Blocks SIGINT/SIGTERM in every thread so that wait_for_signal() receives them.
void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
}

int wait_for_stop_signal() {
  return wait_for_signal();
}

// agent_tls_cmd.cpp: `ferry agent init|join`, `ferry agents enroll|revoke`.
void register_agent_tls_commands(CLI::App& app, CLI::App& agent, GlobalOptions& g);

namespace {

struct AgentArgs {
  std::string listen = "127.0.0.1:7071";
  std::string data_dir = ".ferry/agent";
  std::string token_file;
  std::string log_level = "info";
  std::string instance_ports = "20000-29999";
  int log_keep = 5;
  int64_t log_max_bytes = 10 << 20;
  bool stop_instances = false;
  bool takeover = false;
  bool no_keeper = false;
  int drain_ms = 10'000;
  std::string tls_dir;
  std::string ready_listen;
  int ready_drain_ms = 5'000;
};

void run_agent_process(const AgentArgs& args, Logger& log, Handover kept, int link, int restart);

}  // namespace

void register_agent_commands(CLI::App& app, GlobalOptions& g) {
  auto a = std::make_shared<AgentArgs>();
  auto* c = app.add_subcommand("agent", "run the data plane: instances, health checks, router");
  c->add_option("--listen", a->listen,
                "agent API address: host:port, or unix:PATH for a local agent (socket made 0600)")
      ->capture_default_str();
  c->add_option("--instance-ports", a->instance_ports,
                "ports given to instances, outside the kernel's ephemeral range")
      ->capture_default_str();
  c->add_option("--log-keep", a->log_keep, "rotated log files kept per instance")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  c->add_option("--log-max-bytes", a->log_max_bytes, "an instance log past this is rotated")
      ->check(CLI::Range(int64_t{4096}, int64_t{1} << 34))
      ->capture_default_str();
  c->add_option("--data-dir", a->data_dir, "state file and instance logs")->capture_default_str();
  // Required to run the agent, not for `ferry agent init|join` (checked in the callback).
  c->add_option("--token-file", a->token_file,
                "file holding the agent API token (mode 0600); required");
  c->add_option("--log-level", a->log_level, "debug, info, warn, error")->capture_default_str();
  c->add_flag("--stop-instances-on-exit", a->stop_instances,
              "stop every instance when the agent stops (default: they keep running)");
  c->add_flag("--takeover", a->takeover,
              "take the routers' sockets over from the agent running on --data-dir (no "
              "request dropped); starts afresh when none runs");
  c->add_flag("--no-keeper", a->no_keeper,
              "run the agent as one process: without the keeper that holds the listening "
              "sockets across a crash and restarts the agent at once (docs/agent.md)");
  c->add_option("--drain-ms", a->drain_ms,
                "after handing over, how long open connections get to finish")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  c->add_option("--tls-dir", a->tls_dir,
                "serve the agent API with mutual TLS: agent.crt, agent.key (0600) and ca.crt "
                "from `ferry agent init` / `ferry agent join`; only the server's certificate is "
                "answered; serials in DIR/revoked are refused");
  c->add_option("--ready-listen", a->ready_listen,
                "also answer GET /v1/ready/APP (and nothing else) in plain HTTP on this "
                "address, for a load balancer's health check when the API is TLS: PORT "
                "(127.0.0.1) or HOST:PORT");
  c->add_option("--ready-drain-ms", a->ready_drain_ms,
                "on stop, how long readiness answers 503 before the agent stops serving (only "
                "when a load balancer asked for readiness in the last minute)")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  register_agent_tls_commands(app, *c, g);
  c->callback([a, c] {
    // `ferry agent init|join`: the subcommand does the work (its callback runs after this).
    if (!c->get_subcommands([](CLI::App* sub) { return sub->parsed(); }).empty()) return;
    const sigset_t sigs = agent_signals();
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    std::signal(SIGPIPE, SIG_IGN);
    auto level = parse_log_level(a->log_level);
    if (!level.ok()) fail(level.status().message());
    Logger log("agent", *level);
    if (a->token_file.empty()) fail("--token-file is required");
    if (a->no_keeper) {
      run_agent_process(*a, log, Handover{}, -1, 0);
      return;
    }
    // The keeper (agent/keeper.h): this process holds the listening sockets and starts
    // the agent process again at once if it dies.
    KeeperOptions ko;
    ko.log = &log;
    ko.worker = [&](Handover kept, int link, int restart) {
      run_agent_process(*a, log, std::move(kept), link, restart);
      return 0;
    };
    if (const int code = run_keeper(ko); code != 0) std::exit(code);
  });
}

namespace {

// The agent itself: in the keeper's worker process (`link` >= 0, `kept`: what the keeper
// held for the previous one), or alone (--no-keeper). Returns once it stopped.
void run_agent_process(const AgentArgs& args, Logger& log, Handover kept, int link, int restart) {
  const AgentArgs* a = &args;
  const sigset_t sigs = agent_signals();
  {
    auto token = read_token_file(a->token_file);
    if (!token.ok()) fail(token.status().message());
    const std::string socket_path = unix_socket_path(a->listen);
    Result<Endpoint> ep = Endpoint{};
    if (socket_path.empty()) {
      ep = parse_endpoint(a->listen);
      if (!ep.ok()) fail("--listen: " + ep.status().message());
    }
    auto ports = check_instance_port_range(a->instance_ports);
    if (!ports.ok()) fail("--instance-ports: " + ports.status().message());
    std::optional<Endpoint> ready_ep;
    if (!a->ready_listen.empty()) {
      const bool bare_port = a->ready_listen.find_first_not_of("0123456789") == std::string::npos;
      auto r = parse_endpoint(bare_port ? "127.0.0.1:" + a->ready_listen : a->ready_listen);
      if (!r.ok()) fail("--ready-listen: " + r.status().message());
      ready_ep = *r;
    }
    auto edge = std::make_shared<EdgeReadiness>(a->data_dir + "/edge-out");
    std::shared_ptr<RevocationList> revoked;
    std::shared_ptr<TlsContext> tls;
    if (!a->tls_dir.empty()) {
      if (!socket_path.empty()) fail("--tls-dir: the local agent's Unix socket needs no TLS");
      const std::string d = a->tls_dir + "/";
      auto id = load_tls_identity(d + "agent.crt", d + "agent.key", d + "ca.crt", d + "revoked");
      if (!id.ok()) fail("--tls-dir: " + id.status().message());
      // Only the server may call: another agent's certificate is of the same CA.
      auto ctx = TlsContext::create(TlsContext::Role::kServer, *id, kServerCertName);
      if (!ctx.ok()) fail("--tls-dir: " + ctx.status().message());
      tls = *ctx;
      revoked = std::make_shared<RevocationList>(d + "revoked");
    }

    // The agent API; paused while a successor takes over (its listening socket goes to
    // the successor, calls wait in the backlog) and resumed if the handoff fails.
    std::mutex api_mu;
    std::unique_ptr<HttpServer> http;
    std::unique_ptr<UnixHttpServer> unix_server;
    std::unique_ptr<HttpServer> ready_http;  // --ready-listen
    Agent* agent_ptr = nullptr;
    auto start_ready = [&]() -> Status {  // under api_mu
      if (!ready_ep) return Status::Ok();
      HttpServerOptions ro;
      ro.host = ready_ep->host;
      ro.port = ready_ep->port;
      ro.max_connections = 64;
      ro.max_body_bytes = 1024;
      ready_http = std::make_unique<HttpServer>(ro);
      add_readiness_routes(*ready_http, *agent_ptr, edge);
      if (Status s = ready_http->start(); !s.ok()) return s.with_context("--ready-listen");
      return Status::Ok();
    };
    auto start_api = [&](int inherited_fd = -1) -> Status {
      std::lock_guard lk(api_mu);
      if (Status s = start_ready(); !s.ok()) {
        if (inherited_fd >= 0) close(inherited_fd);
        return s;
      }
      HttpServerOptions ho;
      if (ep.ok()) {
        ho.host = ep->host;
        ho.port = ep->port;
      }
      ho.tls = tls;
      http = std::make_unique<HttpServer>(ho);
      add_agent_routes(*http, *agent_ptr, *token, AgentApiExtras{edge, revoked});
      // The local agent: a Unix socket (the routes are served through it, HttpServer only
      // routes); a remote agent: TCP.
      if (!socket_path.empty()) {
        unix_server = std::make_unique<UnixHttpServer>(socket_path, *http);
        return unix_server->start(inherited_fd);
      }
      return http->start(inherited_fd);
    };
    auto stop_api = [&](bool remove_file = true) {
      std::lock_guard lk(api_mu);
      if (ready_http) ready_http->stop();
      ready_http.reset();
      if (unix_server)
        unix_server->stop(remove_file);
      else if (http)
        http->stop();
      unix_server.reset();
      http.reset();
    };
    // A successor asks to take over: the API's listening socket goes to it (calls wait in
    // its backlog, none fails; those in progress are answered first, up to 5 s).
    auto pause_api = [&] {
      std::lock_guard lk(api_mu);
      // The successor binds the readiness address itself.
      if (ready_http) ready_http->stop();
      ready_http.reset();
      int open = 0;
      if (unix_server)
        open = unix_server->pause(5'000);
      else if (http)
        open = http->pause(5'000);
      if (open > 0) log.warn("agent API calls still open at handoff", {{"connections", open}});
    };
    auto resume_api = [&]() -> Status {
      std::lock_guard lk(api_mu);
      if (unix_server)
        unix_server->resume();
      else if (http)
        http->resume();
      return start_ready();
    };

    AgentOptions opts;
    opts.data_dir = a->data_dir;
    opts.log = &log;
    opts.instance_ports = *ports;
    opts.logs = LogPolicy{a->log_keep, static_cast<uint64_t>(a->log_max_bytes)};
    opts.state_key = state_key_from_token(*token);
    // A worker the keeper restarted after a crash has no running agent to take over from.
    opts.takeover = a->takeover && restart == 0;
    opts.keeper_fd = link;
    opts.kept = std::move(kept);
    opts.drain_ms = a->drain_ms;
    opts.on_handoff_begin = pause_api;
    opts.api_listener = [&] {
      std::lock_guard lk(api_mu);
      if (unix_server) return unix_server->duplicate_listener();
      return http ? http->duplicate_listener() : -1;
    };
    opts.on_handoff_aborted = [&] {
      if (Status s = resume_api(); !s.ok())
        log.error("agent API not served again after a failed handoff", {{"error", s.message()}});
    };
    opts.on_handed_over = [] { kill(getpid(), SIGUSR1); };
    Agent agent(opts);
    agent_ptr = &agent;
    if (Status s = agent.start(); !s.ok()) fail(s.message());
    if (agent.took_over()) {
      // The previous process decides (handoff.h): on "commit" this one supervises and
      // serves the API on the socket it handed over; otherwise it serves on, and this one
      // drains what its routers accepted and leaves, touching nothing.
      if (Status s = agent.confirm_takeover(); !s.ok()) {
        agent.stop();
        fail("hot restart not completed: " + s.message());
      }
    }
    if (Status s = start_api(agent.take_api_listener()); !s.ok()) {
      agent.stop();
      fail(s.message());
    }
    agent.keeper_changed();  // the keeper holds the API's socket too
    if (agent.took_over()) {
      // systemd's main process is this agent's keeper (or this process without one).
      notify_systemd("MAINPID=" + std::to_string(link >= 0 ? getppid() : getpid()) + "\nREADY=1\n");
    } else {
      notify_systemd("READY=1\n");
    }
    log.info("ferry agent listening",
             {{"address", socket_path.empty() ? http->address() : a->listen},
              {"ready_address", ready_http ? ready_http->address() : ""},
              {"process_age_ms", process_age_ms()},
              {"cpu_ms", process_cpu_ms()},
              {"adopted", agent.adopted()},
              {"took_over", agent.took_over()},
              {"restart", restart},
              {"inherited_sockets", agent.inherited_listeners()}});
    int successor = 0;
    int sig = 0;
    for (;;) {
      sigwait(&sigs, &sig);
      if (successor > 0) {
        int code;
        if (reap_child(successor, &code)) successor = 0;
      }
      if (sig == SIGUSR1) {
        if (agent.handed_over()) break;
        continue;
      }
      if (sig != SIGHUP) break;
      if (successor > 0) continue;  // one handoff at a time
      SpawnOptions so;
      so.argv = {self_binary_path(), "agent",
                 "--listen",         a->listen,
                 "--data-dir",       a->data_dir,
                 "--token-file",     a->token_file,
                 "--instance-ports", a->instance_ports,
                 "--log-keep",       std::to_string(a->log_keep),
                 "--log-max-bytes",  std::to_string(a->log_max_bytes),
                 "--log-level",      a->log_level,
                 "--drain-ms",       std::to_string(a->drain_ms),
                 "--ready-drain-ms", std::to_string(a->ready_drain_ms),
                 "--takeover"};
      if (!a->ready_listen.empty()) {
        so.argv.push_back("--ready-listen");
        so.argv.push_back(a->ready_listen);
      }
      if (a->stop_instances) so.argv.push_back("--stop-instances-on-exit");
      if (a->no_keeper) so.argv.push_back("--no-keeper");
      if (!a->tls_dir.empty()) {
        so.argv.push_back("--tls-dir");
        so.argv.push_back(a->tls_dir);
      }
      so.inherit_parent_env = true;
      so.new_session = true;  // it outlives this process
      so.stdout_fd = STDOUT_FILENO;
      so.stderr_fd = STDERR_FILENO;
      auto pid = spawn(so);
      if (pid.ok()) {
        successor = *pid;
        log.info("SIGHUP: started the next agent process", {{"pid", successor}});
      } else {
        log.error("SIGHUP: the next agent process did not start",
                  {{"error", pid.status().message()}});
      }
    }
    // A load balancer watching this host's readiness sees 503 first and stops sending here
    // while the routers still serve (a second INT/TERM ends the wait).
    if (!agent.handed_over() && a->ready_drain_ms > 0 &&
        edge->asked_within(std::chrono::minutes(1))) {
      edge->start_draining();
      log.info("readiness 503 before stopping", {{"drain_ms", a->ready_drain_ms}});
      sigset_t stop_sigs;
      sigemptyset(&stop_sigs);
      sigaddset(&stop_sigs, SIGINT);
      sigaddset(&stop_sigs, SIGTERM);
      const timespec wait{a->ready_drain_ms / 1000, (a->ready_drain_ms % 1000) * 1'000'000L};
      while (sigtimedwait(&stop_sigs, nullptr, &wait) < 0 && errno == EINTR) {
      }
    }
    log.info("ferry agent stopping", {{"signal", sig}, {"handed_over", agent.handed_over()}});
    stop_api(!agent.handed_over());  // after a handoff the socket file is the successor's
    agent.stop(a->stop_instances && !agent.handed_over());
  }
}

}  // namespace

}  // namespace ferry::cli
