#include "acme/transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <mutex>

namespace ferry::acme {

namespace {

void acme_curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct AcmeBodySink {
  std::string* body;
  size_t limit;
  bool too_large = false;
};

size_t acme_on_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<AcmeBodySink*>(user);
  const size_t len = size * n;
  if (s->body->size() + len > s->limit) {
    s->too_large = true;
    return 0;
  }
  s->body->append(data, len);
  return len;
}

size_t acme_on_header(char* data, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string_view line(data, size * n);
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 || headers->size() >= 64 || line.size() > 8192)
    return size * n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' '))
    value.remove_suffix(1);
  (*headers)[name] = std::string(value);
  return size * n;
}

struct AcmeCurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct AcmeSlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

class CurlTransport final : public Transport {
 public:
  explicit CurlTransport(CurlTransportOptions o) : opts_(std::move(o)) { acme_curl_init_once(); }

  Result<HttpReply> exchange(const std::string& method, const std::string& url,
                             const std::string& body, const std::string& accept) override {
    if (url.rfind("https://", 0) != 0 || url.size() > 2048)
      return invalid_argument("acme: the CA gave a URL that is not https: " + url.substr(0, 200));
    std::unique_ptr<CURL, AcmeCurlFree> curl(curl_easy_init());
    if (!curl) return internal_error("acme: curl_easy_init failed");
    CURL* c = curl.get();
    curl_slist* raw = nullptr;
    auto add = [&](const std::string& h) {
      if (curl_slist* l = curl_slist_append(raw, h.c_str())) raw = l;
    };
    if (method == "POST") add("Content-Type: application/jose+json");
    if (!accept.empty()) add("Accept: " + accept);
    add("Expect:");
    std::unique_ptr<curl_slist, AcmeSlistFree> headers(raw);
    HttpReply reply;
    AcmeBodySink sink{&reply.body, opts_.max_body_bytes};
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTPS);
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opts_.connect_timeout_ms));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout_ms));
    if (!opts_.ca_bundle_file.empty())
      curl_easy_setopt(c, CURLOPT_CAINFO, opts_.ca_bundle_file.c_str());
    if (method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method == "POST") {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-acme/1");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, acme_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, acme_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &reply.headers);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    const CURLcode rc = curl_easy_perform(c);
    if (sink.too_large)
      return resource_exhausted("acme: the answer of " + url.substr(0, 200) + " is larger than " +
                                std::to_string(opts_.max_body_bytes) + " bytes");
    if (rc != CURLE_OK) {
      std::string msg = "acme: " + method + " " + url.substr(0, 200) + ": " +
                        (errbuf[0] ? errbuf : curl_easy_strerror(rc));
      if (rc == CURLE_OPERATION_TIMEDOUT) return deadline_exceeded(msg);
      return unavailable(msg);
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    reply.status = static_cast<int>(status);
    return reply;
  }

 private:
  CurlTransportOptions opts_;
};

}  // namespace

std::unique_ptr<Transport> make_curl_transport(CurlTransportOptions options) {
  return std::make_unique<CurlTransport>(std::move(options));
}

}  // namespace ferry::acme
