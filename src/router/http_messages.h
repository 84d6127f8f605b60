// The router's view of HTTP/1.1 messages. Beast's basic_parser validates the syntax and
// tracks the framing (Content-Length, chunked, close-delimited); while it parses a head the
// parsers below write the head that goes to the other side (hop-by-hop fields dropped,
// forwarding fields added) into a caller-owned string, so a proxied message costs no
// per-field allocation. Bodies are relayed as the raw bytes the parser consumed.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::routing {

namespace http = boost::beast::http;
using error_code = boost::system::error_code;

// Makes request ids: a random prefix per generator and a counter ("3f9c0a1b7d2e4c55-1a").
class RequestIdGenerator {
 public:
  RequestIdGenerator();
  // The next id; valid until the next call.
  std::string_view next();

 private:
  std::string prefix_;
  std::string current_;
  uint64_t counter_ = 0;
};

// Beast's parser with the two guards the router needs around Beast 1.74's chunk parser,
// which asserts (BOOST_ASSERT(n >= 5) in parse_chunk_header; with assertions on — Debug
// and sanitizer builds — the router aborts, without them it reads past what it was given)
// once it has seen the last chunk ("0\r\n") and is then put fewer than five bytes:
//   - bytes it answered need_more to are never put again until more have arrived (the
//     router parses what it holds before choosing a backend and again while relaying; a
//     last chunk that came with the head was put twice: RouterStream.LastChunkWithTheHead
//     AndItsTrailerLater);
//   - a body whose first chunk is the last one waits for a fifth byte when exactly four are
//     there (Beast assumes the CRLF of an earlier chunk in front); a complete message always
//     has one.
// Callers ask must_wait(bytes available) before each feed() and read more when it says so.
template <bool isRequest>
class GuardedParser : public http::basic_parser<isRequest> {
 public:
  size_t feed(const char* data, size_t size, error_code& ec) {
    const size_t n = this->put(boost::asio::const_buffer(data, size), ec);
    stalled_at_ = ec == http::error::need_more ? size - n : 0;
    return n;
  }
  bool must_wait(size_t available) const {
    if (stalled_at_ != 0 && available <= stalled_at_) return true;
    return this->is_header_done() && this->chunked() && !data_chunk_seen_ && available == 4;
  }

 protected:
  void saw_chunk(std::uint64_t size) {
    if (size > 0) data_chunk_seen_ = true;
  }

 private:
  bool data_chunk_seen_ = false;
  size_t stalled_at_ = 0;  // unparsed bytes when the parser last needed more
};

// What the router decides from a request head.
struct RequestInfo {
  http::verb method = http::verb::unknown;
  int version = 11;                    // 10 or 11
  bool idempotent = false;             // GET/HEAD/OPTIONS/TRACE, or x-ferry-idempotent: 1 (trusted)
  bool upgrade = false;                // Connection: upgrade with an Upgrade field (websocket)
  bool expect_continue = false;        // Expect: 100-continue (the router answers it itself)
  bool bad_transfer_encoding = false;  // Transfer-Encoding present but not ending in chunked
  bool slo_excluded = false;           // the target is one of ParseOptions::slo_exclude
  std::string pin;         // value of the pin header (never forwarded), empty when absent
  std::string affinity;    // the affinity cookie's or header's value, empty when absent
  std::string request_id;  // the request's X-Request-Id, given or generated
  // With ParseOptions::keep_target: the request target and the Host field's value (the
  // access log and the HTTPS redirect need them; other requests skip the copies).
  std::string target;
  std::string host;
  // Why the request is refused with 400 although it parsed (a Connection header naming a
  // field the router manages, several Host fields); empty when it is not.
  std::string refused;
};

// The cookie the router sets for affinity "cookie".
inline constexpr std::string_view kAffinityCookieName = "ferry_affinity";

// What a RequestParser needs to know about the client and the app's router settings.
// The views must outlive the parser.
struct ParseOptions {
  std::string_view pin_header = "x-ferry-release";
  bool trusted = false;              // the client is a trusted proxy (router.trusted_proxies)
  bool affinity_cookie = false;      // read the affinity cookie into RequestInfo::affinity
  std::string_view affinity_header;  // or this field's value (affinity "header:NAME")
  // When set ("https" on a TLS connection): X-Forwarded-Proto is this, whatever the client
  // sent, even a trusted proxy.
  std::string_view forwarded_proto;
  bool keep_target = false;  // fill RequestInfo::target and host
  // The SLO's excluded paths (core/slo_paths.h), checked against the target; null: none.
  const std::vector<std::string>* slo_exclude = nullptr;
};

// Parses a request from a client. `out` receives the head for the upstream without its
// final empty line: request line, the client's fields minus hop-by-hop ones and the pin
// header, then X-Forwarded-For (a trusted proxy's list with `client_ip` appended, else
// `client_ip` alone), X-Forwarded-Proto when ParseOptions::forwarded_proto is set,
// X-Request-Id when the client sent none, and Connection/Upgrade for an upgrade request. From a
// client that is not trusted, other X-Forwarded-* fields, Forwarded and x-ferry-idempotent are
// dropped.
class RequestParser : public GuardedParser<true> {
 public:
  RequestParser(std::string& out, std::string_view client_ip, const ParseOptions& opts,
                RequestIdGenerator& ids);

  const RequestInfo& info() const { return info_; }

 private:
  void on_request_impl(http::verb method, std::string_view method_str, std::string_view target,
                       int version, error_code& ec) override;
  void on_response_impl(int, std::string_view, int, error_code&) override {}
  void on_field_impl(http::field name, std::string_view name_string, std::string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(std::string_view body, error_code&) override { return body.size(); }
  void on_chunk_header_impl(std::uint64_t size, std::string_view, error_code&) override {
    saw_chunk(size);
  }
  std::size_t on_chunk_body_impl(std::uint64_t, std::string_view body, error_code&) override {
    return body.size();
  }
  void on_finish_impl(error_code&) override {}
  void find_affinity_cookie(std::string_view value);

  std::string& out_;
  std::string_view client_ip_;
  ParseOptions opts_;
  RequestIdGenerator& ids_;
  RequestInfo info_;
  std::string forwarded_for_;
  std::string connection_;  // Connection values, comma-separated
  std::string upgrade_;
  bool has_request_id_ = false;
  bool has_transfer_encoding_ = false;
  bool has_content_length_ = false;
  int hosts_ = 0;
  bool in_trailer_ = false;
};

// Parses a response from an upstream. `out` receives the head for the client without its
// final empty line: status line, the fields minus hop-by-hop ones, then X-Ferry-Release.
// With `dechunk` (an HTTP/1.0 client) a chunked body is decoded into `decoded` and
// Transfer-Encoding is dropped, since such a client cannot read chunks.
class ResponseParser : public GuardedParser<false> {
 public:
  ResponseParser(std::string& out, std::string_view release, bool dechunk, std::string* decoded);

  int status() const { return status_; }
  bool has_request_id() const { return has_request_id_; }
  // Upgrade value the upstream answered a 101 with.
  const std::string& upgrade_value() const { return upgrade_; }

 private:
  void on_request_impl(http::verb, std::string_view, std::string_view, int, error_code&) override {}
  void on_response_impl(int code, std::string_view reason, int version, error_code& ec) override;
  void on_field_impl(http::field name, std::string_view name_string, std::string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(std::string_view body, error_code&) override;
  void on_chunk_header_impl(std::uint64_t size, std::string_view, error_code&) override {
    saw_chunk(size);
  }
  std::size_t on_chunk_body_impl(std::uint64_t, std::string_view body, error_code&) override;
  void on_finish_impl(error_code&) override {}

  std::string& out_;
  std::string_view release_;
  bool dechunk_;
  std::string* decoded_;
  int status_ = 0;
  bool has_request_id_ = false;
  bool in_trailer_ = false;
  std::string upgrade_;
  std::string connection_;  // Connection values, comma-separated
  bool has_content_length_ = false;
};

// A complete response the router makes itself (errors): status line, Content-Length,
// text body, X-Ferry-Release when a release was chosen, Connection: close when `close`.
std::string router_response(int status, std::string_view body, std::string_view release,
                            std::string_view request_id, bool close);

}  // namespace ferry::routing
