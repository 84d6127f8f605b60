// `ferry agent`: the data plane process (supervisor, health checks, router, agent API).
#include <csignal>
#include <iostream>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/unix_http.h"
#include "common/port_range.h"
#include "cli/client.h"
#include "common/http_client.h"
#include "common/log.h"

namespace ferry::cli {

namespace {

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

void register_agent_commands(CLI::App& app, GlobalOptions&) {
  struct Args {
    std::string listen = "127.0.0.1:7071";
    std::string data_dir = ".ferry/agent";
    std::string token_file;
    std::string log_level = "info";
    std::string instance_ports = "20000-29999";
    int log_keep = 5;
    int64_t log_max_bytes = 10 << 20;
    bool stop_instances = false;
  };
  auto a = std::make_shared<Args>();
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
  c->add_option("--token-file", a->token_file, "file holding the agent API token (mode 0600)")
      ->required();
  c->add_option("--log-level", a->log_level, "debug, info, warn, error")->capture_default_str();
  c->add_flag("--stop-instances-on-exit", a->stop_instances,
              "stop every instance when the agent stops (default: they keep running)");
  c->callback([a] {
    block_stop_signals();
    auto level = parse_log_level(a->log_level);
    if (!level.ok()) fail(level.status().message());
    Logger log("agent", *level);
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
    AgentOptions opts;
    opts.data_dir = a->data_dir;
    opts.log = &log;
    opts.instance_ports = *ports;
    opts.logs = LogPolicy{a->log_keep, static_cast<uint64_t>(a->log_max_bytes)};
    opts.state_key = state_key_from_token(*token);
    Agent agent(opts);
    if (Status s = agent.start(); !s.ok()) fail(s.message());
    HttpServerOptions ho;
    if (ep.ok()) {
      ho.host = ep->host;
      ho.port = ep->port;
    }
    HttpServer http(ho);
    add_agent_routes(http, agent, *token);
    // The local agent: a Unix socket (the routes are served through it, HttpServer only
    // routes); a remote agent: TCP.
    std::unique_ptr<UnixHttpServer> unix_server;
    Status started;
    if (!socket_path.empty()) {
      unix_server = std::make_unique<UnixHttpServer>(socket_path, http);
      started = unix_server->start();
    } else {
      started = http.start();
    }
    if (!started.ok()) {
      agent.stop();
      fail(started.message());
    }
    log.info("ferry agent listening",
             {{"address", socket_path.empty() ? http.address() : a->listen},
              {"adopted", agent.adopted()}});
    const int sig = wait_for_stop_signal();
    log.info("ferry agent stopping", {{"signal", sig}});
    if (unix_server) unix_server->stop();
    else http.stop();
    agent.stop(a->stop_instances);
  });
}

}  // namespace ferry::cli
