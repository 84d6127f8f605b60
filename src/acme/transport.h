// How the ACME client reaches the CA: one HTTPS exchange at a time. The CA's directory may
// be served under a private CA (pebble's, a company's own ACME server): `ca_bundle_file`
// then names the PEM bundle its certificate is checked against (else the system's).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace ferry::acme {

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names; the last of repeated ones
  std::string body;
};

// Thread-compatible: one client uses one transport from one thread.
class Transport {
 public:
  virtual ~Transport() = default;
  // `method` is "GET", "HEAD" or "POST" (a JOSE body, application/jose+json). kUnavailable
  // when the CA cannot be reached, kDeadlineExceeded on a timeout, kResourceExhausted when
  // the answer is larger than the limit; an HTTP error status is a reply, not an error.
  virtual Result<HttpReply> exchange(const std::string& method, const std::string& url,
                                     const std::string& body, const std::string& accept) = 0;
};

struct CurlTransportOptions {
  std::string ca_bundle_file;  // "": the system's trust store
  int connect_timeout_ms = 10'000;
  int timeout_ms = 30'000;
  size_t max_body_bytes = 1 << 20;  // certificate chains and ACME objects are a few KiB
};

// HTTPS only (RFC 8555 section 6.1), no redirects followed.
std::unique_ptr<Transport> make_curl_transport(CurlTransportOptions options);

}  // namespace ferry::acme
