// HttpClient: blocking HTTP/1.1 calls with a deadline, for CLI → server and
// server → agent traffic (plain HTTP on loopback or a private network).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/http_types.h"
#include "common/status.h"

namespace boost::asio {
class io_context;
}

namespace ferry {

struct Endpoint {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const;
};

// "127.0.0.1:7070", "http://[::1]:7070", "localhost:80" → host and port.
Result<Endpoint> parse_endpoint(std::string_view text);

class TlsContext;  // common/tls.h

struct HttpClientOptions {
  int timeout_ms = 10'000;                // connect + write + read
  size_t max_response_bytes = 64u << 20;  // a larger answer is an error, not an OOM
  // Set: HTTPS with this (client-role) context: a server whose certificate does not verify
  // (another CA, revoked, not the pinned name) is a kUnavailable error naming why.
  std::shared_ptr<TlsContext> tls;
};

class HttpClient {
 public:
  explicit HttpClient(Endpoint ep, HttpClientOptions opts = {});

  // Adds a header to every request (e.g. Authorization).
  void set_header(std::string name, std::string value);

  // Transport failures are kUnavailable/kDeadlineExceeded; any HTTP status is a response.
  Result<HttpResponse> request(std::string_view method, std::string_view target,
                               std::string_view body = {},
                               std::string_view content_type = "application/json");

  // For JSON APIs: a 2xx answer's parsed body, else the Status the server sent.
  Result<Json> call(std::string_view method, std::string_view target, const Json* body = nullptr);

  const Endpoint& endpoint() const { return ep_; }

 private:
  template <class Stream>
  Result<HttpResponse> exchange(Stream& stream, boost::asio::io_context& ioc,
                                std::string_view method, std::string_view target,
                                std::string_view body, std::string_view content_type);

  Endpoint ep_;
  HttpClientOptions opts_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

}  // namespace ferry
