// An ACME client (RFC 8555) for HTTP-01: it registers the account (new-account is
// idempotent: the CA answers with the account a key already has), orders a certificate for
// a set of DNS names, answers each authorization's http-01 challenge through a
// ChallengeResponder (the router serves the key authorization on the app's plain port at
// /.well-known/acme-challenge/TOKEN), finalizes the order with a CSR for a fresh P-256 key
// and downloads the chain.
//
// Blocking: call from a thread of its own (the agent's ACME thread), never an io thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "acme/ec_key.h"
#include "acme/transport.h"
#include "common/status.h"

namespace ferry::acme {

// Where the key authorizations of pending challenges are published. Both are called from
// the client's thread; publish before the CA is asked to validate, withdraw after.
struct ChallengeResponder {
  std::function<void(const std::string& token, const std::string& key_authorization)> publish;
  std::function<void(const std::string& token)> withdraw;
};

struct ClientOptions {
  std::string directory_url;
  std::string email;  // "": an account without contact
  int poll_interval_ms = 1000;
  int poll_timeout_ms = 120'000;  // for each authorization and for the order
  // Sleeps `ms` (a stop-aware wait); false: stop now (the client returns kCancelled-like
  // kUnavailable "stopping").
  std::function<bool(int ms)> wait;
};

struct Issued {
  std::string chain_pem;  // leaf first, then intermediates, as the CA sent them
  std::string key_pem;    // the certificate's private key (PKCS#8)
};

// Whether `token` is a plausible challenge token: base64url characters, 16 to 256 of them
// (it becomes part of a URL path the router matches).
bool valid_token(std::string_view token);

class Client {
 public:
  // `transport` and `account_key` outlive the client.
  Client(Transport& transport, const EcKey& account_key, ClientOptions options);

  // The certificate for `hosts` (DNS names, lower case). The error names the step, the
  // host and the CA's problem (type and detail) when the CA refused; no key material.
  Result<Issued> issue(const std::vector<std::string>& hosts, const ChallengeResponder& responder);

 private:
  struct Reply;
  Status load_directory();
  Status fresh_nonce();
  // A JWS POST (payload "" is POST-as-GET); kid once the account is known, else the JWK.
  Result<Reply> post(const std::string& url, const std::string& payload,
                     const std::string& accept = "");
  Status register_account();
  Status authorize(const std::string& authz_url, const ChallengeResponder& responder);
  Result<std::string> poll_order(const std::string& order_url);
  bool sleep_ms(int ms);

  Transport& t_;
  const EcKey& key_;
  ClientOptions opts_;
  std::string new_nonce_url_, new_account_url_, new_order_url_;
  std::string nonce_;
  std::string kid_;
};

// "urn:ietf:params:acme:error:TYPE: detail" from an RFC 7807 problem document (subproblems
// named with their identifiers), control characters removed, at most 500 bytes; the
// status code alone when the body is not one.
std::string describe_problem(int status, const std::string& body);

}  // namespace ferry::acme
