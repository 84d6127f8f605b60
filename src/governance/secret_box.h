// SecretBox: authenticated encryption of secrets at rest with AES-256-GCM (OpenSSL EVP).
//
// Blob layout (binary; SecretRecord.ciphertext holds it as hex):
//   version (1 byte, 0x01) | nonce (12 random bytes) | ciphertext | tag (16 bytes)
// The version byte and the caller's associated data are authenticated with the
// ciphertext; for stored secrets the associated data names app, environment and secret
// (secret_aad), so a ciphertext copied to another secret's row does not open.
// Errors never contain plaintext or key material.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/records.h"

namespace ferry {

class SecretBox {
 public:
  static constexpr size_t kKeyBytes = 32;
  static constexpr size_t kNonceBytes = 12;
  static constexpr size_t kTagBytes = 16;
  static constexpr uint8_t kVersion = 1;
  static constexpr size_t kOverhead = 1 + kNonceBytes + kTagBytes;
  static constexpr size_t kMaxPlaintext = 1 << 20;  // 1 MiB
  static constexpr size_t kMaxKeyFileBytes = 4096;

  // Reads a key file: exactly 32 raw bytes, or 64 hex characters (a trailing newline
  // is fine). Refuses a file that group or others may read or write (mode & 077) with
  // failed_precondition naming the file, its mode and the chmod that fixes it.
  static Result<SecretBox> from_key_file(const std::string& path);
  // A box over a 32-byte raw key.
  static Result<SecretBox> from_key(std::string_view raw_key);
  // Writes a new random key (64 hex characters and a newline) to `path` with mode 0600.
  // Never overwrites: already_exists when the path exists (even as a symlink).
  static Status create_key_file(const std::string& path);

  SecretBox(SecretBox&& other) noexcept;
  SecretBox& operator=(SecretBox&& other) noexcept;
  SecretBox(const SecretBox&) = delete;
  SecretBox& operator=(const SecretBox&) = delete;
  ~SecretBox();  // wipes the key

  // Encrypts with a fresh random nonce. resource_exhausted above kMaxPlaintext.
  Result<std::string> seal(std::string_view plaintext, std::string_view associated_data) const;
  // Decrypts a blob from seal(). One error for every failure to authenticate (other
  // key, other associated data, altered or truncated blob); invalid_argument for an
  // unknown version.
  Result<std::string> open(std::string_view blob, std::string_view associated_data) const;

 private:
  SecretBox() = default;
  std::array<unsigned char, kKeyBytes> key_{};
};

// Associated data binding a stored secret to its app, environment and name
// (length-prefixed, so ("a","bc") and ("ab","c") differ).
std::string secret_aad(std::string_view app, std::string_view env, std::string_view name);

// Seals `value` into r.ciphertext (hex), bound to r.app, r.env and r.name.
Status seal_secret(const SecretBox& box, SecretRecord& r, std::string_view value);
// Opens r.ciphertext; fails if the row's app/env/name are not those it was sealed for.
Result<std::string> open_secret(const SecretBox& box, const SecretRecord& r);

}  // namespace ferry
