#include "governance/secret_box.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/crypto.h"

namespace ferry {
namespace {

constexpr const char* kOpenFailed =
    "secret could not be decrypted: wrong key, wrong app/environment/name, or the stored "
    "ciphertext was altered";

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using Ctx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Clears a buffer that held key material or plaintext before it is freed.
void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

const unsigned char* u8(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* u8(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

}  // namespace

SecretBox::SecretBox(SecretBox&& other) noexcept : key_(other.key_) {
  OPENSSL_cleanse(other.key_.data(), other.key_.size());
}

SecretBox& SecretBox::operator=(SecretBox&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    OPENSSL_cleanse(other.key_.data(), other.key_.size());
  }
  return *this;
}

SecretBox::~SecretBox() { OPENSSL_cleanse(key_.data(), key_.size()); }

Result<SecretBox> SecretBox::from_key(std::string_view raw_key) {
  if (raw_key.size() != kKeyBytes)
    return invalid_argument(fmt::format("secrets key must be {} bytes, got {}", kKeyBytes, raw_key.size()));
  SecretBox box;
  std::memcpy(box.key_.data(), raw_key.data(), kKeyBytes);
  return box;
}

Result<SecretBox> SecretBox::from_key_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT)
      return not_found(fmt::format("secrets key file {} does not exist; create one with: "
                                 "(umask 077; openssl rand -hex 32 > {})", path, path));
    return unavailable(fmt::format("cannot open secrets key file {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || !S_ISREG(st.st_mode))
    return invalid_argument(fmt::format("secrets key file {} is not a regular file", path));
  if ((st.st_mode & 077) != 0)
    return failed_precondition(fmt::format(
        "secrets key file {} may be read or written by group or others (mode {:04o}); "
        "run: chmod 600 {}",
        path, st.st_mode & 07777, path));
  if (static_cast<uint64_t>(st.st_size) > kMaxKeyFileBytes)
    return invalid_argument(fmt::format("secrets key file {} is larger than {} bytes; it must hold "
                                        "32 raw bytes or 64 hex characters", path, kMaxKeyFileBytes));
  std::string data(kMaxKeyFileBytes, '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(f.fd, data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      wipe(data);
      return unavailable(fmt::format("cannot read secrets key file {}: {}", path, std::strerror(errno)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  std::string key;
  if (data.size() == kKeyBytes) {
    key = data;
  } else {
    // Hex, with trailing whitespace (an editor's newline) allowed.
    std::string_view text(data);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' || text.back() == '\t'))
      text.remove_suffix(1);
    if (text.size() == 2 * kKeyBytes) key = from_hex(text);
  }
  const size_t size = data.size();
  wipe(data);
  if (key.size() != kKeyBytes) {
    wipe(key);
    return invalid_argument(fmt::format(
        "secrets key file {} must hold 32 raw bytes or 64 hex characters (it holds {} bytes)", path, size));
  }
  auto box = from_key(key);
  wipe(key);
  return box;
}

Status SecretBox::create_key_file(const std::string& path) {
  Fd f{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)};
  if (f.fd < 0) {
    if (errno == EEXIST)
      return already_exists(fmt::format("{} already exists; refusing to overwrite a secrets key", path));
    return unavailable(fmt::format("cannot create secrets key file {}: {}", path, std::strerror(errno)));
  }
  // The umask can only remove bits from 0600, but be explicit for any ACL defaults.
  std::string text = to_hex(random_bytes(kKeyBytes)) + "\n";
  Status result = Status::Ok();
  if (::fchmod(f.fd, 0600) != 0) {
    result = unavailable(fmt::format("cannot set mode 0600 on {}: {}", path, std::strerror(errno)));
  } else {
    size_t put = 0;
    while (put < text.size()) {
      const ssize_t n = ::write(f.fd, text.data() + put, text.size() - put);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        result = unavailable(fmt::format("cannot write secrets key file {}: {}", path, std::strerror(errno)));
        break;
      }
      put += static_cast<size_t>(n);
    }
    if (result.ok() && ::fsync(f.fd) != 0)
      result = unavailable(fmt::format("cannot sync secrets key file {}: {}", path, std::strerror(errno)));
  }
  wipe(text);
  if (!result.ok()) ::unlink(path.c_str());
  return result;
}

Result<std::string> SecretBox::seal(std::string_view plaintext, std::string_view aad) const {
  if (plaintext.size() > kMaxPlaintext)
    return resource_exhausted(fmt::format("secret is {} bytes; the limit is {}", plaintext.size(), kMaxPlaintext));
  const std::string nonce = random_bytes(kNonceBytes);
  std::string out(kOverhead + plaintext.size(), '\0');
  out[0] = static_cast<char>(kVersion);
  std::memcpy(out.data() + 1, nonce.data(), kNonceBytes);
  const std::string header = out.substr(0, 1);
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  unsigned char* body = u8(out) + 1 + kNonceBytes;
  const bool ok =
      ctx && EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), u8(nonce)) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(header), 1) == 1 &&
      (aad.empty() || EVP_EncryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())) == 1) &&
      EVP_EncryptUpdate(ctx.get(), body, &len, u8(plaintext), static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plaintext.size()) == 1;
  if (!ok) {
    wipe(out);
    return internal_error("AES-256-GCM encryption failed in OpenSSL");
  }
  return out;
}

Result<std::string> SecretBox::open(std::string_view blob, std::string_view aad) const {
  if (blob.size() < kOverhead) return invalid_argument(kOpenFailed);
  if (static_cast<uint8_t>(blob[0]) != kVersion)
    return invalid_argument(fmt::format("secret blob has version {}; this ferry reads version {}",
                                        static_cast<uint8_t>(blob[0]), kVersion));
  const std::string_view nonce = blob.substr(1, kNonceBytes);
  const std::string_view body = blob.substr(1 + kNonceBytes, blob.size() - kOverhead);
  std::string tag(blob.substr(blob.size() - kTagBytes));
  std::string out(body.size(), '\0');
  Ctx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  const bool ok =
      ctx && EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceBytes, nullptr) == 1 &&
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), u8(nonce)) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(blob.substr(0, 1)), 1) == 1 &&
      (aad.empty() || EVP_DecryptUpdate(ctx.get(), nullptr, &len, u8(aad), static_cast<int>(aad.size())) == 1) &&
      (body.empty() || EVP_DecryptUpdate(ctx.get(), u8(out), &len, u8(body), static_cast<int>(body.size())) == 1) &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), u8(out) + len, &len) == 1;
  if (!ok) {
    wipe(out);  // unauthenticated bytes never leave
    return invalid_argument(kOpenFailed);
  }
  return out;
}

std::string secret_aad(std::string_view app, std::string_view env, std::string_view name) {
  std::string out = "ferry-secret-v1";
  for (std::string_view part : {app, env, name}) {
    const uint32_t n = static_cast<uint32_t>(part.size());
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>(n >> s & 0xff));
    out.append(part);
  }
  return out;
}

Status seal_secret(const SecretBox& box, SecretRecord& r, std::string_view value) {
  auto blob = box.seal(value, secret_aad(r.app, r.env, r.name));
  if (!blob.ok()) return blob.status().with_context(fmt::format("secret {}/{}/{}", r.app, r.env, r.name));
  r.ciphertext = to_hex(*blob);
  return Status::Ok();
}

Result<std::string> open_secret(const SecretBox& box, const SecretRecord& r) {
  const std::string blob = from_hex(r.ciphertext);
  if (blob.empty())
    return invalid_argument(fmt::format("secret {}/{}/{}: stored ciphertext is not hex", r.app, r.env, r.name));
  auto plain = box.open(blob, secret_aad(r.app, r.env, r.name));
  if (!plain.ok()) return plain.status().with_context(fmt::format("secret {}/{}/{}", r.app, r.env, r.name));
  return plain;
}

}  // namespace ferry
