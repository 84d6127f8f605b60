// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/http_messages.h"

#include <boost/beast/core/string.hpp>
#include <charconv>

#include "common/crypto.h"
#include "core/slo_paths.h"

namespace ferry::routing {

namespace {

using boost::beast::iequals;

constexpr size_t kMaxRequestIdBytes = 200;
constexpr size_t kMaxPinBytes = 512;
constexpr size_t kMaxAffinityBytes = 300;

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ", 2);
  out.append(value);
  out.append("\r\n", 2);
}

// Fields that describe one connection, not the message (RFC 9110 7.6.1): each side of
// the router has its own connection, so they are never passed on.
bool hop_by_hop(http::field f) {
  switch (f) {
    case http::field::connection:
    case http::field::keep_alive:
    case http::field::proxy_connection:
    case http::field::te:
      return true;
    default:
      return false;
  }
}

std::string_view reason_for(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Error";
  }
}

// Calls `fn` with each token of a comma-separated Connection value, trimmed, skipping
// empty ones; stops early when `fn` returns false.
template <typename Fn>
void for_each_token(std::string_view tokens, Fn fn) {
  size_t at = 0;
  while (at < tokens.size()) {
    size_t comma = tokens.find(',', at);
    if (comma == std::string_view::npos) comma = tokens.size();
    std::string_view name = tokens.substr(at, comma - at);
    at = comma + 1;
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (!name.empty() && !fn(name)) return;
  }
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Fields of a request the router frames, routes or forwards by: a Connection header that
// names one would make the router and the upstream read the message differently.
bool managed_request_field(std::string_view name, std::string_view pin_header,
                           std::string_view affinity_header) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "host") || starts_with_ci(name, "x-forwarded-") ||
         iequals(name, "forwarded") || iequals(name, "x-request-id") ||
         iequals(name, "x-ferry-release") || iequals(name, "x-ferry-idempotent") ||
         iequals(name, pin_header) || iequals(name, "cookie") ||
         (!affinity_header.empty() && iequals(name, affinity_header));
}

// The same for a response: its framing and the fields the router adds.
bool managed_response_field(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "x-request-id") || iequals(name, "x-ferry-release") ||
         iequals(name, "set-cookie");
}

// Removes from `head` (after its first line) every field named in a Connection header's
// `tokens`, which RFC 9110 7.6.1 makes hop-by-hop too; close, keep-alive and upgrade name
// no field. The parsers refuse messages whose list names a field the router manages, so
// nothing stripped here changes framing or forwarding.
void strip_connection_listed(std::string& head, std::string_view tokens) {
  for_each_token(tokens, [&](std::string_view name) {
    if (iequals(name, "close") || iequals(name, "keep-alive") || iequals(name, "upgrade"))
      return true;
    size_t line = head.find("\r\n");
    while (line != std::string::npos && line + 2 < head.size()) {
      size_t start = line + 2;
      size_t end = head.find("\r\n", start);
      if (end == std::string::npos) break;
      std::string_view field(head.data() + start, end - start);
      size_t colon = field.find(':');
      if (colon == name.size() && iequals(field.substr(0, colon), name)) {
        head.erase(start, end + 2 - start);
        continue;  // `line` still ends the previous line
      }
      line = end;
    }
    return true;
  });
}

// Calls `fn(name, value)` for each cookie of a Cookie field; stops when it returns false.
template <typename Fn>
void for_each_cookie(std::string_view field, Fn fn) {
  size_t at = 0;
  while (at < field.size()) {
    size_t semi = field.find(';', at);
    if (semi == std::string_view::npos) semi = field.size();
    std::string_view pair = field.substr(at, semi - at);
    at = semi + 1;
    while (!pair.empty() && pair.front() == ' ') pair.remove_prefix(1);
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view v = pair.substr(eq + 1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (!fn(pair.substr(0, eq), v)) return;
  }
}

// The first token of `tokens` for which `managed` holds, or empty.
template <typename Pred>
std::string first_managed(std::string_view tokens, Pred managed) {
  std::string found;
  for_each_token(tokens, [&](std::string_view name) {
    if (!managed(name)) return true;
    found.assign(name.substr(0, 64));
    return false;
  });
  return found;
}

}  // namespace

RequestIdGenerator::RequestIdGenerator() : prefix_(to_hex(random_bytes(8))) {
  prefix_.push_back('-');
  current_.reserve(prefix_.size() + 16);
}

std::string_view RequestIdGenerator::next() {
  char digits[16];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, ++counter_, 16);
  (void)ec;
  current_.assign(prefix_);
  current_.append(digits, end);
  return current_;
}

RequestParser::RequestParser(std::string& out, std::string_view client_ip, const ParseOptions& opts,
                             RequestIdGenerator& ids)
    : out_(out), client_ip_(client_ip), opts_(opts), ids_(ids) {
  out_.clear();
}

void RequestParser::on_request_impl(http::verb method, std::string_view method_str,
                                    std::string_view target, int version, error_code&) {
  info_.method = method;
  info_.version = version;
  info_.idempotent = method == http::verb::get || method == http::verb::head ||
                     method == http::verb::options || method == http::verb::trace;
  if (opts_.keep_target) info_.target.assign(target);
  if (opts_.slo_exclude != nullptr)
    info_.slo_excluded = slo_path_excluded(*opts_.slo_exclude, target);
  out_.append(method_str);
  out_.push_back(' ');
  out_.append(target);
  out_.append(" HTTP/1.1\r\n");
}

void RequestParser::on_field_impl(http::field name, std::string_view name_string,
                                  std::string_view value, error_code&) {
  if (in_trailer_) return;  // trailers travel inside the raw chunked body
  if (hop_by_hop(name)) {
    if (name == http::field::connection) connection_.append(value).push_back(',');
    return;
  }
  switch (name) {
    case http::field::upgrade:
      upgrade_.assign(value);
      return;
    case http::field::expect:
      if (iequals(value, "100-continue")) {
        info_.expect_continue = true;
        return;
      }
      break;
    case http::field::transfer_encoding:
      has_transfer_encoding_ = true;
      break;
    case http::field::content_length:
      // Beast accepted it (equal values only); on_header_impl writes the one value, so a
      // list such as "5, 5" never reaches an upstream that might read it otherwise.
      has_content_length_ = true;
      return;
    case http::field::host:
      if (++hosts_ > 1 && info_.refused.empty()) info_.refused = "more than one Host field";
      if (opts_.keep_target && hosts_ == 1) info_.host.assign(value.substr(0, 300));
      break;
    case http::field::cookie:
      if (opts_.affinity_cookie) find_affinity_cookie(value);
      break;
    default:
      if (starts_with_ci(name_string, "x-forwarded-") || iequals(name_string, "forwarded")) {
        // A client that is not a trusted proxy cannot speak for another address: its
        // forwarding fields are dropped and X-Forwarded-For is the router's alone.
        if (!opts_.trusted) return;
        if (!opts_.forwarded_proto.empty() && iequals(name_string, "x-forwarded-proto")) return;
        if (name_string.size() == 15 && iequals(name_string, "x-forwarded-for")) {
          if (!forwarded_for_.empty()) forwarded_for_.append(", ");
          forwarded_for_.append(value);
          return;
        }
        break;
      }
      if (name_string.size() == 12 && iequals(name_string, "x-request-id")) {
        // An empty or oversized id is replaced by one the router makes.
        if (value.empty() || value.size() > kMaxRequestIdBytes || has_request_id_) return;
        has_request_id_ = true;
        info_.request_id.assign(value);
      } else if (iequals(name_string, opts_.pin_header)) {
        // The router's own control field: read here, never passed on (a pin token is a
        // credential).
        if (value.size() <= kMaxPinBytes) info_.pin.assign(value);
        return;
      } else if (name_string.size() == 18 && iequals(name_string, "x-ferry-idempotent")) {
        if (!opts_.trusted) return;  // only a trusted proxy may declare a retry safe
        if (value == "1") info_.idempotent = true;
      } else if (!opts_.affinity_header.empty() && iequals(name_string, opts_.affinity_header)) {
        if (info_.affinity.empty()) info_.affinity.assign(value.substr(0, kMaxAffinityBytes));
      }
      break;
  }
  append_field(out_, name_string, value);
}

void RequestParser::find_affinity_cookie(std::string_view value) {
  // "a=1; ferry_affinity=v2.ab12; b=2": the first cookie of that name counts.
  if (!info_.affinity.empty()) return;
  for_each_cookie(value, [&](std::string_view name, std::string_view v) {
    if (name != kAffinityCookieName) return true;
    info_.affinity.assign(v.substr(0, kMaxAffinityBytes));
    return false;
  });
}

void RequestParser::on_header_impl(error_code& ec) {
  in_trailer_ = true;
  if (!connection_.empty()) {
    std::string bad = first_managed(connection_, [&](std::string_view n) {
      return managed_request_field(n, opts_.pin_header, opts_.affinity_header);
    });
    if (!bad.empty() && info_.refused.empty())
      info_.refused = "the Connection header names " + bad + ", which the router manages";
    strip_connection_listed(out_, connection_);
  }
  if (!info_.refused.empty()) {
    ec = http::error::bad_field;
    return;
  }
  if (has_content_length_ && content_length()) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, *content_length()).ptr;
    append_field(out_, "Content-Length", std::string_view(digits, end - digits));
  }
  // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
  // knowable length; passing it on would let client and upstream disagree on framing.
  if (has_transfer_encoding_ && !chunked()) info_.bad_transfer_encoding = true;
  if (!forwarded_for_.empty()) forwarded_for_.append(", ");
  forwarded_for_.append(client_ip_);
  append_field(out_, "X-Forwarded-For", forwarded_for_);
  if (!opts_.forwarded_proto.empty())
    append_field(out_, "X-Forwarded-Proto", opts_.forwarded_proto);
  if (!has_request_id_) {
    info_.request_id.assign(ids_.next());
    append_field(out_, "X-Request-Id", info_.request_id);
  }
  if (upgrade() && !upgrade_.empty()) {
    info_.upgrade = true;
    append_field(out_, "Connection", "upgrade");
    append_field(out_, "Upgrade", upgrade_);
  }
}

ResponseParser::ResponseParser(std::string& out, std::string_view release, bool dechunk,
                               std::string* decoded)
    : out_(out), release_(release), dechunk_(dechunk), decoded_(decoded) {
  out_.clear();
}

void ResponseParser::on_response_impl(int code, std::string_view reason, int, error_code& ec) {
  // Beast takes any three digits; "057" has no status class: a bad upstream answer.
  if (code < 100) {
    ec = http::error::bad_status;
    return;
  }
  status_ = code;
  char digits[4];
  auto end = std::to_chars(digits, digits + sizeof digits, code).ptr;
  out_.append("HTTP/1.1 ");
  out_.append(digits, end);
  out_.push_back(' ');
  out_.append(reason);
  out_.append("\r\n");
}

void ResponseParser::on_field_impl(http::field name, std::string_view name_string,
                                   std::string_view value, error_code&) {
  if (in_trailer_) return;
  if (hop_by_hop(name)) {
    if (name == http::field::connection) connection_.append(value).push_back(',');
    return;
  }
  if (name == http::field::upgrade) {
    upgrade_.assign(value);
    return;
  }
  if (name == http::field::transfer_encoding && dechunk_) return;
  if (name == http::field::content_length) {
    has_content_length_ = true;  // written once, normalised, by on_header_impl
    return;
  }
  if (name_string.size() == 15 && iequals(name_string, "x-ferry-release")) return;
  if (name_string.size() == 12 && iequals(name_string, "x-request-id")) has_request_id_ = true;
  append_field(out_, name_string, value);
}

void ResponseParser::on_header_impl(error_code& ec) {
  in_trailer_ = true;
  if (!connection_.empty()) {
    if (!first_managed(connection_, managed_response_field).empty()) {
      ec = http::error::bad_field;  // the session answers 502: the upstream is at fault
      return;
    }
    strip_connection_listed(out_, connection_);
  }
  if (has_content_length_ && content_length()) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, *content_length()).ptr;
    append_field(out_, "Content-Length", std::string_view(digits, end - digits));
  }
  append_field(out_, "X-Ferry-Release", release_);
  if (status_ == 101) {
    append_field(out_, "Connection", "upgrade");
    if (!upgrade_.empty()) append_field(out_, "Upgrade", upgrade_);
  }
}

std::size_t ResponseParser::on_body_impl(std::string_view body, error_code&) {
  return body.size();  // not chunked: relayed raw
}

std::size_t ResponseParser::on_chunk_body_impl(std::uint64_t, std::string_view body, error_code&) {
  if (dechunk_ && decoded_ != nullptr) decoded_->append(body);
  return body.size();
}

std::string router_response(int status, std::string_view body, std::string_view release,
                            std::string_view request_id, bool close) {
  std::string r;
  r.reserve(160 + body.size());
  r.append("HTTP/1.1 ");
  r.append(std::to_string(status));
  r.push_back(' ');
  r.append(reason_for(status));
  r.append("\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
  r.append(std::to_string(body.size()));
  r.append("\r\n");
  if (!release.empty()) append_field(r, "X-Ferry-Release", release);
  if (!request_id.empty()) append_field(r, "X-Request-Id", request_id);
  if (close) r.append("Connection: close\r\n");
  r.append("\r\n");
  r.append(body);
  return r;
}

}  // namespace ferry::routing
