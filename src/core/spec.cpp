#include "core/spec.h"

namespace ferry {

const AppSpec* Config::app(std::string_view name) const {
  for (const auto& a : apps)
    if (a.name == name) return &a;
  return nullptr;
}

const EnvironmentSpec* Config::environment(std::string_view name) const {
  for (const auto& e : environments)
    if (e.name == name) return &e;
  return nullptr;
}

const AgentSpec* Config::agent(std::string_view name) const {
  for (const auto& a : agents)
    if (a.name == name) return &a;
  return nullptr;
}

AppSpec Config::app_for_env(const AppSpec& app, std::string_view env) const {
  AppSpec out = app;
  auto it = app.environments.find(std::string(env));
  if (it == app.environments.end()) return out;
  if (it->second.instances) out.instances = *it->second.instances;
  if (it->second.port) out.port = *it->second.port;
  for (const auto& [k, v] : it->second.env) out.run.env[k] = v;
  return out;
}

}  // namespace ferry
