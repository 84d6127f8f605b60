#include "config/loader.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "config/parsers.h"

namespace ferry {

std::string ConfigError::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

namespace {

using config::Field;

void parse_document(const Field& root, Config& c) {
  if (!root.expect_map({"version", "server", "agent", "agents", "environments", "apps", "notifications"},
                       /*extensions=*/true))
    return;
  Field version = root.required("version");
  if (version.present() && !(version.is_scalar() && version.node().Scalar() == "1"))
    version.error(config::describe(version.node()) +
                  " is not a supported version: this ferry reads \"version: 1\"");
  config::parse_server(root.child("server"), c.server);
  for (auto& [name, f] : root.child("agents").entries(config::kMaxAgents, true)) {
    AgentSpec a;
    a.name = name;
    config::parse_agent(f, a);
    c.agents.push_back(std::move(a));
  }
  Field envs = root.required("environments");
  for (auto& [name, f] : envs.entries(config::kMaxEnvironments, true)) {
    EnvironmentSpec e;
    e.name = name;
    config::parse_environment(f, e);
    c.environments.push_back(std::move(e));
  }
  if (envs.is_map() && envs.node().size() == 0)
    envs.error("at least one environment is required, e.g. production: {}");
  Field apps = root.required("apps");
  for (auto& [name, f] : apps.entries(config::kMaxApps, true)) {
    AppSpec a;
    a.name = name;
    config::parse_app(f, a);
    c.apps.push_back(std::move(a));
  }
  if (apps.is_map() && apps.node().size() == 0) apps.error("at least one app is required");
  config::parse_local_agent(root.child("agent"), c, c.local_agent);
  std::vector<std::string> names;
  for (const Field& f : root.child("notifications").items(config::kMaxNotifications)) {
    NotificationSpec n;
    config::parse_notification(f, n);
    for (const auto& seen : names)
      if (!n.name.empty() && seen == n.name)
        f.child("name").error("\"" + n.name +
                              "\" is used twice; notification names must be "
                              "unique");
    names.push_back(n.name);
    c.notifications.push_back(std::move(n));
  }
  config::cross_check(root, c);
}

}  // namespace

ConfigCheck check_config(std::string_view yaml_text, std::string file_name) {
  ConfigCheck out;
  config::Context ctx(file_name);
  if (yaml_text.size() > kMaxConfigBytes) {
    ctx.error(YAML::Mark(), "",
              "the file is " + std::to_string(yaml_text.size()) + " bytes; at most " +
                  std::to_string(kMaxConfigBytes) + " are allowed");
    out.errors = ctx.take_errors();
    return out;
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    ctx.error(e.mark, "", "YAML syntax error: " + e.msg);
    out.errors = ctx.take_errors();
    return out;
  }
  Config c;
  c.path = file_name;
  YAML::Mark start;
  start.line = start.column = start.pos = 0;
  Field root(ctx, doc, "", doc.IsDefined() && !doc.Mark().is_null() ? doc.Mark() : start);
  if (!root.present()) {
    ctx.error(start, "", "the file is empty: it needs at least version, environments and apps");
  } else {
    try {
      parse_document(root, c);
    } catch (const YAML::Exception& e) {  // yaml-cpp may throw on odd nodes; never crash
      ctx.error(e.mark, "", "unexpected YAML structure: " + e.msg);
    }
  }
  out.errors = ctx.take_errors();
  if (out.errors.empty()) out.config = std::move(c);
  return out;
}

Result<Config> parse_config(std::string_view yaml_text, std::string file_name) {
  ConfigCheck r = check_config(yaml_text, std::move(file_name));
  if (r.config) return std::move(*r.config);
  std::string msg;
  for (const auto& e : r.errors) msg += (msg.empty() ? "" : "\n") + e.to_string();
  return invalid_argument(msg);
}

Result<std::string> read_config_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return invalid_argument("cannot read " + path +
                            ": it is a directory; give the ferry.yaml "
                            "file inside it");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    std::string m = "cannot read " + path + ": " + std::strerror(err);
    return err == ENOENT ? not_found(m) : unavailable(m);
  }
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigBytes)
      return resource_exhausted(path + ": the file is larger than " +
                                std::to_string(kMaxConfigBytes) + " bytes, the limit");
  }
  if (in.bad()) return unavailable("cannot read " + path + ": read error");
  return text;
}

Result<Config> load_config(const std::string& path) {
  Result<std::string> text = read_config_file(path);
  if (!text.ok()) return text.status();
  return parse_config(*text, path);
}

}  // namespace ferry
