#include "common/port_range.h"

#include <charconv>
#include <fstream>

namespace ferry {

Result<PortRange> parse_port_range(std::string_view text) {
  const auto bad = [&] {
    return invalid_argument("port range \"" + std::string(text.substr(0, 64)) +
                            "\" must be FIRST-LAST with 1024 <= FIRST <= LAST <= 65535");
  };
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return bad();
  const auto first = text.substr(0, dash), last = text.substr(dash + 1);
  if (first.empty() || last.empty()) return bad();
  unsigned a = 0, b = 0;
  if (std::from_chars(first.data(), first.data() + first.size(), a).ptr !=
          first.data() + first.size() ||
      std::from_chars(last.data(), last.data() + last.size(), b).ptr != last.data() + last.size())
    return bad();
  if (a < 1024 || b > 65535 || a > b) return bad();
  return PortRange{static_cast<uint16_t>(a), static_cast<uint16_t>(b)};
}

PortRange ephemeral_port_range() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  unsigned a = 0, b = 0;
  if (f >> a >> b && a >= 1 && b <= 65535 && a <= b)
    return PortRange{static_cast<uint16_t>(a), static_cast<uint16_t>(b)};
  return PortRange{32768, 60999};
}

bool overlaps(const PortRange& a, const PortRange& b) {
  return a.first <= b.last && b.first <= a.last;
}

Result<PortRange> check_instance_port_range(std::string_view text) {
  auto r = parse_port_range(text);
  if (!r.ok()) return r;
  const PortRange eph = ephemeral_port_range();
  if (overlaps(*r, eph))
    return invalid_argument("instance port range " + r->to_string() +
                            " overlaps the kernel's ephemeral port range " + eph.to_string() +
                            " (net.ipv4.ip_local_port_range), where outgoing connections take "
                            "their source ports; choose a range outside it, e.g. 20000-29999");
  return r;
}

}  // namespace ferry
