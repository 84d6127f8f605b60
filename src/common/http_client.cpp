#include "common/http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <charconv>

#include "common/http_read_limited.h"
#include "common/tls.h"

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<Endpoint> parse_endpoint(std::string_view text) {
  std::string_view t = text;
  if (t.starts_with("http://")) t.remove_prefix(7);
  if (t.ends_with("/")) t.remove_suffix(1);
  Endpoint ep;
  std::string_view port_str;
  if (t.starts_with("[")) {
    size_t close = t.find(']');
    if (close == std::string_view::npos || close + 1 >= t.size() || t[close + 1] != ':')
      return invalid_argument("address '" + std::string(text) + "' should look like [::1]:7070");
    ep.host = std::string(t.substr(1, close - 1));
    port_str = t.substr(close + 2);
  } else {
    size_t colon = t.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
      return invalid_argument("address '" + std::string(text) +
                              "' should be HOST:PORT, e.g. 127.0.0.1:7070");
    ep.host = std::string(t.substr(0, colon));
    port_str = t.substr(colon + 1);
  }
  unsigned port = 0;
  auto [p, ec] = std::from_chars(port_str.data(), port_str.data() + port_str.size(), port);
  if (ec != std::errc() || p != port_str.data() + port_str.size() || port == 0 || port > 65535)
    return invalid_argument("address '" + std::string(text) + "' has port '" +
                            std::string(port_str) + "'; a port is 1-65535");
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

HttpClient::HttpClient(Endpoint ep, HttpClientOptions opts) : ep_(std::move(ep)), opts_(opts) {}

void HttpClient::set_header(std::string name, std::string value) {
  headers_.emplace_back(std::move(name), std::move(value));
}

Result<HttpResponse> HttpClient::request(std::string_view method, std::string_view target,
                                         std::string_view body, std::string_view content_type) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::error_code ec;
  const auto deadline = std::chrono::milliseconds(opts_.timeout_ms);
  const std::string where = ep_.to_string();

  auto results = resolver.resolve(ep_.host, std::to_string(ep_.port), ec);
  if (ec) return unavailable("cannot resolve " + where + ": " + ec.message());
  stream.expires_after(deadline);
  stream.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  if (ec) {
    if (ec == beast::error::timeout)
      return deadline_exceeded("connecting to " + where + " timed out");
    return unavailable("cannot connect to " + where + ": " + ec.message());
  }
  if (!opts_.tls) return exchange(stream, ioc, method, target, body, content_type);
  beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), opts_.tls->native());
  ioc.restart();
  tls.async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
  ioc.run();
  if (ec) {
    if (ec == beast::error::timeout)
      return deadline_exceeded("TLS handshake with " + where + " timed out");
    std::string why = ec.message();
    const long v = SSL_get_verify_result(tls.native_handle());
    if (v != X509_V_OK) why = X509_verify_cert_error_string(v);
    return unavailable("TLS handshake with " + where + " failed: " + why);
  }
  return exchange(tls, ioc, method, target, body, content_type);
}

template <class Stream>
Result<HttpResponse> HttpClient::exchange(Stream& stream, boost::asio::io_context& ioc,
                                          std::string_view method, std::string_view target,
                                          std::string_view body, std::string_view content_type) {
  beast::error_code ec;
  const std::string where = ep_.to_string();
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  req.set(http::field::host, ep_.host);
  req.set(http::field::user_agent, "ferry");
  for (auto& [k, v] : headers_) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, content_type);
    req.body() = std::string(body);
  }
  req.prepare_payload();
  http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
  ioc.restart();
  ioc.run();
  if (ec) return unavailable("sending to " + where + " failed: " + ec.message());

  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  const LimitedRead read = read_limited_response(
      stream, buf, parser, opts_.max_response_bytes,
      [&] {
        ioc.restart();
        ioc.run();
      },
      &ec);
  if (read == LimitedRead::kTooLarge) return answer_over_limit(where, opts_.max_response_bytes);
  if (ec == beast::error::timeout)
    return deadline_exceeded(std::string(method) + " " + std::string(target) + " to " + where +
                             " timed out after " + std::to_string(opts_.timeout_ms) + " ms");
  if (ec) return unavailable("reading from " + where + " failed: " + ec.message());
  beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ec);

  auto& msg = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.content_type = std::string(msg[http::field::content_type]);
  for (auto& f : msg)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(msg.body());
  return out;
}

Result<Json> HttpClient::call(std::string_view method, std::string_view target, const Json* body) {
  auto r = request(method, target, body ? body->dump() : std::string());
  if (!r.ok()) return r.status();
  Json j;
  if (!r->body.empty()) {
    auto parsed = parse_json(r->body, "response from " + ep_.to_string());
    if (!parsed.ok()) {
      if (r->status >= 300)
        return Status(Code::kInternal, "HTTP " + std::to_string(r->status) + " from " +
                                           ep_.to_string() + ": " + r->body.substr(0, 200));
      return parsed.status();
    }
    j = std::move(*parsed);
  }
  if (r->status >= 300) {
    Status s = status_from_json(j);
    if (s.ok() || s.code() == Code::kInternal)
      return Status(s.ok() ? Code::kInternal : s.code(),
                    "HTTP " + std::to_string(r->status) + ": " + s.message());
    return s;
  }
  return j;
}

}  // namespace ferry
