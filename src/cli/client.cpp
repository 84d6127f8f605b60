#include "cli/client.h"

#include <ctime>
#include <iostream>

namespace ferry::cli {

void fail(const std::string& message, int code) {
  std::cerr << "error: " << message << "\n";
  throw CLI::RuntimeError(code);
}

HttpClient api_client(const GlobalOptions& g, int timeout_ms) {
  auto ep = parse_endpoint(g.server);
  if (!ep.ok()) fail(ep.status().message());
  HttpClient c(*ep, {.timeout_ms = timeout_ms});
  if (!g.token.empty()) c.set_header("Authorization", "Bearer " + g.token);
  return c;
}

Json api_call(const GlobalOptions& g, const std::string& method, const std::string& target,
              const Json* body) {
  auto c = api_client(g);
  auto r = c.call(method, target, body);
  if (!r.ok()) {
    const Code code = r.status().code();
    std::string msg = r.status().message();
    if (code == Code::kUnavailable)
      msg += " (is `ferry server` running? set --server or FERRY_SERVER)";
    if (code == Code::kUnauthenticated && g.token.empty())
      msg += " (set --token or FERRY_TOKEN)";
    const bool refusal = code == Code::kFailedPrecondition || code == Code::kPermissionDenied ||
                         code == Code::kNotFound || code == Code::kUnauthenticated ||
                         code == Code::kConflict || code == Code::kAlreadyExists;
    fail(msg, refusal ? 1 : 2);
  }
  return *r;
}

std::string local_time(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace ferry::cli
