#include "core/spec.h"

#include <cctype>

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
  if (it != app.environments.end()) {
    if (it->second.instances) out.instances = *it->second.instances;
    if (it->second.port) out.port = *it->second.port;
    for (const auto& [k, v] : it->second.env) out.run.env[k] = v;
    if (it->second.slo) out.slo = it->second.slo;
  }
  // The router counts the SLO's paths apart (docs/slo.md, "Excluded paths").
  out.router.slo_exclude_paths = out.slo ? out.slo->exclude_paths : std::vector<std::string>{};
  return out;
}

bool loopback_address(std::string_view address) {
  if (address.starts_with("unix:")) return true;
  std::string_view host = address.substr(0, address.rfind(':'));
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

std::string Config::listen_for(const AppSpec& app, std::string_view agent) const {
  const AgentSpec* a = this->agent(agent);
  if (a && !a->listen.empty()) return a->listen;
  if (app.listen_set) return app.listen;
  if (a && !loopback_address(a->address)) return "0.0.0.0";
  return app.listen;
}

bool valid_env_name(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  if (std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

bool is_loader_env(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "GCONV_PATH",    "GETCONF_DIR", "GLIBC_TUNABLES",    "HOSTALIASES",  "LOCALDOMAIN", "LOCPATH",
      "NIS_PATH",      "NLSPATH",     "RESOLV_HOST_CONF",  "RES_OPTIONS",  "TMPDIR",      "TZDIR",
      "BASH_ENV",      "ENV",         "NODE_OPTIONS",      "PERL5OPT",     "PERL5LIB",    "RUBYOPT",
      "PYTHONSTARTUP", "PYTHONPATH",  "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS"};
  if (name.starts_with("LD_") || name.starts_with("MALLOC_")) return true;
  for (auto n : kNames)
    if (name == n) return true;
  return false;
}

bool is_reserved_env(std::string_view name) {
  return name == "PORT" || name.starts_with("FERRY_");
}

bool Config::scan_required(std::string_view env) const {
  const EnvironmentSpec* e = environment(env);
  if (!e) return true;
  if (e->scan == "required") return true;
  if (e->scan == "optional") return false;
  return e->approvals > 0 || &environments.front() != e;
}

}  // namespace ferry
