// apps.<name>: port, instances, run, checks, hooks, router, limits and per-environment
// overrides.
#include <arpa/inet.h>

#include <algorithm>

#include "common/spawn.h"
#include "config/parsers.h"

namespace ferry::config {
namespace {}  // namespace

void parse_listen(const Field& f, std::string& out) {
  std::string s;
  if (!f.get(s, 64)) return;
  unsigned char buf[16];
  if (inet_pton(AF_INET, s.c_str(), buf) != 1 && inet_pton(AF_INET6, s.c_str(), buf) != 1) {
    f.error(describe(f.node()) +
            " is not an IP address: use e.g. 127.0.0.1 (this host only), 0.0.0.0 (all) or ::1");
    return;
  }
  out = s;
}

namespace {

// An address range ("10.0.0.0/8", "::1/128", or one address); the router parses the same
// form (src/router/trust.h).
bool valid_cidr(const std::string& s) {
  std::string addr = s;
  int max = 0, prefix = -1;
  if (size_t slash = s.find('/'); slash != std::string::npos) {
    addr = s.substr(0, slash);
    std::string p = s.substr(slash + 1);
    if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
      return false;
    prefix = std::stoi(p);
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) == 1)
    max = 32;
  else if (inet_pton(AF_INET6, addr.c_str(), buf) == 1)
    max = 128;
  else
    return false;
  return prefix <= max;
}

void parse_ranges(const Field& f, std::vector<std::string>& out) {
  std::vector<std::string> ranges;
  if (!f.get_string_list(ranges, 100)) return;
  bool ok = true;
  for (const auto& r : ranges)
    if (!valid_cidr(r)) {
      f.error("\"" + r.substr(0, 64) +
              "\" is not an address range: use e.g. 10.0.0.0/8, 127.0.0.1 or ::1/128");
      ok = false;
    }
  if (ok) out = std::move(ranges);
}

// apps.<name>.router: trust, pinning, the canary shield, affinity, the body deadline.
void parse_router(const Field& f, RouterSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"trusted_proxies", "pinning", "shield", "affinity", "request_body_timeout"}))
    return;
  parse_ranges(f.child("trusted_proxies"), out.trusted_proxies);
  Field pin = f.child("pinning");
  if (pin.present() && pin.expect_map({"from", "tokens"})) {
    parse_ranges(pin.child("from"), out.pin_from);
    pin.child("tokens").get_bool(out.pin_tokens);
    if (!out.pinning() && !pin.child("from").present())
      pin.error(
          "pinning needs \"from\" (address ranges) or \"tokens: true\"; leave it out "
          "to keep pinning off");
  }
  f.child("shield").get_bool(out.shield);
  Field aff = f.child("affinity");
  std::string a;
  if (aff.get(a, 80)) {
    bool header = a.rfind("header:", 0) == 0;
    std::string name = header ? a.substr(7) : "";
    bool token = !name.empty() && name.size() <= 64 &&
                 name.find_first_not_of(
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789-_") == std::string::npos;
    if (a == "none" || a == "cookie" || (header && token))
      out.affinity = a;
    else
      aff.error("\"" + a.substr(0, 64) +
                "\" is not an affinity: use none, cookie or header:NAME (e.g. header:X-User-Id)");
  }
  f.child("request_body_timeout").get_duration_ms(out.request_body_timeout_ms, 100, kHour);
}

void parse_override(const Field& f, AppEnvSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"instances", "port", "env", "slo"})) return;
  parse_slo(f.child("slo"), out.slo);
  int n = 0;
  if (f.child("instances").get_int(n, 0, 100)) out.instances = n;
  int port = 0;
  if (f.child("port").get_int(port, 1, 65535)) out.port = static_cast<uint16_t>(port);
  f.child("env").get_env(out.env);
}

// The spacing of the probes of a healthy instance when steady_interval is not given (or the
// interval, when longer): docs/configuration.md, checks.
constexpr int kDefaultSteadyIntervalMs = 5'000;

void parse_probe(const Field& f, ProbeSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"http", "tcp", "command", "interval", "steady_interval", "timeout",
                     "success_threshold", "failure_threshold", "initial_delay"}))
    return;
  int kinds = 0;
  for (auto k : {"http", "tcp", "command"}) kinds += f.child(k).node().IsDefined() ? 1 : 0;
  if (kinds != 1) {
    f.error(kinds == 0
                ? "a probe needs one of \"http\", \"tcp\" or \"command\""
                : "a probe has exactly one of \"http\", \"tcp\" or \"command\", not several");
  }
  Field http = f.child("http");
  if (http.node().IsDefined()) {
    out.kind = ProbeSpec::Kind::kHttp;
    if (http.is_scalar()) {  // shorthand: `http: /healthz`
      http.get(out.path, 1024);
    } else if (http.present() && http.expect_map({"path", "status"})) {
      http.child("path").get(out.path, 1024);
      http.child("status").get_int(out.expect_status, 0, 599);
      if (out.expect_status > 0 && out.expect_status < 100)
        http.child("status").error(std::to_string(out.expect_status) +
                                   " is not an HTTP status: use 100-599, or 0 for any 2xx");
    }
    if (out.path.empty() || out.path[0] != '/')
      http.error("the path must start with '/', e.g. /healthz");
  }
  Field tcp = f.child("tcp");
  if (tcp.node().IsDefined()) {
    out.kind = ProbeSpec::Kind::kTcp;
    if (tcp.present()) tcp.expect_map({});
  }
  Field command = f.child("command");
  if (command.node().IsDefined()) {
    out.kind = ProbeSpec::Kind::kCommand;
    if (!command.get_command(out.command) && !command.present())
      command.error("the command is empty: give the program and its arguments");
  }
  f.child("interval").get_duration_ms(out.interval_ms, 100, kHour);
  f.child("timeout").get_duration_ms(out.timeout_ms, 10, 10 * 60'000);
  f.child("success_threshold").get_int(out.success_threshold, 1, 100);
  f.child("failure_threshold").get_int(out.failure_threshold, 1, 100);
  f.child("initial_delay").get_duration_ms(out.initial_delay_ms, 0, kHour);
  Field steady = f.child("steady_interval");
  if (!steady.present()) {
    // Not given: a healthy instance is probed every kDefaultSteadyIntervalMs (or interval,
    // when longer), so hundreds of instances on a host do not keep its agent busy.
    out.steady_interval_ms = std::max(out.interval_ms, kDefaultSteadyIntervalMs);
  } else if (steady.get_duration_ms(out.steady_interval_ms, 100, kHour) &&
             out.steady_interval_ms < out.interval_ms) {
    steady.error("steady_interval " + std::to_string(out.steady_interval_ms) +
                 "ms is shorter than interval " + std::to_string(out.interval_ms) +
                 "ms: it spaces the probes of a healthy instance, so it is at least interval");
    out.steady_interval_ms = 0;
  }
}

// An exit code or a list of them (1-255, at most 32); `out` is set only when all are valid.
void parse_exit_codes(const Field& f, std::vector<int>& out) {
  if (!f.present()) return;
  // items() reports a map or a list that is too long, and then gives nothing.
  std::vector<Field> items = f.is_scalar() ? std::vector<Field>{f} : f.items(32);
  if (items.empty() && !(f.is_list() && f.node().size() == 0)) return;
  std::vector<int> codes;
  bool ok = true;
  for (const Field& c : items) {
    int code = 0;
    if (c.get_int(code, 1, 255))
      codes.push_back(code);
    else
      ok = false;
  }
  if (ok) out = std::move(codes);
}

void parse_hook(const Field& f, HookSpec& out) {
  if (!f.expect_map({"name", "command", "timeout", "retries", "transient_exit_codes", "env"}))
    return;
  Field name = f.required("name");
  if (name.get(out.name, 63) && out.name.empty()) name.error("must not be empty");
  f.required("command").get_command(out.command);
  f.child("timeout").get_duration_ms(out.timeout_ms, 1000, 2 * kHour);
  f.child("retries").get_int(out.retries, 0, 3);
  parse_exit_codes(f.child("transient_exit_codes"), out.transient_exit_codes);
  f.child("env").get_env(out.env);
}

void parse_hook_list(const Field& f, std::vector<HookSpec>& out) {
  std::vector<std::string> names;
  for (const Field& h : f.items(kMaxHooks)) {
    HookSpec spec;
    parse_hook(h, spec);
    if (!spec.name.empty()) {
      for (const auto& n : names)
        if (n == spec.name)
          h.child("name").error("\"" + spec.name +
                                "\" is used twice in this list; hook names "
                                "must be unique");
      names.push_back(spec.name);
    }
    out.push_back(std::move(spec));
  }
}

}  // namespace

bool valid_image_ref(std::string_view ref) {
  if (ref.empty() || ref.size() > 255) return false;
  auto is_lower_alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (const size_t at = ref.find('@'); at != std::string_view::npos) {
    const std::string_view digest = ref.substr(at + 1);
    if (!digest.starts_with("sha256:") || digest.size() != 7 + 64) return false;
    for (char c : digest.substr(7))
      if (!std::isxdigit(static_cast<unsigned char>(c)) ||
          std::isupper(static_cast<unsigned char>(c)))
        return false;
    ref = ref.substr(0, at);
  }
  const size_t slash = ref.rfind('/');
  if (const size_t colon = ref.rfind(':');
      colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    const std::string_view tag = ref.substr(colon + 1);
    if (tag.empty() || tag.size() > 128 || tag[0] == '.' || tag[0] == '-') return false;
    for (char c : tag)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
        return false;
    ref = ref.substr(0, colon);
  }
  size_t start = 0;
  bool first = true;
  while (start <= ref.size()) {
    size_t end = ref.find('/', start);
    if (end == std::string_view::npos) end = ref.size();
    const std::string_view part = ref.substr(start, end - start);
    const bool domain = first && end != ref.size() &&
                        (part.find_first_of(".:") != std::string_view::npos || part == "localhost");
    if (part.empty()) return false;
    for (size_t i = 0; i < part.size(); ++i) {
      const char c = part[i];
      if (domain) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':'))
          return false;
      } else if (!is_lower_alnum(c)) {
        // Separators (. _ __ -) only between lower-case letters and digits.
        if (!(c == '.' || c == '_' || c == '-') || i == 0 || i + 1 == part.size()) return false;
      }
    }
    first = false;
    start = end + 1;
    if (end == ref.size()) break;
  }
  return true;
}

void parse_run(const Field& f, RunSpec& out) {
  if (!f.expect_map({"command", "image", "pull", "resources", "cwd", "env", "stop_grace", "user",
                     "allow_loader_env"}))
    return;
  f.child("command").get_command(out.command);
  // run.image: the agent runs a Docker container (src/agent/docker_runtime.h); command is
  // then the container's command. pull and resources apply to containers only.
  Field image = f.child("image");
  if (image.get(out.image, 255) && !valid_image_ref(out.image)) {
    image.error(describe(image.node()) +
                " is not an image reference: [host[:port]/]name[:tag][@sha256:<64 hex>], names "
                "in lower-case letters, digits and . _ -");
    out.image.clear();
  }
  if (!image.present() && !f.child("command").present())
    f.error(
        "\"command\" (the program and its arguments) or \"image\" (a container image) is "
        "required");
  Field pull = f.child("pull");
  std::string policy;
  if (pull.present() && !image.present())
    pull.error("applies to containers only: set \"image\" too, or remove \"pull\"");
  else if (pull.get_enum(policy, {"always", "missing", "never"}))
    out.pull = policy == "always"  ? PullPolicy::kAlways
               : policy == "never" ? PullPolicy::kNever
                                   : PullPolicy::kMissing;
  Field res = f.child("resources");
  if (res.present() && !image.present()) {
    res.error(
        "cpu and memory limits apply to containers (run.image) only: the process runtime "
        "does not enforce them");
  } else if (res.present() && res.expect_map({"cpus", "memory"})) {
    res.child("cpus").get_number(out.cpus, 0.01, 1024);
    Field mem = res.child("memory");
    std::string text;
    int64_t bytes = 0;
    if (mem.get(text, 32)) {
      if (!parse_byte_size(text, bytes) || bytes < (6LL << 20) || bytes > (1LL << 40))
        mem.error("\"" + text.substr(0, 32) +
                  "\" is not a size from 6MB (dockerd's least) to 1024GB: write e.g. 256MB or 1GB");
      else
        out.memory_bytes = bytes;
    }
  }
  Field cwd = f.child("cwd");
  if (cwd.get(out.cwd, 1024) && !out.image.empty() && !out.cwd.starts_with("/"))
    cwd.error("\"" + out.cwd.substr(0, 64) +
              "\" must be an absolute path inside the image when \"image\" is set");
  f.child("env").get_env(out.env);
  f.child("stop_grace").get_duration_ms(out.stop_grace_ms, 0, kHour);
  Field allow = f.child("allow_loader_env");
  if (allow.get_string_list(out.allow_loader_env, 32))
    for (const auto& n : out.allow_loader_env)
      if (!is_loader_env(n))
        allow.error("'" + n.substr(0, 64) +
                    "' is not a loader variable (LD_*, GCONV_PATH, GLIBC_TUNABLES, MALLOC_*, "
                    "BASH_ENV, NODE_OPTIONS, …; see configuration.md): other names need no "
                    "allowing");
  // Syntax only: whether the user exists is checked by the agent that starts the instance.
  Field user = f.child("user");
  if (user.get(out.user, 32) && !out.user.empty() && !valid_user_name(out.user)) {
    user.error(describe(user.node()) +
               " is not a user name: 1-32 of a-z 0-9 _ -, starting with a letter or _, or a uid");
    out.user.clear();
  }
}

void parse_checks(const Field& f, ChecksSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"readiness", "liveness", "startup_grace"})) return;
  parse_probe(f.child("readiness"), out.readiness);
  parse_probe(f.child("liveness"), out.liveness);
  f.child("startup_grace").get_duration_ms(out.startup_grace_ms, 0, kHour);
}

void parse_hooks(const Field& f, HooksSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"pre_deploy", "post_deploy", "on_rollback"})) return;
  parse_hook_list(f.child("pre_deploy"), out.pre_deploy);
  parse_hook_list(f.child("post_deploy"), out.post_deploy);
  parse_hook_list(f.child("on_rollback"), out.on_rollback);
}

void parse_app(const Field& f, AppSpec& out) {
  if (!f.expect_map({"port", "listen", "instances", "run", "checks", "strategy", "analysis",
                     "hooks", "router", "tls", "access_log", "progress_deadline", "keep_releases",
                     "keep_previous", "rollback_policy", "environments", "slo"}))
    return;
  parse_slo(f.child("slo"), out.slo);
  int port = 0;
  if (f.required("port").get_int(port, 1, 65535)) out.port = static_cast<uint16_t>(port);
  parse_listen(f.child("listen"), out.listen);
  out.listen_set = f.child("listen").present();
  f.child("instances").get_int(out.instances, 1, 100);
  Field run = f.required("run");
  if (run.present()) parse_run(run, out.run);
  parse_checks(f.child("checks"), out.checks);
  parse_strategy(f.child("strategy"), out.strategy);
  parse_analysis(f.child("analysis"), out.analysis);
  parse_hooks(f.child("hooks"), out.hooks);
  parse_router(f.child("router"), out.router);
  parse_tls(f.child("tls"), out.port, out.router.tls);
  parse_access_log(f.child("access_log"), out.router.access_log);
  f.child("progress_deadline").get_duration_ms(out.progress_deadline_ms, 1000, 2 * kHour);
  f.child("keep_releases").get_int(out.keep_releases, 1, 1000);
  Field keep = f.child("keep_previous");
  keep.get_duration_ms(out.keep_previous_ms, 0, 24 * kHour);
  if (out.keep_previous_ms > 0 && out.strategy.kind == StrategySpec::Kind::kRolling)
    keep.error(
        "keep_previous needs the old instances to outlive the switch: use it with the canary, "
        "blue_green or immediate strategy (rolling replaces them batch by batch)");
  f.child("rollback_policy").get_enum(out.rollback_policy, {"rollback", "resume"});
  for (auto& [env, o] : f.child("environments").entries(kMaxEnvironments, true))
    parse_override(o, out.environments[env]);
}

}  // namespace ferry::config
