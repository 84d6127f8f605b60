// Loading ferry.yaml into a Config (core/spec.h). Every problem found is reported with
// file:line:column, the field path and what is allowed; all problems are collected (up to
// kMaxErrors), not only the first. docs/configuration.md is the reference of the schema.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "core/spec.h"

namespace ferry {

// The largest ferry.yaml accepted.
inline constexpr size_t kMaxConfigBytes = 1 << 20;
// At most this many errors are collected; a final one says there were more.
inline constexpr size_t kMaxErrors = 50;

// One problem in a ferry.yaml. line and column are 1-based (0 when unknown).
struct ConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string field;    // e.g. "apps.web.strategy.canary.steps[2].weight"; may be empty
  std::string message;  // names the bad value (never a secret) and what is allowed

  // "ferry.yaml:12:9: apps.web.port: 70000 is out of range: allowed 1 to 65535"
  std::string to_string() const;
};

// The outcome of checking a ferry.yaml: a Config when there are no errors.
struct ConfigCheck {
  std::optional<Config> config;
  std::vector<ConfigError> errors;
};

// Parses and validates YAML text; `file_name` is used in errors and kept in Config::path.
ConfigCheck check_config(std::string_view yaml_text, std::string file_name);

// As check_config; on failure an invalid_argument Status whose message holds every error,
// one per line.
Result<Config> parse_config(std::string_view yaml_text, std::string file_name);

// Reads `path` (at most kMaxConfigBytes) and parses it. A file that cannot be read gives
// not_found / unavailable; a file too large gives resource_exhausted.
Result<Config> load_config(const std::string& path);

// Reads a config file's text with the size limit; shared by load_config and `ferry validate`.
Result<std::string> read_config_file(const std::string& path);

}  // namespace ferry
