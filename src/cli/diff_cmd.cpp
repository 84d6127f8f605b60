// `ferry diff ENV_A ENV_B [--app APP]`: environment parity (docs/cli.md). Exit 0 when the
// environments differ only where ferry.yaml says they should, 1 when they drift, 2 on error.
#include <iostream>

#include "cli/client.h"
#include "common/http_types.h"
#include "config/loader.h"
#include "ops/parity.h"

namespace ferry::cli {
namespace {

struct DiffArgs {
  std::string config_path = "ferry.yaml";
  std::string a, b, app;
  bool offline = false;
};

// Releases from /api/v1/apps and secret names per app and environment.
ops::FactsByApp server_facts(const GlobalOptions& g, const Config& cfg, const DiffArgs& d) {
  ops::FactsByApp facts;
  Json apps = api_call(g, "GET", "/api/v1/apps");
  auto client = api_client(g);
  for (const auto& app : apps["apps"]) {
    const std::string name = app.value("name", "");
    if (!d.app.empty() && name != d.app) continue;
    if (!cfg.app(name)) continue;
    for (const std::string& env : {d.a, d.b}) {
      ops::EnvFacts f;
      f.known = true;
      const Json& e = app["environments"].contains(env) ? app["environments"][env] : Json();
      if (e.is_object() && e["release"].is_string()) f.release = e["release"].get<std::string>();
      auto s = client.call(
          "GET", "/api/v1/apps/" + url_encode(name) + "/envs/" + url_encode(env) + "/secrets");
      if (!s.ok()) fail("secret names of " + name + " in " + env + ": " + s.status().message(), 2);
      for (const auto& sec : (*s)["secrets"]) f.secret_names.push_back(sec.value("name", ""));
      std::sort(f.secret_names.begin(), f.secret_names.end());
      facts[name][env] = std::move(f);
    }
  }
  return facts;
}

}  // namespace

void register_diff_commands(CLI::App& app, GlobalOptions& g) {
  auto d = std::make_shared<DiffArgs>();
  auto* c = app.add_subcommand(
      "diff", "what differs between two environments (releases, config, secret names, gates)");
  c->add_option("ENV_A", d->a)->required();
  c->add_option("ENV_B", d->b)->required();
  c->add_option("--app", d->app, "only this app");
  c->add_option("--config,-c", d->config_path, "ferry.yaml")->capture_default_str();
  c->add_flag("--offline", d->offline, "compare ferry.yaml only (no releases, no secret names)");
  c->callback([d, &g] {
    auto cfg = load_config(d->config_path);
    if (!cfg.ok()) fail(cfg.status().message());
    ops::FactsByApp facts;
    if (!d->offline) facts = server_facts(g, *cfg, *d);
    auto r = ops::compare_environments(*cfg, d->a, d->b, d->app, facts);
    if (!r.ok()) fail(r.status().message());
    if (g.json)
      std::cout << ops::parity_to_json(*r).dump(2) << "\n";
    else
      std::cout << ops::parity_table(*r);
    if (r->drift) throw CLI::RuntimeError(1);
  });
}

}  // namespace ferry::cli
