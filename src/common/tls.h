// Mutual TLS for ferry's own connections (server ↔ agents), over OpenSSL through
// Boost.Asio's ssl::context: a small certificate authority (keys, CSRs, signing) and the
// contexts both ends use. Keys are EC P-256, TLS 1.2 is the floor.
//
// A TlsContext made for kServer asks every client for a certificate and refuses a
// handshake without one; both roles accept a peer only when its certificate chains to
// `ca_pem`, its serial is not revoked and (when `peer_name` is set) its common name is
// exactly `peer_name` — how the server pins an agent's certificate to the agent's name in
// ferry.yaml. HttpServerOptions::tls and HttpClientOptions::tls take one.
//
// Revocation is read live: with `revoked_path` set, every handshake stats that file (one
// stat call) and re-reads it when it changed (inode, size or mtime), so a certificate
// revoked while a server or agent runs is refused from its next handshake on, without a
// restart. A list that exists but cannot be read refuses every peer (fail closed); a
// missing file revokes nothing. A kServer context keeps no sessions and issues no tickets:
// a peer cannot resume a session made before its certificate was revoked and so skip the
// check.
//
// Thread safety: a TlsContext is immutable once made and may be shared by any number of
// connections and threads. The PKI functions are pure (no files): callers store the PEMs.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <set>
#include <string>

#include "common/status.h"

namespace ferry {

// The common name of the server's own certificate: agents answer only it.
inline constexpr const char* kServerCertName = "ferry-server";

struct TlsIdentity {
  std::string cert_pem;                   // this end's certificate (leaf)
  std::string key_pem;                    // its private key
  std::string ca_pem;                     // the CA the peer's certificate must chain to
  std::set<std::string> revoked_serials;  // lower-case hex, as cert_serial() gives them
  // A file of more revoked serials (one per line, '#' comments), read live (see above).
  std::string revoked_path;
};

class RevokedFile;  // tls.cpp: a live revocation file

class TlsContext {
 public:
  enum class Role { kServer, kClient };
  // Errors (kInvalidArgument) name which PEM did not load or does not match its key.
  static Result<std::shared_ptr<TlsContext>> create(Role role, const TlsIdentity& id,
                                                    std::string peer_name = "");
  boost::asio::ssl::context& native() { return ctx_; }
  Role role() const { return role_; }
  // Whether `serial` (lower-case hex) is revoked now: in the identity's set or the live
  // file (an unreadable file revokes everything). A server checks it before every request
  // of a kept-alive connection, so a connection opened before a revocation is refused from
  // its next request on, not only the next handshake.
  bool revoked(const std::string& serial) const;
  // The lower-case hex serial of the certificate `ssl` got from its peer ("" for none).
  static std::string peer_serial(SSL* ssl);
  const std::string& peer_name() const { return peer_name_; }

 private:
  TlsContext(Role role, std::string peer_name);
  boost::asio::ssl::context ctx_;
  Role role_;
  std::string peer_name_;
  std::set<std::string> revoked_;
  std::shared_ptr<RevokedFile> live_;
};

// Reads an identity from PEM files; `revoked_path` (one revoked serial per line) becomes
// TlsIdentity::revoked_path, read live by the context. The key file must not be readable by
// group or others.
Result<TlsIdentity> load_tls_identity(const std::string& cert_path, const std::string& key_path,
                                      const std::string& ca_path,
                                      const std::string& revoked_path = "");

// --- a small CA ----------------------------------------------------------------------
struct CertAuthority {
  std::string cert_pem, key_pem;
};
// A new EC P-256 private key (PEM, unencrypted).
Result<std::string> make_private_key();
// A certificate signing request for `common_name`, signed with `key_pem`.
Result<std::string> make_csr(const std::string& key_pem, const std::string& common_name);
// A self-signed CA certificate valid for `days` with a new key.
Result<CertAuthority> make_ca(const std::string& common_name, int days);
// Signs `csr_pem` (its signature must verify) as a leaf for client and server use, valid
// for `days`. The subject is `common_name`, whatever the CSR asked for: the CA decides the
// name. Returns the certificate PEM.
Result<std::string> sign_csr(const CertAuthority& ca, const std::string& csr_pem,
                             const std::string& common_name, int days);
// The serial (lower-case hex) and the subject's common name of a certificate.
Result<std::string> cert_serial(const std::string& cert_pem);
Result<std::string> cert_common_name(const std::string& cert_pem);

}  // namespace ferry
