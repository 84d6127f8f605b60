// PortRange: the ports an agent gives its instances ("20000-29999"). Kept outside the
// kernel's ephemeral range (net.ipv4.ip_local_port_range), from which outgoing connections
// take their source ports: a probe or a proxied request could otherwise hold an
// instance's (or a router's) port when it needs to listen.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry {

struct PortRange {
  uint16_t first = 20000;
  uint16_t last = 29999;
  bool contains(uint16_t port) const { return port >= first && port <= last; }
  std::string to_string() const { return std::to_string(first) + "-" + std::to_string(last); }
};

// "20000-29999" → a range with 1024 <= first <= last <= 65535; an error shows the text.
Result<PortRange> parse_port_range(std::string_view text);

// The kernel's ephemeral range from /proc/sys/net/ipv4/ip_local_port_range; Linux's
// default 32768-60999 when it cannot be read.
PortRange ephemeral_port_range();

bool overlaps(const PortRange& a, const PortRange& b);

// An instance port range an agent can use: parseable and outside the ephemeral range.
// The error says what to change.
Result<PortRange> check_instance_port_range(std::string_view text);

}  // namespace ferry
