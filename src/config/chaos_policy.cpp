#include "config/chaos_policy.h"

#include <yaml-cpp/yaml.h>

namespace ferry {

std::set<std::string> chaos_allowed_environments(std::string_view yaml_text) {
  std::set<std::string> out;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    const YAML::Node envs = root["environments"];
    if (!envs.IsMap()) return out;
    for (const auto& kv : envs) {
      const YAML::Node chaos = kv.second.IsMap() ? kv.second["chaos"] : YAML::Node();
      if (chaos.IsScalar() && chaos.Scalar() == "allowed") out.insert(kv.first.as<std::string>());
    }
  } catch (const YAML::Exception&) {
    out.clear();  // not a config that passed validation: allow nothing
  }
  return out;
}

}  // namespace ferry
