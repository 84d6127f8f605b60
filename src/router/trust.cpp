#include "router/trust.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include "common/crypto.h"

namespace ferry::routing {

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kMaxKeyFileBytes = 4096;

// `text` as a 16-byte address (IPv4 mapped into IPv6); false when it is not an address.
bool parse_address(std::string_view text, std::array<uint8_t, 16>* out, bool* v4) {
  if (text.empty() || text.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  unsigned char a4[4];
  if (inet_pton(AF_INET, buf, a4) == 1) {
    out->fill(0);
    (*out)[10] = 0xff;
    (*out)[11] = 0xff;
    std::memcpy(out->data() + 12, a4, 4);
    *v4 = true;
    return true;
  }
  *v4 = false;
  return inet_pton(AF_INET6, buf, out->data()) == 1;
}

bool matches(const std::array<uint8_t, 16>& addr, const Cidr& c) {
  int bits = c.prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((addr[i] & mask) != (c.net[i] & mask)) return false;
  }
  return true;
}

std::string signed_data(std::string_view purpose, std::string_view app, std::string_view release,
                        std::string_view extra) {
  std::string d;
  d.reserve(purpose.size() + app.size() + release.size() + extra.size() + 3);
  d.append(purpose).push_back('\n');
  d.append(app).push_back('\n');
  d.append(release).push_back('\n');
  d.append(extra);
  return d;
}

}  // namespace

Result<Cidr> parse_cidr(std::string_view text) {
  auto bad = [&] {
    return invalid_argument("'" + std::string(text.substr(0, 64)) +
                            "' is not an address range: use e.g. 10.0.0.0/8, 127.0.0.1 or ::1/128");
  };
  std::string_view addr = text;
  int prefix = -1;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    addr = text.substr(0, slash);
    std::string_view p = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (ec != std::errc() || end != p.data() + p.size() || p.empty() || prefix < 0) return bad();
  }
  Cidr c;
  bool v4 = false;
  if (!parse_address(addr, &c.net, &v4)) return bad();
  int max = v4 ? 32 : 128;
  if (prefix < 0) prefix = max;
  if (prefix > max) return bad();
  c.prefix = v4 ? 96 + prefix : prefix;
  return c;
}

bool in_ranges(std::string_view address, const std::vector<Cidr>& ranges) {
  if (ranges.empty()) return false;
  std::array<uint8_t, 16> a{};
  bool v4 = false;
  if (!parse_address(address, &a, &v4)) return false;
  for (const Cidr& c : ranges)
    if (matches(a, c)) return true;
  return false;
}

Result<std::string> load_router_key(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    // O_EXCL: when two routers make the key at once, one wins and the other reads it.
    int wfd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (wfd >= 0) {
      std::string key = random_bytes(kKeyBytes);
      bool ok = ::write(wfd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
      ok = ::fsync(wfd) == 0 && ok;
      ::close(wfd);
      if (!ok) return internal_error("cannot write the router key " + path);
      return key;
    }
    if (errno != EEXIST)
      return unavailable("cannot create the router key " + path + ": " + std::strerror(errno));
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0)
    return unavailable("cannot read the router key " + path + ": " + std::strerror(errno));
  std::string key(kMaxKeyFileBytes, '\0');
  ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (n < static_cast<ssize_t>(kKeyBytes))
    return failed_precondition("the router key " + path + " is shorter than 32 bytes: remove it " +
                               "and restart the agent to make a new one");
  key.resize(static_cast<size_t>(n));
  return key;
}

std::string make_pin_token(std::string_view key, std::string_view app, std::string_view release,
                           int64_t expires_unix_s) {
  std::string expires = std::to_string(expires_unix_s);
  std::string t = "pin1.";
  t.append(expires).push_back('.');
  t.append(hmac_sha256_hex(key, signed_data("pin", app, release, expires))).push_back('.');
  t.append(release);
  return t;
}

std::string verify_pin_token(std::string_view key, std::string_view app, std::string_view token,
                             int64_t now_unix_s) {
  if (token.size() > 512 || token.substr(0, 5) != "pin1.") return {};
  token.remove_prefix(5);
  size_t dot = token.find('.');
  if (dot == std::string_view::npos) return {};
  std::string_view expires = token.substr(0, dot);
  token.remove_prefix(dot + 1);
  dot = token.find('.');
  if (dot == std::string_view::npos) return {};
  std::string_view mac = token.substr(0, dot);
  std::string_view release = token.substr(dot + 1);
  int64_t exp = 0;
  auto [end, ec] = std::from_chars(expires.data(), expires.data() + expires.size(), exp);
  if (ec != std::errc() || end != expires.data() + expires.size() || release.empty()) return {};
  std::string want = hmac_sha256_hex(key, signed_data("pin", app, release, expires));
  if (!constant_time_equal(want, mac)) return {};
  if (now_unix_s >= exp) return {};
  return std::string(release);
}

std::string make_affinity_value(std::string_view key, std::string_view app,
                                std::string_view release) {
  std::string v(release);
  v.push_back('.');
  // 128 bits of the MAC are plenty for a cookie and keep it short.
  v.append(hmac_sha256_hex(key, signed_data("affinity", app, release, {})).substr(0, 32));
  return v;
}

std::string verify_affinity_value(std::string_view key, std::string_view app,
                                  std::string_view value) {
  if (value.size() > 300) return {};
  size_t dot = value.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  std::string_view release = value.substr(0, dot);
  std::string want = hmac_sha256_hex(key, signed_data("affinity", app, release, {})).substr(0, 32);
  if (!constant_time_equal(want, value.substr(dot + 1))) return {};
  return std::string(release);
}

}  // namespace ferry::routing
