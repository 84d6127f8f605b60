// Environment parity: what differs between two environments — release per app, the
// effective app config, secret names (never values), agents and gates — and whether the
// differences go beyond what ferry.yaml declares on purpose (`ferry diff`).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "core/spec.h"

namespace ferry::ops {

// What the server knows about one app in one environment.
struct EnvFacts {
  std::optional<std::string> release;     // none: nothing deployed there
  std::vector<std::string> secret_names;  // sorted
  bool known = false;                     // false: not asked (config-only comparison)
};

// facts[app][env]
using FactsByApp = std::map<std::string, std::map<std::string, EnvFacts>>;

struct ParityRow {
  std::string app;    // "" for rows about the environments themselves
  std::string field;  // "release", "instances", "env keys", "secrets", "approvals", …
  std::string a, b;   // the values shown for each environment
  bool same = true;
  // A difference ferry.yaml writes on purpose (per-environment overrides, gates, agents):
  // shown, but not drift.
  bool declared = false;
};

struct ParityReport {
  std::string env_a, env_b;
  std::vector<ParityRow> rows;
  // True when some difference is not declared in ferry.yaml: releases or secret names.
  bool drift = false;
};

// `app` empty: every app. Errors name an unknown environment or app.
Result<ParityReport> compare_environments(const Config& config, const std::string& env_a,
                                          const std::string& env_b, const std::string& app,
                                          const FactsByApp& facts);

Json parity_to_json(const ParityReport& r);
// A table: APP FIELD ENV_A ENV_B and a mark (= same, ~ declared difference, ! drift).
std::string parity_table(const ParityReport& r);

}  // namespace ferry::ops
