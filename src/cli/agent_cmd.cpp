// `ferry agent`: the data plane process (supervisor, health checks, router, agent API).
#include <csignal>
#include <iostream>

#include "agent/agent.h"
#include "agent/agent_server.h"
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
    bool stop_instances = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("agent", "run the data plane: instances, health checks, router");
  c->add_option("--listen", a->listen, "agent API address")->capture_default_str();
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
    auto ep = parse_endpoint(a->listen);
    if (!ep.ok()) fail("--listen: " + ep.status().message());
    AgentOptions opts;
    opts.data_dir = a->data_dir;
    opts.log = &log;
    Agent agent(opts);
    if (Status s = agent.start(); !s.ok()) fail(s.message());
    HttpServerOptions ho;
    ho.host = ep->host;
    ho.port = ep->port;
    HttpServer http(ho);
    add_agent_routes(http, agent, *token);
    if (Status s = http.start(); !s.ok()) {
      agent.stop();
      fail(s.message());
    }
    log.info("ferry agent listening", {{"address", http.address()}, {"adopted", agent.adopted()}});
    const int sig = wait_for_stop_signal();
    log.info("ferry agent stopping", {{"signal", sig}});
    http.stop();
    agent.stop(a->stop_instances);
  });
}

}  // namespace ferry::cli
