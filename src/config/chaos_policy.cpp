#include "config/chaos_policy.h"

#include <yaml-cpp/yaml.h>

namespace ferry {

std::set<std::string> chaos_allowed_environments(std::string_view yaml_text) {
  std::set<std::string> out;
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    const YAML::Node envs = root["environments"];
    if (!envs.IsMap()) return out;
    for (const auto& env : envs) {
      if (!env.second.IsMap()) continue;
      // Looked up by iterating: a missing key on a const node is an invalid node, which
      // throws when asked its type.
      for (const auto& field : env.second)
        if (field.first.IsScalar() && field.first.Scalar() == "chaos" && field.second.IsScalar() &&
            field.second.Scalar() == "allowed")
          out.insert(env.first.as<std::string>());
    }
  } catch (const YAML::Exception&) {
    out.clear();  // not a config that passed validation: allow nothing
  }
  return out;
}

}  // namespace ferry
