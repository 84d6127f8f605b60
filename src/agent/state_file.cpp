#include "agent/state_file.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/crypto.h"

namespace ferry {

namespace {

constexpr std::string_view kAad = "ferry agent state v2";
constexpr size_t kNonce = 12, kTag = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

}  // namespace

std::string state_key_from_token(std::string_view token) {
  return from_hex(hmac_sha256_hex(token, "ferry agent state file key v1"));
}

StateFile::StateFile(std::string path, std::string key)
    : path_(std::move(path)), key_(std::move(key)) {}

Result<std::string> StateFile::seal(const Json& env) const {
  if (key_.size() != 32) return internal_error("the state file key must be 32 bytes");
  const std::string plain = dump_json(env);
  const std::string nonce = random_bytes(kNonce);
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string out(plain.size() + kTag, '\0');
  int len = 0, fin = 0;
  const auto* k = reinterpret_cast<const unsigned char*>(key_.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(nonce.data());
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k, iv) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(kAad.data()),
                        static_cast<int>(kAad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), o, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), o + len, &fin) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, o + len + fin) != 1)
    return internal_error("sealing the state file's environment failed");
  out.resize(static_cast<size_t>(len + fin) + kTag);
  return to_hex(nonce + out);
}

Result<Json> StateFile::open(const std::string& sealed) const {
  const std::string raw = from_hex(sealed);
  if (key_.size() != 32 || raw.size() < kNonce + kTag)
    return invalid_argument("a sealed environment is malformed");
  const size_t n = raw.size() - kNonce - kTag;
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  std::string plain(n, '\0');
  int len = 0, fin = 0;
  std::string tag = raw.substr(kNonce + n);
  const auto* k = reinterpret_cast<const unsigned char*>(key_.data());
  const auto* iv = reinterpret_cast<const unsigned char*>(raw.data());
  auto* p = reinterpret_cast<unsigned char*>(plain.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, k, iv) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(kAad.data()),
                        static_cast<int>(kAad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), p, &len,
                        reinterpret_cast<const unsigned char*>(raw.data() + kNonce),
                        static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), p + len, &fin) != 1)
    return invalid_argument(
        "a sealed environment does not open with this agent's key (was the agent token "
        "changed?)");
  auto j = parse_json(plain);
  if (!j.ok()) return invalid_argument("a sealed environment is malformed");
  return *j;
}

// Seals (or opens) apps[].desired.instances[].run.env and apps[].instances[].spec.run.env.
Status StateFile::transform(Json& apps, bool sealing) const {
  auto one = [&](Json& run) -> Status {
    if (!run.is_object()) return Status::Ok();
    if (sealing) {
      if (!run.contains("env")) return Status::Ok();
      auto s = seal(run["env"]);
      if (!s.ok()) return s.status();
      run.erase("env");
      run["env_sealed"] = *s;
    } else if (run.contains("env_sealed")) {
      if (!run["env_sealed"].is_string()) return invalid_argument("env_sealed is not a string");
      auto e = open(run["env_sealed"].get<std::string>());
      if (!e.ok()) return e.status();
      run.erase("env_sealed");
      run["env"] = std::move(*e);
    }
    return Status::Ok();
  };
  if (!apps.is_array()) return invalid_argument("\"apps\" is not a list");
  for (auto& a : apps) {
    if (!a.is_object()) return invalid_argument("an app is not an object");
    if (a.contains("desired") && a["desired"].contains("instances"))
      for (auto& i : a["desired"]["instances"])
        if (i.is_object() && i.contains("run")) FERRY_RETURN_IF_ERROR(one(i["run"]));
    if (a.contains("instances"))
      for (auto& i : a["instances"])
        if (i.is_object() && i.contains("spec") && i["spec"].contains("run"))
          FERRY_RETURN_IF_ERROR(one(i["spec"]["run"]));
  }
  return Status::Ok();
}

Status StateFile::save(const Json& apps_in) {
  Json apps = apps_in;
  FERRY_RETURN_IF_ERROR(transform(apps, true));
  const std::string text = dump_json(Json{{"version", 2}, {"apps", std::move(apps)}});
  std::lock_guard lk(save_mu_);
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return internal_error("cannot write agent state file " + tmp);
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  const bool ok = off == text.size() && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path_.c_str()) != 0)
    return internal_error("cannot write agent state file " + path_);
  return Status::Ok();
}

Result<std::optional<Json>> StateFile::load() const {
  std::ifstream f(path_);
  if (!f) return std::optional<Json>();  // first start
  std::stringstream ss;
  ss << f.rdbuf();
  auto doc = parse_json(ss.str());
  if (!doc.ok()) return doc.status().with_context("agent state file " + path_);
  if (!doc->is_object() || !doc->contains("apps"))
    return invalid_argument("agent state file " + path_ + " has no \"apps\"");
  Json apps = (*doc)["apps"];
  if (Status s = transform(apps, false); !s.ok())
    return invalid_argument("agent state file " + path_ + ": " + s.message() +
                            "; move the file away to start the agent without its state");
  return std::optional<Json>(std::move(apps));
}

}  // namespace ferry
