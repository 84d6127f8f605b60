#include "ops/parity.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/agent_api.h"
#include "core/plan.h"

namespace ferry::ops {
namespace {

std::string join(const std::vector<std::string>& v) {
  if (v.empty()) return "-";
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

std::vector<std::string> keys_of(const std::map<std::string, std::string>& m) {
  std::vector<std::string> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

std::string windows_text(const EnvironmentSpec& e) {
  return e.windows.empty() ? "any time" : std::to_string(e.windows.size()) + " window(s)";
}

}  // namespace

Result<ParityReport> compare_environments(const Config& config, const std::string& env_a,
                                          const std::string& env_b, const std::string& app_name,
                                          const FactsByApp& facts) {
  const EnvironmentSpec* a = config.environment(env_a);
  const EnvironmentSpec* b = config.environment(env_b);
  if (!a) return not_found("environment " + env_a + " is not configured");
  if (!b) return not_found("environment " + env_b + " is not configured");
  if (!app_name.empty() && !config.app(app_name))
    return not_found("app " + app_name + " is not configured");
  ParityReport r;
  r.env_a = env_a;
  r.env_b = env_b;
  auto add = [&](const std::string& app, const std::string& field, std::string va, std::string vb,
                 bool declared) {
    ParityRow row{app, field, std::move(va), std::move(vb), true, false};
    row.same = row.a == row.b;
    row.declared = !row.same && declared;
    if (!row.same && !declared) r.drift = true;
    r.rows.push_back(std::move(row));
  };
  // The environments themselves: all of it written in ferry.yaml.
  add("", "requires", join(a->requires_envs), join(b->requires_envs), true);
  add("", "approvals", std::to_string(a->approvals), std::to_string(b->approvals), true);
  add("", "windows", windows_text(*a), windows_text(*b), true);
  add("", "freezes", std::to_string(a->freezes.size()), std::to_string(b->freezes.size()), true);
  add("", "scan gate", config.scan_required(env_a) ? "required" : "optional",
      config.scan_required(env_b) ? "required" : "optional", true);
  add("", "agents", join(a->agents.empty() ? std::vector<std::string>{"local"} : a->agents),
      join(b->agents.empty() ? std::vector<std::string>{"local"} : b->agents), true);
  add("", "auto_deploy", a->auto_deploy ? "yes" : "no", b->auto_deploy ? "yes" : "no", true);

  for (const AppSpec& base : config.apps) {
    if (!app_name.empty() && base.name != app_name) continue;
    const AppSpec ea = config.app_for_env(base, env_a);
    const AppSpec eb = config.app_for_env(base, env_b);
    const auto ov_a = base.environments.find(env_a);
    const auto ov_b = base.environments.find(env_b);
    auto overridden = [&](auto pick) {
      return (ov_a != base.environments.end() && pick(ov_a->second)) ||
             (ov_b != base.environments.end() && pick(ov_b->second));
    };
    // Releases and secret names come from the server: differences there are drift.
    auto fa = facts.find(base.name);
    const EnvFacts* facts_a = nullptr;
    const EnvFacts* facts_b = nullptr;
    if (fa != facts.end()) {
      if (auto it = fa->second.find(env_a); it != fa->second.end()) facts_a = &it->second;
      if (auto it = fa->second.find(env_b); it != fa->second.end()) facts_b = &it->second;
    }
    if (facts_a && facts_b && facts_a->known && facts_b->known) {
      add(base.name, "release", facts_a->release.value_or("-"), facts_b->release.value_or("-"),
          false);
      add(base.name, "secrets", join(facts_a->secret_names), join(facts_b->secret_names), false);
    }
    add(base.name, "instances", std::to_string(ea.instances), std::to_string(eb.instances),
        overridden([](const AppEnvSpec& o) { return o.instances.has_value(); }));
    add(base.name, "port", std::to_string(ea.port), std::to_string(eb.port),
        overridden([](const AppEnvSpec& o) { return o.port.has_value(); }));
    add(base.name, "strategy", std::string(strategy_name(ea.strategy.kind)),
        std::string(strategy_name(eb.strategy.kind)), false);
    Json ca, cb;
    to_json(ca, ea.checks);
    to_json(cb, eb.checks);
    add(base.name, "checks", ca == cb ? "same" : ca.dump(), ca == cb ? "same" : cb.dump(), false);
    // Env keys only: values may be credentials someone wrote into ferry.yaml.
    add(base.name, "env keys", join(keys_of(ea.run.env)), join(keys_of(eb.run.env)),
        overridden([](const AppEnvSpec& o) { return !o.env.empty(); }));
    std::vector<std::string> changed;
    for (const auto& [k, v] : ea.run.env)
      if (auto it = eb.run.env.find(k); it != eb.run.env.end() && it->second != v)
        changed.push_back(k);
    if (!changed.empty()) {
      // The keys whose values differ, never the values.
      const bool declared = overridden([](const AppEnvSpec& o) { return !o.env.empty(); });
      r.rows.push_back(ParityRow{base.name, "env values", "differ: " + join(changed),
                                 "differ: " + join(changed), false, declared});
      if (!declared) r.drift = true;
    }
  }
  return r;
}

Json parity_to_json(const ParityReport& r) {
  Json rows = Json::array();
  for (const auto& row : r.rows)
    rows.push_back(Json{{"app", row.app},
                        {"field", row.field},
                        {r.env_a, row.a},
                        {r.env_b, row.b},
                        {"same", row.same},
                        {"declared", row.declared}});
  return Json{{"a", r.env_a}, {"b", r.env_b}, {"drift", r.drift}, {"rows", rows}};
}

std::string parity_table(const ParityReport& r) {
  size_t wa = std::max<size_t>(r.env_a.size(), 8), wb = std::max<size_t>(r.env_b.size(), 8);
  for (const auto& row : r.rows) {
    wa = std::max(wa, std::min<size_t>(row.a.size(), 48));
    wb = std::max(wb, std::min<size_t>(row.b.size(), 48));
  }
  auto cut = [](const std::string& s) { return s.size() > 48 ? s.substr(0, 45) + "..." : s; };
  std::string out =
      fmt::format("  {:<12} {:<12} {:<{}} {:<{}}\n", "APP", "FIELD", r.env_a, wa, r.env_b, wb);
  for (const auto& row : r.rows) {
    const char mark = row.same ? '=' : row.declared ? '~' : '!';
    out +=
        fmt::format("{} {:<12} {:<12} {:<{}} {:<{}}\n", mark, row.app.empty() ? "(env)" : row.app,
                    row.field, cut(row.a), wa, cut(row.b), wb);
  }
  out += r.drift ? "! differs beyond what ferry.yaml declares per environment\n"
                 : "= no differences beyond ferry.yaml's per-environment settings (~)\n";
  return out;
}

}  // namespace ferry::ops
