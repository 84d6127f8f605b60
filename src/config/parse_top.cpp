// The top of ferry.yaml: version, server, agents, notifications.
#include <algorithm>
#include <cctype>

#include "common/port_range.h"
#include "config/parsers.h"

namespace ferry::config {
namespace {

// "host:port" with a port 1-65535; the host may be a name, an IPv4 or "[v6]".
bool valid_host_port(std::string_view s) {
  size_t colon = s.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return false;
  std::string_view host = s.substr(0, colon);
  // An IPv6 host is written in brackets: [::1]:7070.
  if (host.find(':') != std::string_view::npos &&
      !(host.size() > 2 && host.front() == '[' && host.back() == ']'))
    return false;
  std::string_view port = s.substr(colon + 1);
  if (port.size() > 5) return false;
  int p = 0;
  for (char c : port) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    p = p * 10 + (c - '0');
  }
  return p >= 1 && p <= 65535;
}

void host_port(const Field& f, std::string& out) {
  std::string v;
  if (!f.get(v, 300)) return;
  if (!valid_host_port(v)) {
    f.error(describe(f.node()) +
            " is not an address: use host:port, e.g. 127.0.0.1:7070 or [::1]:7070");
    return;
  }
  out = v;
}

}  // namespace

void parse_server(const Field& f, ServerSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"listen", "store", "data_dir", "secrets_key_file", "start_local_agent",
                     "scan_ignore_file", "audit_key_file", "backups", "lease", "advertise"}))
    return;
  host_port(f.child("listen"), out.listen);
  Field store = f.child("store");
  std::string s;
  if (store.get(s, 1024)) {
    if (s.rfind("sqlite:", 0) == 0 && s.size() > 7)
      out.store = s;
    else if (s.rfind("postgres://", 0) == 0 || s.rfind("postgresql://", 0) == 0)
      out.store = s;
    else
      store.error(
          "is not a store: use sqlite:PATH (e.g. sqlite:.ferry/ferry.db) or "
          "postgres://user@host/db");  // the value may hold a password: not shown
  }
  f.child("data_dir").get(out.data_dir, 1024);
  f.child("secrets_key_file").get(out.secrets_key_file, 1024);
  f.child("start_local_agent").get_bool(out.start_local_agent);
  f.child("scan_ignore_file").get(out.scan_ignore_file, 1024);
  f.child("audit_key_file").get(out.audit_key_file, 1024);
  for (const char* ha : {"lease", "advertise"}) {
    Field h = f.child(ha);
    if (!h.present()) continue;
    if (out.store.rfind("sqlite:", 0) == 0) {
      h.error(
          "applies to several servers on a PostgreSQL store; with SQLite one server owns the "
          "data dir");
      continue;
    }
    // Renewed every third of it: under 1 s a busy database fails renewals; over a minute
    // a lost leader stops deployments for that long.
    if (std::string_view(ha) == "lease")
      h.get_duration_ms(out.lease_ms, 1000, 60'000);
    else
      host_port(h, out.advertise);
  }
  if (Field b = f.child("backups");
      b.present() && b.expect_map({"every", "keep", "dir", "drill"})) {
    // At least every 5 minutes apart, at most a week: a backup copies the whole store.
    b.child("every").get_duration_ms(out.backups.every_ms, 5 * 60'000, 7 * 24 * kHour);
    b.child("keep").get_int(out.backups.keep, 1, 10'000);
    b.child("dir").get(out.backups.dir, 1024);
    b.child("drill").get_bool(out.backups.drill);
    if (out.backups.every_ms == 0 && !b.child("every").present())
      b.error("needs `every` (e.g. 6h): without it nothing is scheduled");
  }
}

void parse_agent(const Field& f, AgentSpec& out) {
  if (!f.expect_map({"address", "token_file", "listen", "labels", "tls", "insecure"})) return;
  Field address = f.required("address");
  host_port(address, out.address);
  f.child("tls").get_bool(out.tls);
  f.child("insecure").get_bool(out.insecure);
  // The server's calls carry the agent's token and the apps' decrypted secrets: never in
  // clear over a network unless the file says so.
  if (out.tls && out.insecure) {
    f.child("insecure")
        .error(
            "insecure: true contradicts tls: true; keep tls (mutual TLS) or "
            "drop it for plain HTTP");
  } else if (!out.address.empty() && !out.tls && !out.insecure && !loopback_address(out.address)) {
    const std::string enroll = "ferry agents enroll " + out.name;
    address.error(out.address +
                  " is not a loopback address, and the server's calls carry the agent token and "
                  "the apps' secrets: write `tls: true` and enroll the agent (" +
                  enroll +
                  ", then ferry agent init and join on its host; docs/operations.md), or "
                  "`insecure: true` for plain HTTP on a network you trust");
  }
  f.child("token_file").get(out.token_file, 1024);
  parse_listen(f.child("listen"), out.listen);
  for (auto& [key, v] : f.child("labels").entries(kMaxLabels, true)) {
    std::string value;
    if (!v.get(value, 63)) continue;
    if (value.empty() ||
        value.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                "0123456789._-") != std::string::npos) {
      v.error(describe(v.node()) +
              " is not a label value: 1-63 characters of letters, digits, '.', '_' and '-'");
      continue;
    }
    out.labels[key] = value;
  }
}

// "10MB", "512KB", "1GB" or a number of bytes.
bool parse_byte_size(const std::string& text, int64_t& out) {
  size_t i = 0;
  int64_t n = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) && n < (1LL << 40))
    n = n * 10 + (text[i++] - '0');
  if (i == 0) return false;
  const std::string unit = text.substr(i);
  const int64_t mult = unit.empty() || unit == "B" ? 1
                       : unit == "KB"              ? 1LL << 10
                       : unit == "MB"              ? 1LL << 20
                       : unit == "GB"              ? 1LL << 30
                                                   : 0;
  if (mult == 0 || n >= (1LL << 40)) return false;
  out = n * mult;
  return true;
}

void parse_local_agent(const Field& f, const Config& c, LocalAgentSpec& out) {
  if (!f.present() || !f.expect_map({"instance_ports", "logs"})) return;
  Field ports = f.child("instance_ports");
  std::string range;
  if (ports.get(range, 32)) {
    // Checked against this host's ephemeral range: the agent refuses an overlapping one.
    auto r = check_instance_port_range(range);
    if (!r.ok()) {
      ports.error(r.status().message());
    } else {
      out.instance_ports = range;
      for (const auto& app : c.apps)
        if (r->contains(app.port))
          ports.error("contains port " + std::to_string(app.port) + " of app \"" + app.name +
                      "\": an app's public port must be outside the instance port range");
    }
  }
  Field logs = f.child("logs");
  if (!logs.present() || !logs.expect_map({"keep", "max_size"})) return;
  logs.child("keep").get_int(out.log_keep, 1, 100);
  Field size = logs.child("max_size");
  std::string text;
  if (size.get(text, 32)) {
    int64_t bytes = 0;
    if (!parse_byte_size(text, bytes) || bytes < 4096 || bytes > (1LL << 34))
      size.error("\"" + text + "\" is not a size from 4KB to 16GB: write e.g. 10MB, 512KB or 1GB");
    else
      out.log_max_bytes = bytes;
  }
}

void parse_notification(const Field& f, NotificationSpec& out) {
  if (!f.expect_map({"name", "type", "url", "url_env", "routing_key_env", "secret_env", "events"}))
    return;
  Field name = f.required("name");
  if (name.get(out.name, 63) && out.name.empty()) name.error("must not be empty");
  f.required("type").get_enum(out.type, {"slack", "pagerduty", "webhook"});
  Field url = f.child("url");
  if (url.get(out.url, 2048) && out.url.rfind("https://", 0) != 0 &&
      out.url.rfind("http://", 0) != 0) {
    url.error("is not a URL: it must start with https:// or http://");  // may be a secret
    out.url.clear();
  }
  f.child("url_env").get(out.url_env, 128);
  f.child("routing_key_env").get(out.routing_key_env, 128);
  f.child("secret_env").get(out.secret_env, 128);
  Field events = f.child("events");
  if (events.get_string_list(out.events, 100)) {
    // The kinds src/notify sends (docs/observability.md); checked here so a typo fails
    // `ferry validate` instead of silently never notifying.
    static const std::vector<std::string> kKinds = {
        "deployment_started", "step_passed",   "analysis_failed",
        "rolled_back",        "succeeded",     "failed",
        "approval_needed",    "backup_failed", "slo_burn"};
    for (const auto& e : out.events)
      if (std::find(kKinds.begin(), kKinds.end(), e) == kKinds.end())
        events.error("event '" + e.substr(0, 64) +
                     "' is not one of deployment_started, step_passed, analysis_failed, "
                     "rolled_back, succeeded, failed, approval_needed, backup_failed, "
                     "slo_burn");
  }
  if (out.type == "pagerduty") {
    if (out.routing_key_env.empty())
      f.error(
          "a pagerduty notification needs \"routing_key_env\" (the variable holding the "
          "Events v2 routing key)");
  } else if (!out.type.empty() && out.url.empty() && out.url_env.empty() &&
             !f.child("url").present()) {
    f.error("a " + out.type + " notification needs \"url\" or \"url_env\"");
  }
}

}  // namespace ferry::config
