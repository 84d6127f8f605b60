// Outbound HTTPS POSTs for notifications (Slack, PagerDuty, webhooks on the internet),
// through libcurl. An interface so the dispatcher's retry logic does not care how.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ferry {

struct OutboundRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as POST
};

struct OutboundResponse {
  int status = 0;
  std::string body;       // at most PostOptions::max_response_bytes of it
  int retry_after_s = -1; // a Retry-After header in seconds, -1 when absent
};

struct PostOptions {
  int connect_timeout_ms = 5'000;
  int timeout_ms = 10'000;                 // the whole exchange
  size_t max_response_bytes = 64 * 1024;   // the rest of a longer answer is not read
};

class HttpPoster {
 public:
  virtual ~HttpPoster() = default;
  // Any HTTP status is a response; failing to get one is kUnavailable (or
  // kDeadlineExceeded). Error messages never contain the URL's path or query.
  virtual Result<OutboundResponse> post(const OutboundRequest& req) = 0;
};

// libcurl, http:// and https:// only, redirects not followed, system CA store.
// Thread-safe: each call uses its own handle.
class CurlPoster final : public HttpPoster {
 public:
  explicit CurlPoster(PostOptions opts = {});
  Result<OutboundResponse> post(const OutboundRequest& req) override;

 private:
  PostOptions opts_;
};

// Ok for an http:// or https:// URL with a host, no spaces or control characters, at
// most 2048 bytes. The error never repeats the URL (it may be a secret).
Status check_url(std::string_view url);
// "https://hooks.slack.com/****": scheme and host[:port] kept, path and query masked,
// user:password@ dropped. What logs, errors and delivery records show of a URL.
std::string redact_url(std::string_view url);

}  // namespace ferry
