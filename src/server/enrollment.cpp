#include "server/enrollment.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/crypto.h"
#include "common/json.h"

namespace ferry {

namespace fs = std::filesystem;

namespace {

constexpr int kCaDays = 3650;
constexpr int kLeafDays = 397;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool valid_agent_name(const std::string& name) {
  static const std::regex re("[A-Za-z0-9][A-Za-z0-9._-]{0,62}");
  return std::regex_match(name, re);
}

}  // namespace

Status Enrollment::save(const std::string& file, const std::string& text) {
  // Written whole to a private temporary file, then renamed: a crash leaves the old file.
  const fs::path final_path = fs::path(dir_) / file;
  const fs::path tmp = final_path.string() + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return unavailable("cannot write " + tmp.string());
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f.flush()) return unavailable("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, final_path, ec);
  if (ec) return unavailable("cannot replace " + final_path.string() + ": " + ec.message());
  return Status::Ok();
}

Result<std::unique_ptr<Enrollment>> Enrollment::open(std::string dir, const Clock& clock) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return unavailable("cannot create " + dir + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);
  std::unique_ptr<Enrollment> e(new Enrollment(dir, clock));
  const fs::path d(dir);
  if (!fs::exists(d / "ca.key")) {
    auto ca = make_ca("ferry agents CA", kCaDays);
    if (!ca.ok()) return ca.status();
    FERRY_RETURN_IF_ERROR(e->save("ca.key", ca->key_pem));
    FERRY_RETURN_IF_ERROR(e->save("ca.crt", ca->cert_pem));
  }
  struct stat st {};
  if (stat((d / "ca.key").c_str(), &st) == 0 && (st.st_mode & 077) != 0)
    return permission_denied((d / "ca.key").string() +
                             " is readable by group or others; chmod 600 it");
  e->ca_ = CertAuthority{slurp(d / "ca.crt"), slurp(d / "ca.key")};
  if (!fs::exists(d / "server.key")) {
    auto key = make_private_key();
    if (!key.ok()) return key.status();
    auto csr = make_csr(*key, "ferry-server");
    if (!csr.ok()) return csr.status();
    auto cert = sign_csr(e->ca_, *csr, "ferry-server", kLeafDays);
    if (!cert.ok()) return cert.status();
    FERRY_RETURN_IF_ERROR(e->save("server.key", *key));
    FERRY_RETURN_IF_ERROR(e->save("server.crt", *cert));
  }
  e->server_cert_ = slurp(d / "server.crt");
  e->server_key_ = slurp(d / "server.key");
  return e;
}

Result<std::string> Enrollment::issue_token(const std::string& name, int64_t ttl_ms) {
  if (!valid_agent_name(name))
    return invalid_argument("agent name '" + name.substr(0, 64) +
                            "' is not 1-63 letters, digits, '.', '_' or '-'");
  // Agents answer only the server's name: a certificate of that name would call them.
  if (name == kServerCertName)
    return invalid_argument("agent name '" + name +
                            "' is the server's own certificate name; choose another name");
  if (ttl_ms < 60'000 || ttl_ms > 7 * 86'400'000LL)
    return invalid_argument("ttl " + std::to_string(ttl_ms) + " ms is outside 1m-7d");
  std::lock_guard lk(mu_);
  auto state = parse_json(slurp(fs::path(dir_) / "enroll.json"));
  Json j = state.ok() && state->is_object() ? *state : Json::object();
  const std::string token = random_id("fj_", 24);
  Json& a = j[name];
  a["token_sha256"] = sha256_hex(token);
  a["expires_ms"] = to_unix_ms(clock_.now()) + ttl_ms;
  a["used"] = false;
  if (!a.contains("serials")) a["serials"] = Json::array();
  FERRY_RETURN_IF_ERROR(save("enroll.json", j.dump(2)));
  return token;
}

Result<std::string> Enrollment::redeem(const std::string& name, const std::string& token,
                                       const std::string& csr_pem) {
  const Status refused =
      unauthenticated("join token for agent '" + name.substr(0, 64) +
                      "' is not valid (unknown, already used or expired); ask an admin for a "
                      "new one: ferry agents enroll NAME");
  if (!valid_agent_name(name) || token.size() > 256 || csr_pem.size() > 16 * 1024) return refused;
  std::lock_guard lk(mu_);
  auto state = parse_json(slurp(fs::path(dir_) / "enroll.json"));
  if (!state.ok() || !state->is_object() || !state->contains(name)) return refused;
  Json j = *state;
  Json& a = j[name];
  if (a.value("used", true) || a.value("token_sha256", "").empty() ||
      !constant_time_equal(a.value("token_sha256", ""), sha256_hex(token)) ||
      to_unix_ms(clock_.now()) >= a.value("expires_ms", int64_t{0}))
    return refused;
  // Spent now, whatever the CSR: a token works once.
  a["used"] = true;
  a["token_sha256"] = "";
  FERRY_RETURN_IF_ERROR(save("enroll.json", j.dump(2)));
  auto cert = sign_csr(ca_, csr_pem, name, kLeafDays);
  if (!cert.ok()) return cert.status();
  auto serial = cert_serial(*cert);
  if (!serial.ok()) return serial.status();
  a["serials"].push_back(*serial);
  FERRY_RETURN_IF_ERROR(save("enroll.json", j.dump(2)));
  return *cert;
}

Status Enrollment::new_server_certificate() {
  auto key = make_private_key();
  if (!key.ok()) return key.status();
  auto csr = make_csr(*key, kServerCertName);
  if (!csr.ok()) return csr.status();
  auto cert = sign_csr(ca_, *csr, kServerCertName, kLeafDays);
  if (!cert.ok()) return cert.status();
  // Both in one file first, so a reader never pairs a new key with the old certificate
  // (server_identity reads server.pem when it exists).
  FERRY_RETURN_IF_ERROR(save("server.pem", *cert + *key));
  FERRY_RETURN_IF_ERROR(save("server.key", *key));
  FERRY_RETURN_IF_ERROR(save("server.crt", *cert));
  server_cert_ = *cert;
  server_key_ = *key;
  return Status::Ok();
}

Result<std::vector<std::string>> Enrollment::revoke(const std::string& name) {
  std::lock_guard lk(mu_);
  if (name == kServerCertName) {
    // The server's own certificate (its key leaked): revoked, and a new one made at once;
    // the server calls agents with the new one from its next call.
    reload_server_identity();
    auto serial = cert_serial(server_cert_);
    if (!serial.ok()) return serial.status();
    std::string revoked = slurp(fs::path(dir_) / "revoked");
    if (revoked.find(*serial + "\n") == std::string::npos) revoked += *serial + "\n";
    FERRY_RETURN_IF_ERROR(new_server_certificate());
    FERRY_RETURN_IF_ERROR(save("revoked", revoked));
    return std::vector<std::string>{*serial};
  }
  auto state = parse_json(slurp(fs::path(dir_) / "enroll.json"));
  if (!state.ok() || !state->contains(name) || (*state)[name]["serials"].empty())
    return not_found("no certificate was issued to agent '" + name.substr(0, 64) + "'");
  std::vector<std::string> serials = (*state)[name]["serials"].get<std::vector<std::string>>();
  std::string revoked = slurp(fs::path(dir_) / "revoked");
  for (const auto& s : serials)
    if (revoked.find(s + "\n") == std::string::npos) revoked += s + "\n";
  FERRY_RETURN_IF_ERROR(save("revoked", revoked));
  return serials;
}

bool Enrollment::enrolled(const std::string& name) {
  std::lock_guard lk(mu_);
  auto state = parse_json(slurp(fs::path(dir_) / "enroll.json"));
  return state.ok() && state->is_object() && state->contains(name) &&
         (*state)[name].contains("serials") && !(*state)[name]["serials"].empty();
}

void Enrollment::reload_server_identity() {
  // Read again: another Enrollment on the same folder may have made a new one.
  const fs::path d(dir_);
  std::string pem = slurp(d / "server.pem");
  const size_t k = pem.find("-----BEGIN PRIVATE KEY-----");
  if (k != std::string::npos) {
    server_cert_ = pem.substr(0, k);
    server_key_ = pem.substr(k);
    return;
  }
  std::string cert = slurp(d / "server.crt"), key = slurp(d / "server.key");
  if (!cert.empty() && !key.empty()) {
    server_cert_ = std::move(cert);
    server_key_ = std::move(key);
  }
}

TlsIdentity Enrollment::server_identity() {
  std::lock_guard lk(mu_);
  reload_server_identity();
  // The revoked list is read by the context on every handshake (when it changed).
  return TlsIdentity{
      server_cert_, server_key_, ca_.cert_pem, {}, (fs::path(dir_) / "revoked").string()};
}

}  // namespace ferry
