// The keys of ACME (RFC 8555): an ECDSA P-256 key as a JSON Web Key (RFC 7517), its
// thumbprint (RFC 7638) and ES256 signatures (RFC 7518 section 3.4) for JWS; the same kind
// of key serves as a certificate's key. base64url without padding throughout, as JOSE wants.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace ferry::acme {

// base64url (RFC 4648 section 5) without '=' padding.
std::string base64url(std::string_view bytes);

// An ECDSA P-256 private key. Movable, not copyable; thread-compatible (const methods may
// be called from several threads at once).
class EcKey {
 public:
  // A fresh key from OpenSSL's random generator.
  static Result<EcKey> generate();
  // A PEM private key (PKCS#8 or SEC1); kInvalidArgument when it is not a P-256 EC key.
  static Result<EcKey> from_pem(std::string_view pem);

  // The private key as PKCS#8 PEM (for a 0600 file: it is the secret).
  std::string private_pem() const;
  // The public key as a JWK with the members RFC 7638 orders for the thumbprint:
  // {"crv":"P-256","kty":"EC","x":"…","y":"…"}.
  std::string jwk() const;
  // base64url(SHA-256(jwk())): the account's thumbprint in a key authorization.
  std::string thumbprint() const;
  // An ES256 signature of `data`: r then s, 32 bytes each (not DER).
  Result<std::string> sign_es256(std::string_view data) const;

  EVP_PKEY* get() const { return key_.get(); }

 private:
  struct Free {
    void operator()(EVP_PKEY* k) const;
  };
  explicit EcKey(EVP_PKEY* k) : key_(k) {}
  std::unique_ptr<EVP_PKEY, Free> key_;
};

}  // namespace ferry::acme
