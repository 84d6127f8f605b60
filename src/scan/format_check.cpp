#include "scan/format_check.h"

#include <array>

#include "scan/entropy.h"

namespace ferry::scan {
namespace {

constexpr size_t kMaxDecodedInput = 4096;

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool user_password(std::string_view decoded) {
  for (unsigned char c : decoded) {
    if (c < 0x20 || c == 0x7f) return false;  // credentials are printable text
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  const std::string_view password = decoded.substr(colon + 1);
  return password.size() >= 3 && !is_placeholder(password);
}

}  // namespace

bool decode_base64(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() > kMaxDecodedInput) return false;
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = b64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return true;
}

bool passes_format_check(FormatCheck check, std::string_view secret) {
  switch (check) {
    case FormatCheck::kNone:
      return true;
    case FormatCheck::kBase64UserPassword: {
      std::string decoded;
      return decode_base64(secret, decoded) && user_password(decoded);
    }
  }
  return true;
}

}  // namespace ferry::scan
