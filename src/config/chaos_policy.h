// Which environments allow game days: `environments.NAME.chaos: allowed` in ferry.yaml
// (docs/configuration.md; `ferry chaos`, docs/runbook.md "Game days"). `ferry validate`
// checks the field with the rest of the environment (parse_environment.cpp: `allowed` or
// `refused`, anything else is an error naming file:line:column); the server reads the
// allowed ones from the same text once it loaded the config.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace ferry {

// The names of the environments whose `chaos` is `allowed` in a config text that already
// passed check_config (config/loader.h). A text that does not parse gives none.
std::set<std::string> chaos_allowed_environments(std::string_view yaml_text);

}  // namespace ferry
