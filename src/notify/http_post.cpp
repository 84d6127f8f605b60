#include "notify/http_post.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

namespace ferry {

namespace {

constexpr size_t kMaxUrlBytes = 2048;

// curl_global_init is not thread-safe and must run before the first handle.
void init_curl_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  std::string* body;
  size_t limit;
  bool truncated = false;
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<BodySink*>(user);
  const size_t len = size * n;
  const size_t room = s->limit - std::min(s->limit, s->body->size());
  if (len > room) {
    s->body->append(data, room);
    s->truncated = true;
    return 0;  // stops the transfer: the status line is what we need
  }
  s->body->append(data, len);
  return len;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* retry_after = static_cast<int*>(user);
  std::string_view line(data, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    std::string lower(line.substr(0, kName.size()));
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (lower == kName) {
      int v = 0;
      bool digits = false;
      for (char c : line.substr(kName.size())) {
        if (c >= '0' && c <= '9') {
          digits = true;
          v = std::min(v * 10 + (c - '0'), 86'400);
        } else if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
          digits = false;  // an HTTP date: not used
          break;
        }
      }
      if (digits) *retry_after = v;
    }
  }
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
// Owns a curl header list (curl_slist_append returns the head, or null on failure
// leaving the list as it was).
struct HeaderList {
  curl_slist* list = nullptr;
  HeaderList() = default;
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;
  ~HeaderList() { curl_slist_free_all(list); }
  bool add(const std::string& line) {
    curl_slist* head = curl_slist_append(list, line.c_str());
    if (!head) return false;
    list = head;
    return true;
  }
};

// The authority part of an absolute URL ("host:port"), or empty.
std::string_view authority(std::string_view url, std::string_view* scheme) {
  const size_t p = url.find("://");
  if (p == std::string_view::npos) return {};
  *scheme = url.substr(0, p);
  std::string_view rest = url.substr(p + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  const size_t at = rest.rfind('@');
  if (at != std::string_view::npos) rest = rest.substr(at + 1);
  return rest;
}

}  // namespace

Status check_url(std::string_view url) {
  if (url.size() > kMaxUrlBytes)
    return invalid_argument("the URL is longer than " + std::to_string(kMaxUrlBytes) + " bytes");
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
      return invalid_argument("the URL contains a space or control character");
  std::string_view scheme;
  const std::string_view host = authority(url, &scheme);
  if (scheme != "http" && scheme != "https")
    return invalid_argument("the URL must start with https:// or http://");
  if (host.empty() || host.front() == ':') return invalid_argument("the URL has no host");
  return Status::Ok();
}

std::string redact_url(std::string_view url) {
  std::string_view scheme;
  const std::string_view host = authority(url, &scheme);
  if (host.empty()) return "****";
  return std::string(scheme) + "://" + std::string(host) + "/****";
}

CurlPoster::CurlPoster(PostOptions opts) : opts_(opts) {
  init_curl_once();
}

Result<OutboundResponse> CurlPoster::post(const OutboundRequest& req) {
  FERRY_RETURN_IF_ERROR(check_url(req.url));
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return internal_error("curl_easy_init failed");
  HeaderList headers;
  for (const auto& [k, v] : req.headers)
    if (!headers.add(k + ": " + v)) return internal_error("curl_slist_append failed");
  // No "Expect: 100-continue" round trip for bodies over 1 KiB.
  if (!headers.add("Expect:")) return internal_error("curl_slist_append failed");

  OutboundResponse resp;
  BodySink sink{&resp.body, opts_.max_response_bytes};
  char errbuf[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // timeouts without SIGALRM (threads)
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout_ms));
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, req.body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-notify/1");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &resp.retry_after_s);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);

  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (rc == CURLE_WRITE_ERROR && sink.truncated && status > 0) {
    resp.status = static_cast<int>(status);
    return resp;
  }
  if (rc != CURLE_OK) {
    // curl's messages name host and port at most, never the path; redact_url is what
    // we add so the reader knows which sink failed without learning its secret.
    std::string msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    msg = "POST " + redact_url(req.url) + ": " + msg;
    if (rc == CURLE_OPERATION_TIMEDOUT) return deadline_exceeded(msg);
    return unavailable(msg);
  }
  resp.status = static_cast<int>(status);
  return resp;
}

}  // namespace ferry
