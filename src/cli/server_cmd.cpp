// `ferry server` and `ferry token`.
#include <fmt/format.h>

#include <iostream>

#include "cli/client.h"
#include "common/clock.h"
#include "config/loader.h"
#include "server/auth.h"
#include "server/control_plane.h"
#include "store/store.h"

namespace ferry::cli {

void block_stop_signals();
int wait_for_stop_signal();

namespace {

// Opens the store named by ferry.yaml (or --store) for the offline `token create`
// that makes the first admin token before any token exists.
std::unique_ptr<Store> open_offline_store(const std::string& config_path, const std::string& url) {
  std::string store_url = url;
  if (store_url.empty()) {
    auto cfg = load_config(config_path);
    if (!cfg.ok()) fail(cfg.status().message());
    store_url = cfg->server.store;
  }
  auto s = open_store(store_url);
  if (!s.ok()) fail(s.status().message());
  return std::move(*s);
}

void print_token(const Json& t, bool json) {
  if (json) {
    std::cout << t.dump(2) << "\n";
    return;
  }
  std::cout << "token " << t.value("name", "") << " (" << t.value("role", "") << ", id "
            << t.value("id", "") << ") created; it is shown only once:\n"
            << t.value("token", "") << "\n";
}

}  // namespace

void register_server_commands(CLI::App& app, GlobalOptions& g) {
  auto so = std::make_shared<ServerOptions>();
  auto* server = app.add_subcommand("server", "run the control plane (API, engine, local agent)");
  server->add_option("--config,-c", so->config_path, "ferry.yaml")->capture_default_str();
  server->add_option("--listen", so->listen, "API address (overrides server.listen)");
  server->add_option("--store", so->store_url, "store URL (overrides server.store)");
  server->add_option("--agent-listen", so->agent_listen,
                     "local agent API address: HOST:PORT or unix:PATH (default: unix:DATA_DIR/agent.sock)");
  server->add_flag("!--no-local-agent", so->local_agent, "use only the agents in ferry.yaml");
  server->add_option("--log-level", so->log_level, "debug, info, warn, error")
      ->capture_default_str();
  server->add_option("--log-file", so->log_file, "JSON log lines go here instead of stderr");
  server->callback([so] {
    block_stop_signals();
    auto cp = ControlPlane::create(*so);
    if (!cp.ok()) fail(cp.status().message());
    if (Status s = (*cp)->start(); !s.ok()) fail(s.message());
    std::cerr << "ferry server listening on " << (*cp)->address() << "\n";
    wait_for_stop_signal();
    (*cp)->stop();
  });

  struct TokenArgs {
    std::string name, role = "viewer", config = "ferry.yaml", store, id, ttl;
    std::vector<std::string> envs;
    bool offline = false;
  };
  auto ta = std::make_shared<TokenArgs>();
  auto* token = app.add_subcommand("token", "API tokens");
  token->require_subcommand(1);
  auto* create = token->add_subcommand("create", "make a token (shown once)");
  create->add_option("--name", ta->name, "who or what uses it")->required();
  create->add_option("--role", ta->role, "viewer, deployer, approver or admin")
      ->capture_default_str();
  create->add_option("--env", ta->envs, "limit it to this environment (repeat)");
  create->add_flag("--offline", ta->offline,
                   "write to the store directly (the first admin token; no server needed)");
  create->add_option("--config,-c", ta->config, "ferry.yaml (with --offline)")
      ->capture_default_str();
  create->add_option("--store", ta->store, "store URL (with --offline; default from the config)");
  create->callback([ta, &g] {
    auto role = parse_role(ta->role);
    if (!role.ok()) fail(role.status().message());
    if (ta->offline) {
      auto store = open_offline_store(ta->config, ta->store);
      Authenticator auth(store.get());
      auto t =
          auth.create(ta->name, *role, ta->envs, "cli:offline", to_unix_ms(SystemClock().now()));
      if (!t.ok()) fail(t.status().message());
      print_token(Json{{"id", t->record.id},
                       {"name", t->record.name},
                       {"role", t->record.role},
                       {"token", t->token}},
                  g.json);
      return;
    }
    Json body{{"name", ta->name}, {"role", ta->role}, {"envs", ta->envs}};
    print_token(api_call(g, "POST", "/api/v1/tokens", &body), g.json);
  });
  auto* list = token->add_subcommand("list", "list tokens (never their secret)");
  list->callback([&g] {
    Json r = api_call(g, "GET", "/api/v1/tokens");
    if (g.json) {
      std::cout << r.dump(2) << "\n";
      return;
    }
    for (const auto& t : r["tokens"])
      std::cout << fmt::format("{:<14} {:<20} {:<9} {:<8} {}\n", t.value("id", ""),
                               t.value("name", ""), t.value("role", ""),
                               t.value("revoked", false) ? "revoked" : "active",
                               local_time(t.value("created_at_ms", int64_t{0})));
  });
  auto* revoke = token->add_subcommand("revoke", "revoke a token by id");
  revoke->add_option("id", ta->id)->required();
  revoke->callback([ta, &g] {
    api_call(g, "DELETE", "/api/v1/tokens/" + ta->id);
    std::cout << "token " << ta->id << " revoked\n";
  });
}

}  // namespace ferry::cli
