// Fuzzes the router's message parsing as the router drives it: bytes arrive in pieces
// (sizes from the first input byte), a request head is parsed and rewritten for the
// upstream, its body framed, and the same bytes are also read as an upstream response.
// Never a crash or a hang; a rewritten head is well-formed: CRLF-terminated lines with
// no bare CR or LF (no header injection), the forwarding fields present.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
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

// Feeds `data` to `p` in pieces of `step` bytes, as reads from a socket would deliver.
template <typename Parser>
bool feed(Parser& p, std::string_view data, size_t step) {
  std::string buf;
  size_t given = 0;
  while (!p.is_done()) {
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
    size_t used = p.put(boost::asio::buffer(buf.data(), buf.size()), ec);
    if (used > buf.size()) __builtin_trap();
    buf.erase(0, used);
    if (ec == http::error::need_more) {
      if (given == data.size()) return false;  // input ended mid-message
      continue;
    }
    if (ec) return false;
    if (used == 0 && given == data.size() && !p.is_done()) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  size_t step = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);

  static RequestIdGenerator ids;
  std::string out;
  RequestParser req(out, "127.0.0.1", "x-ferry-release", ids);
  req.header_limit(8 * 1024);
  req.body_limit(64 * 1024);
  req.eager(true);
  feed(req, input, step);
  if (req.is_header_done()) {
    check_head(out);
    if (out.find("\r\nX-Forwarded-For: ") == std::string::npos) __builtin_trap();
    if (req.info().request_id.empty()) __builtin_trap();
    if (req.info().upgrade && out.find("\r\nUpgrade: ") == std::string::npos) __builtin_trap();
  }

  std::string resp_out, decoded;
  ResponseParser resp(resp_out, "v1", (data[0] & 0x80) != 0, &decoded);
  resp.header_limit(8 * 1024);
  resp.body_limit(std::numeric_limits<std::uint64_t>::max());
  resp.eager(true);
  feed(resp, input, step);
  if (resp.is_header_done()) {
    check_head(resp_out);
    if (resp_out.find("\r\nX-Ferry-Release: v1\r\n") == std::string::npos) __builtin_trap();
    if (resp.status() < 100 || resp.status() > 999) __builtin_trap();
  }
  return 0;
}
