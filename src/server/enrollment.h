// Enrollment of remote agents for mutual TLS (issue 16, item 4). The server keeps a small
// CA in DATA_DIR/tls (the CA key never leaves it, files 0600, the folder 0700):
//   ca.crt ca.key          the CA (made on first open, 10 years)
//   server.crt server.key  the server's own client certificate (CN "ferry-server"); after a
//   server.pem             rotation (revoke "ferry-server") also both in one file
//   enroll.json            per agent name: the SHA-256 of its one-time join token, its
//                          expiry, and the serials of the certificates issued to it
//   revoked                revoked serials, one per line (TlsIdentity::revoked_serials)
// An admin asks for a join token for an agent name (issue_token); the agent sends its CSR
// with that token once (redeem) and gets a certificate whose common name is the agent's
// name — which the server then pins when it calls that agent. A token is spent by its
// first use, right or wrong CSR, and expires after its TTL; only its hash is stored.
//
// Thread safety: every method may be called from any thread (one mutex; file I/O under it
// is small and local).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/tls.h"

namespace ferry {

class Enrollment {
 public:
  // Opens (creating when missing) the CA in `dir`. kPermissionDenied when ca.key is
  // readable by group or others.
  static Result<std::unique_ptr<Enrollment>> open(std::string dir, const Clock& clock);

  // A new one-time join token for agent `name` (1-63 letters, digits, '-', '_', '.'),
  // valid for `ttl_ms` (1 minute to 7 days); a previous unused token for it stops working.
  Result<std::string> issue_token(const std::string& name, int64_t ttl_ms);
  // Signs `csr_pem` for `name` when `token` is its unexpired, unused token. Errors:
  // kUnauthenticated (no such token, used, expired — one message for all, so a guesser
  // learns nothing), kInvalidArgument (a CSR that does not parse or verify).
  Result<std::string> redeem(const std::string& name, const std::string& token,
                             const std::string& csr_pem);
  // Revokes every certificate issued to `name`; returns their serials. kNotFound when
  // none was issued. `name` kServerCertName revokes the server's own certificate and makes
  // a new one at once (server.pem, server.crt, server.key): agents refuse the old one once
  // the list reaches them (server/revocation_push.h).
  Result<std::vector<std::string>> revoke(const std::string& name);

  // Whether a certificate was ever issued to `name` (the server then calls it with TLS).
  bool enrolled(const std::string& name);
  const std::string& ca_pem() const { return ca_.cert_pem; }
  // The identity the server presents to agents: its client certificate, the CA, and the
  // revoked list's path (read live by the context: a revocation counts from the next
  // handshake of a running server).
  TlsIdentity server_identity();
  const std::string& dir() const { return dir_; }

 private:
  Enrollment(std::string dir, const Clock& clock) : dir_(std::move(dir)), clock_(clock) {}
  Status save(const std::string& file, const std::string& text);
  Status new_server_certificate();  // under mu_
  void reload_server_identity();    // under mu_

  std::string dir_;
  const Clock& clock_;
  std::mutex mu_;
  CertAuthority ca_;
  std::string server_cert_, server_key_;
};

}  // namespace ferry
