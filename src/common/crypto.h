// Hashes, MACs, random tokens and hex: thin wrappers over OpenSSL.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

std::string to_hex(std::string_view bytes);
// Empty result for odd length or a non-hex character.
std::string from_hex(std::string_view hex);
std::string sha256_hex(std::string_view data);
std::string sha256_raw(std::string_view data);
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Cryptographically secure random bytes (RAND_bytes).
std::string random_bytes(size_t n);
// A URL-safe random identifier: prefix + 2*n hex chars.
std::string random_id(std::string_view prefix, size_t n = 8);
// Compares in time independent of where the first difference is.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace ferry
