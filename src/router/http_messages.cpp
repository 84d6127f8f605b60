// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/http_messages.h"

#include <boost/beast/core/string.hpp>
#include <charconv>

#include "common/crypto.h"

namespace ferry::routing {

namespace {

using boost::beast::iequals;

constexpr size_t kMaxRequestIdBytes = 200;

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

// Removes from `head` (after its first line) every field named in a Connection header's
// `tokens`, which RFC 9110 7.6.1 makes hop-by-hop too; close, keep-alive and upgrade name
// no field, and the forwarding fields the router manages itself stay.
void strip_connection_listed(std::string& head, std::string_view tokens) {
  size_t at = 0;
  while (at < tokens.size()) {
    size_t comma = tokens.find(',', at);
    if (comma == std::string_view::npos) comma = tokens.size();
    std::string_view name = tokens.substr(at, comma - at);
    at = comma + 1;
    while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    if (name.empty() || iequals(name, "close") || iequals(name, "keep-alive") ||
        iequals(name, "upgrade") || iequals(name, "x-request-id") ||
        iequals(name, "x-forwarded-for") || iequals(name, "x-ferry-release"))
      continue;
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
  }
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

RequestParser::RequestParser(std::string& out, std::string_view client_ip,
                             std::string_view pin_header, RequestIdGenerator& ids)
    : out_(out), client_ip_(client_ip), pin_header_(pin_header), ids_(ids) {
  out_.clear();
}

void RequestParser::on_request_impl(http::verb method, std::string_view method_str,
                                    std::string_view target, int version, error_code&) {
  info_.method = method;
  info_.version = version;
  info_.idempotent = method == http::verb::get || method == http::verb::head ||
                     method == http::verb::options || method == http::verb::trace;
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
    default:
      if (name_string.size() == 15 && iequals(name_string, "x-forwarded-for")) {
        if (!forwarded_for_.empty()) forwarded_for_.append(", ");
        forwarded_for_.append(value);
        return;
      }
      if (name_string.size() == 12 && iequals(name_string, "x-request-id")) {
        // An empty or oversized id is replaced by one the router makes.
        if (value.empty() || value.size() > kMaxRequestIdBytes || has_request_id_) return;
        has_request_id_ = true;
        info_.request_id.assign(value);
      } else if (iequals(name_string, pin_header_)) {
        info_.pin.assign(value);
      } else if (name_string.size() == 18 && iequals(name_string, "x-ferry-idempotent") &&
                 value == "1") {
        info_.idempotent = true;
      }
      break;
  }
  append_field(out_, name_string, value);
}

void RequestParser::on_header_impl(error_code&) {
  in_trailer_ = true;
  if (!connection_.empty()) strip_connection_listed(out_, connection_);
  // RFC 9112 6.3: a request whose Transfer-Encoding does not end in chunked has no
  // knowable length; passing it on would let client and upstream disagree on framing.
  if (has_transfer_encoding_ && !chunked()) info_.bad_transfer_encoding = true;
  if (!forwarded_for_.empty()) forwarded_for_.append(", ");
  forwarded_for_.append(client_ip_);
  append_field(out_, "X-Forwarded-For", forwarded_for_);
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
  if (name_string.size() == 15 && iequals(name_string, "x-ferry-release")) return;
  if (name_string.size() == 12 && iequals(name_string, "x-request-id")) has_request_id_ = true;
  append_field(out_, name_string, value);
}

void ResponseParser::on_header_impl(error_code&) {
  in_trailer_ = true;
  if (!connection_.empty()) strip_connection_listed(out_, connection_);
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
