// What the router believes about a client: source address ranges (trusted proxies, the
// pinning allowlist), and the values it signs itself with the router key so a client can
// carry them but not forge them (pin tokens, affinity cookies). Pure functions, no I/O
// except load_router_key.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry::routing {

// An IPv4 or IPv6 address range ("10.0.0.0/8", "::1/128", a bare address = one host).
// IPv4 addresses are kept as IPv4-mapped IPv6, so "127.0.0.1/32" also matches a client
// that reached a dual-stack socket as ::ffff:127.0.0.1.
struct Cidr {
  std::array<uint8_t, 16> net{};
  int prefix = 0;  // bits of `net` that must match, 0-128
};

// Parses `text`; an error names the value and says what a range looks like.
Result<Cidr> parse_cidr(std::string_view text);
// Whether `address` (a textual IP address, as the router reports clients) is in any of
// `ranges`. An address that does not parse is in none.
bool in_ranges(std::string_view address, const std::vector<Cidr>& ranges);

// The router's signing key: at least 32 bytes, read from `path`, or made (random, mode
// 0600) when the file does not exist. An error names the path.
Result<std::string> load_router_key(const std::string& path);

// A pin token lets its holder send requests to `release` of agent app `app` (e.g.
// "web.production") with the pin header until `expires_unix_s`:
//   "pin1.<expires>.<hex HMAC-SHA-256(key, app, release, expires)>.<release>".
std::string make_pin_token(std::string_view key, std::string_view app, std::string_view release,
                           int64_t expires_unix_s);
// The release a pin token names when its signature is good and it has not expired at
// `now_unix_s`; empty otherwise.
std::string verify_pin_token(std::string_view key, std::string_view app, std::string_view token,
                             int64_t now_unix_s);

// The affinity cookie's value: "<release>.<hex HMAC>" over the app and release.
std::string make_affinity_value(std::string_view key, std::string_view app,
                                std::string_view release);
// The release an affinity value names when its signature is good; empty otherwise.
std::string verify_affinity_value(std::string_view key, std::string_view app,
                                  std::string_view value);

}  // namespace ferry::routing
