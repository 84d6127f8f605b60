// Fuzzes the router's message parsing as the router drives it: bytes arrive in pieces
// (sizes from the first input byte), request heads are parsed and rewritten for the
// upstream, their bodies framed, several requests after one another as on a kept-alive,
// pooled connection, and the same bytes are also read as upstream responses. Never a
// crash or a hang; a rewritten head is well-formed: CRLF-terminated lines with no bare CR
// or LF (no header injection), the forwarding fields present, one Content-Length and one
// Host at most; and what the router would forward parses upstream as exactly one request
// (a Connection list can never turn one request into two).
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "router/http_messages.h"

namespace {

using ferry::routing::RequestIdGenerator;
using ferry::routing::RequestParser;
using ferry::routing::ResponseParser;
namespace http = ferry::routing::http;

void check_head(const std::string& head) {
  size_t at = 0;
  while (at < head.size()) {
    size_t eol = head.find("\r\n", at);
    if (eol == std::string::npos) __builtin_trap();  // every line ends with CRLF
    for (size_t i = at; i < eol; ++i)
      if (head[i] == '\r' || head[i] == '\n') __builtin_trap();
    if (eol == at) __builtin_trap();  // no empty line inside the head
    at = eol + 2;
  }
}

// Feeds `data` to `p` in pieces of `step` bytes, as reads from a socket would deliver;
// `*consumed` gets the bytes the parser used. With `head_only` it stops once the head is
// parsed (the router stages the body separately). True when the parser got that far.
template <typename Parser>
bool feed(Parser& p, std::string_view data, size_t step, size_t* consumed, bool head_only,
          bool* failed = nullptr) {
  std::string buf;
  size_t given = 0;
  *consumed = 0;
  auto reached = [&] { return head_only ? p.is_header_done() : p.is_done(); };
  while (!reached()) {
    if (given < data.size()) {
      size_t n = std::min(step, data.size() - given);
      buf.append(data.substr(given, n));
      given += n;
    }
    if (p.must_wait(buf.size())) {
      if (given == data.size()) return false;
      continue;
    }
    ferry::routing::error_code ec;
    size_t used = p.feed(buf.data(), buf.size(), ec);
    if (used > buf.size()) __builtin_trap();
    buf.erase(0, used);
    *consumed += used;
    if (ec == http::error::need_more) {
      if (given == data.size()) return false;  // input ended mid-message
      continue;
    }
    if (ec) {
      if (failed != nullptr) *failed = true;
      return false;
    }
    if (used == 0 && given == data.size() && !reached()) return false;
  }
  return true;
}

size_t count_fields(const std::string& head, std::string_view name) {
  size_t n = 0;
  for (size_t at = head.find("\r\n"); at != std::string::npos; at = head.find("\r\n", at + 2)) {
    std::string_view line(head.data() + at + 2, std::min(name.size() + 1, head.size() - at - 2));
    if (line.size() == name.size() + 1 && line.back() == ':' &&
        boost::beast::iequals(line.substr(0, name.size()), name))
      ++n;
  }
  return n;
}

// What the upstream reads from what the router forwards (rewritten head + raw body) must
// be exactly one complete request: one request in, one out, whatever the client's
// Connection list said.
void check_one_out(const std::string& head, std::string_view body) {
  std::string wire = head + "\r\n";
  wire.append(body);
  http::request_parser<http::buffer_body> up;
  up.header_limit(64 * 1024);
  up.body_limit(std::numeric_limits<std::uint64_t>::max());
  up.eager(true);
  char sink[4096];
  size_t at = 0;
  while (!up.is_done() && at < wire.size()) {
    up.get().body().data = sink;
    up.get().body().size = sizeof sink;
    ferry::routing::error_code ec;
    at += up.put(boost::asio::buffer(wire.data() + at, wire.size() - at), ec);
    if (ec == http::error::need_buffer) continue;
    if (ec) __builtin_trap();  // the router forwarded something the upstream cannot read
  }
  if (!up.is_done() || at != wire.size()) __builtin_trap();  // a second request, or a short one
}

// One request as a session reads it from `input`; returns the bytes it used (0: none).
// `flags` picks the client's trust and the affinity field, as the app's policy would.
size_t one_request(std::string_view input, size_t step, uint8_t flags) {
  static RequestIdGenerator ids;
  std::string out;
  ferry::routing::ParseOptions opts;
  opts.trusted = (flags & 1) != 0;
  opts.affinity_cookie = (flags & 2) != 0;
  if (flags & 4) opts.affinity_header = "x-user";
  RequestParser req(out, "127.0.0.1", opts, ids);
  req.header_limit(8 * 1024);
  req.body_limit(64 * 1024);
  size_t head = 0;
  if (!feed(req, input, step, &head, true)) {
    // A refused head (Connection naming a managed field, two Hosts) is never forwarded.
    return 0;
  }
  check_head(out);
  if (out.find("\r\nX-Forwarded-For: ") == std::string::npos) __builtin_trap();
  if (req.info().request_id.empty()) __builtin_trap();
  if (!req.info().refused.empty()) __builtin_trap();  // refused heads end in an error
  if (req.info().upgrade && out.find("\r\nUpgrade: ") == std::string::npos) __builtin_trap();
  if (count_fields(out, "content-length") > 1 || count_fields(out, "host") > 1) __builtin_trap();
  // The pin header is the router's: never forwarded. From an untrusted client the
  // forwarding fields are the router's alone.
  if (count_fields(out, "x-ferry-release") != 0) __builtin_trap();
  if (count_fields(out, "x-forwarded-for") != 1) __builtin_trap();
  if (!opts.trusted &&
      (count_fields(out, "x-ferry-idempotent") != 0 || count_fields(out, "forwarded") != 0 ||
       count_fields(out, "x-forwarded-proto") != 0))
    __builtin_trap();
  if (req.info().upgrade) return 0;  // the rest of the connection is a tunnel
  req.eager(true);
  size_t body = 0;
  if (!feed(req, input.substr(head), step, &body, false)) return 0;
  if (!req.info().bad_transfer_encoding) check_one_out(out, input.substr(head, body));
  return head + body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t step = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  // Keep-alive and pipelining: the bytes after one request are the next one on the same
  // connection, as the router's pooled upstream connections carry them.
  std::string_view rest = input;
  for (int i = 0; i < 4 && !rest.empty(); ++i) {
    size_t used = one_request(rest, step, data[0] >> 5);
    if (used == 0) break;
    rest.remove_prefix(used);
  }

  // The same bytes as upstream responses, one after the other on a reused connection.
  rest = input;
  for (int i = 0; i < 2 && !rest.empty(); ++i) {
    std::string resp_out, decoded;
    ResponseParser resp(resp_out, "v1", (data[0] & 0x80) != 0, &decoded);
    resp.header_limit(8 * 1024);
    resp.body_limit(std::numeric_limits<std::uint64_t>::max());
    resp.eager(true);
    size_t used = 0;
    bool failed = false;
    bool done = feed(resp, rest, step, &used, false, &failed);
    if (resp.is_header_done() && !failed) {
      check_head(resp_out);
      if (resp_out.find("\r\nX-Ferry-Release: v1\r\n") == std::string::npos) __builtin_trap();
      if (resp.status() < 100 || resp.status() > 999) __builtin_trap();
      if (count_fields(resp_out, "content-length") > 1) __builtin_trap();
    }
    if (!done || used == 0) break;
    rest.remove_prefix(used);
  }
  return 0;
}
