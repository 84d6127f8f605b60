// Releases: recording one runs the secret-scan gate on its source tree.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "core/agent_api.h"
#include "scan/finding.h"
#include "scan/scanner.h"
#include "server/control_plane.h"

namespace ferry {

namespace {

bool valid_version(const std::string& v) {
  if (v.empty() || v.size() > 64) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_' ||
          c == '+'))
      return false;
  return true;
}

// The scan gate reads only trees under the server's working directory, the folder of
// its ferry.yaml, or a folder listed in FERRY_SCAN_ROOTS (colon-separated): a release
// request must not make the server read (and report on) any file it can open. The
// server's data_dir is never a root: a source inside it is refused, and when the source
// holds it, the walk skips it.
//
// The directory is opened first and every check is made on what the descriptor names;
// the scan then reads the tree through that descriptor, so a symlink swapped in after
// the check changes nothing (no check-then-scan race).
struct ScanRoot {
  int fd = -1;
  std::filesystem::path real;  // the canonical path the checks were made on
  ScanRoot() = default;
  ScanRoot(const ScanRoot&) = delete;
  ScanRoot& operator=(const ScanRoot&) = delete;
  ~ScanRoot() {
    if (fd >= 0) ::close(fd);
  }
  std::string scan_path() const { return "/proc/self/fd/" + std::to_string(fd); }
};

bool is_within(const std::filesystem::path& p, const std::filesystem::path& root) {
  if (root.empty()) return false;
  auto rel = p.lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

Status open_scan_root(const std::string& source, const std::string& config_path,
                      const std::string& data_dir, ScanRoot& out) {
  namespace fs = std::filesystem;
  out.fd = ::open(source.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (out.fd < 0) return invalid_argument("source " + source + " is not a directory on the server");
  std::error_code ec;
  out.real = fs::read_symlink(out.scan_path(), ec);
  if (ec) return internal_error("source " + source + " cannot be resolved: " + ec.message());
  const fs::path data = fs::weakly_canonical(fs::absolute(data_dir), ec);
  std::vector<fs::path> roots{fs::current_path(ec),
                              fs::canonical(fs::absolute(config_path).parent_path(), ec)};
  if (const char* extra = std::getenv("FERRY_SCAN_ROOTS")) {
    std::string list = extra;
    for (size_t i = 0; i <= list.size();) {
      const size_t j = std::min(list.find(':', i), list.size());
      if (j > i) roots.push_back(fs::canonical(list.substr(i, j - i), ec));
      i = j + 1;
    }
  }
  if (out.real == data || is_within(out.real, data))
    return permission_denied("source " + source +
                             " is inside the server's data_dir, which is "
                             "never scanned (it holds the keys and the store)");
  for (const auto& root : roots) {
    if (root.empty() || root == root.root_path()) continue;
    if (root == data || is_within(root, data)) continue;  // data_dir is never a root
    if (out.real == root || is_within(out.real, root)) return Status::Ok();
  }
  return permission_denied("source " + source +
                           " is outside the folders the server scans (its working directory, "
                           "the folder of its ferry.yaml, FERRY_SCAN_ROOTS)");
}

// What the release itself adds to the app's environment (--set-env).
Json release_env(const ReleaseRecord& r) {
  return r.config.is_object() ? r.config.value("release_env", Json::object()) : Json::object();
}

Json release_json(const ReleaseRecord& r) {
  return Json{
      {"app", r.app},           {"version", r.version},         {"git_sha", r.git_sha},
      {"artifact", r.artifact}, {"scan_status", r.scan_status}, {"scan_summary", r.scan_summary},
      {"env", release_env(r)},  {"created_by", r.created_by},   {"created_at_ms", r.created_at_ms}};
}

}  // namespace

void add_release_routes(HttpServer& http, ControlPlane& cp) {
  http.route("POST", "/api/v1/releases", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kDeployer)) return *denied;
    auto body = object_body(req);
    if (!body.ok()) return HttpResponse::error(body.status());
    const Principal who = principal_of(req);
    ReleaseRecord r;
    auto app_name = string_field(*body, "app", false),
         version = string_field(*body, "version", false),
         git_sha = string_field(*body, "git_sha", false, 64),
         artifact = string_field(*body, "artifact", false, 1024);
    for (auto* f : {&app_name, &version, &git_sha, &artifact})
      if (!f->ok()) return HttpResponse::error(f->status());
    r.app = *app_name;
    r.version = *version;
    r.git_sha = *git_sha;
    r.artifact = *artifact;
    auto config = cp.config();
    const AppSpec* app = config->app(r.app);
    if (!app)
      return HttpResponse::error(not_found("app '" + r.app + "' is not in " + config->path));
    if (!valid_version(r.version))
      return HttpResponse::error(
          invalid_argument("version '" + r.version.substr(0, 64) +
                           "' must be 1-64 characters of letters, digits, . - _ +"));
    // The release's configuration snapshot: what it runs, with its own env additions.
    RunSpec run = app->run;
    const Json env = body->value("env", Json::object());
    if (!env.is_object() || env.size() > 100)
      return HttpResponse::error(
          invalid_argument("field 'env' must be an object of at most 100 strings"));
    for (auto it = env.begin(); it != env.end(); ++it) {
      const std::string& name = it.key();
      const std::string shown = name.substr(0, 64);
      if (!valid_env_name(name))
        return HttpResponse::error(
            invalid_argument("env name '" + shown +
                             "' is not a variable name: letters, digits and _, not "
                             "starting with a digit, at most 128 (configuration.md, type env)"));
      if (is_reserved_env(name))
        return HttpResponse::error(
            invalid_argument("env." + shown + " is set by ferry itself (PORT, FERRY_*)"));
      if (is_loader_env(name) && std::find(run.allow_loader_env.begin(), run.allow_loader_env.end(),
                                           name) == run.allow_loader_env.end())
        return HttpResponse::error(permission_denied(
            "env." + shown + " changes what the program loads or runs; app " + r.app +
            " does not allow it (apps." + r.app + ".run.allow_loader_env)"));
      if (!it.value().is_string() || it.value().get<std::string>().size() > 4096 ||
          it.value().get<std::string>().find('\0') != std::string::npos)
        return HttpResponse::error(invalid_argument(
            "env." + shown + " must be a string of at most 4096 bytes without NUL"));
      run.env[name] = it.value().get<std::string>();
    }
    Json runj, checksj;
    to_json(runj, run);
    to_json(checksj, app->checks);
    // The release's own additions, kept apart so approvers see exactly what it changes.
    r.config = Json{{"run", runj}, {"checks", checksj}, {"release_env", env}};

    // Scan gate.
    auto source_f = string_field(*body, "source", false, 4096),
         reason_f = string_field(*body, "reason", false, 1000);
    for (auto* f : {&source_f, &reason_f})
      if (!f->ok()) return HttpResponse::error(f->status());
    const std::string source = *source_f, reason = *reason_f;
    if (body->contains("override_scan") && !(*body)["override_scan"].is_boolean())
      return HttpResponse::error(invalid_argument("field 'override_scan' must be true or false"));
    const bool override_scan = body->value("override_scan", false);
    if (!source.empty()) {
      ScanRoot root;
      if (Status s =
              open_scan_root(source, cp.options().config_path, config->server.data_dir, root);
          !s.ok())
        return HttpResponse::error(s);
      // The gate's ignores come from the server's configuration, never from the tree.
      scan::ScanOptions sopts;
      sopts.no_default_ignore_file = true;
      sopts.inline_allow = false;
      sopts.ignore_file = config->server.scan_ignore_file;
      sopts.threads = 2;
      std::error_code ec;
      if (const auto data = std::filesystem::weakly_canonical(
              std::filesystem::absolute(config->server.data_dir), ec);
          !ec && is_within(data, root.real))
        sopts.skip_dirs.push_back(data.string());
      auto report = scan::scan_path(root.scan_path(), sopts);
      if (!report.ok())
        return HttpResponse::error(report.status().with_context("scan of " + source));
      // Rule, place and a redacted secret: enough to fix it. No fingerprints: they would
      // hand back a hash of the secret and what it takes to ignore the finding.
      Json findings = Json::array();
      for (const auto& f : report->findings) {
        if (findings.size() >= 50) break;
        findings.push_back(Json{{"rule", f.rule_id},
                                {"file", f.file},
                                {"line", f.line},
                                {"secret", scan::redact(f.secret)}});
      }
      r.scan_summary = Json{{"findings", report->findings.size()},
                            {"files", report->stats.files_scanned},
                            {"bytes", report->stats.bytes_scanned},
                            {"first", findings}};
      if (report->findings.empty()) {
        r.scan_status = "clean";
      } else if (!override_scan) {
        cp.audit(who.actor(), "release.refused", r.app, "", r.version, req.remote_addr,
                 Json{{"findings", report->findings.size()}});
        Json err = status_to_json(failed_precondition(
            "secret scan of " + source + " found " + std::to_string(report->findings.size()) +
            " finding(s); fix them, or an admin may pass --override-scan --reason"));
        err["findings"] = findings;
        return HttpResponse::json(err, 412);
      } else {
        if (who.role < Role::kAdmin)
          return HttpResponse::error(
              permission_denied("overriding the scan gate needs the admin role"));
        if (reason.size() < 8)
          return HttpResponse::error(
              invalid_argument("an override needs --reason of at least 8 characters"));
        r.scan_status = "overridden";
        r.scan_summary["override_reason"] = reason;
        r.scan_summary["override_by"] = who.actor();
      }
    }
    r.created_by = who.actor();
    r.created_at_ms = to_unix_ms(cp.clock().now());
    if (Status s = cp.store().create_release(r); !s.ok()) return HttpResponse::error(s);
    cp.audit(who.actor(),
             r.scan_status == "overridden" ? "release.create_override" : "release.create", r.app,
             "", r.version, req.remote_addr,
             Json{{"scan_status", r.scan_status}, {"reason", reason}, {"env", release_env(r)}});
    // Environments with auto_deploy take every new release without a request.
    Json auto_deployed = Json::array();
    for (const auto& env : config->environments) {
      if (!env.auto_deploy) continue;
      if (!who.allow(Role::kDeployer, env.name).ok()) continue;  // its token's scope holds
      // Requested by whoever created the release, so the two-person rule still sees them.
      auto d = cp.engine().deploy(r.app, env.name, r.version, who.actor());
      if (d.ok()) {
        cp.audit(who.actor(), "deployment.create", r.app, env.name, r.version, req.remote_addr,
                 Json{{"deployment_id", d->id}, {"auto_deploy", true}});
        auto_deployed.push_back(Json{{"env", env.name}, {"deployment_id", d->id}});
      } else {
        auto_deployed.push_back(Json{{"env", env.name}, {"error", d.status().message()}});
      }
    }
    Json out = release_json(r);
    out["auto_deployed"] = auto_deployed;
    return HttpResponse::json(out, 201);
  });

  http.route("GET", "/api/v1/apps/{app}/releases/{version}", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto r = cp.store().get_release(req.param("app"), req.param("version"));
    if (!r.ok()) return HttpResponse::error(r.status());
    return HttpResponse::json(release_json(*r));
  });

  http.route("GET", "/api/v1/apps/{app}/releases", [&cp](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    auto config = cp.config();
    if (!config->app(req.param("app")))
      return HttpResponse::error(
          not_found("app '" + req.param("app").substr(0, 128) + "' is not in " + config->path));
    auto list = cp.store().list_releases(req.param("app"), 100);
    if (!list.ok()) return HttpResponse::error(list.status());
    Json out = Json::array();
    for (const auto& r : *list) out.push_back(release_json(r));
    return HttpResponse::json(Json{{"releases", out}});
  });
}

}  // namespace ferry
