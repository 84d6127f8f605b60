// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/h2_stream.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <boost/beast/http/error.hpp>
#include <cctype>
#include <cstring>
#include <limits>

#include "router/h2_connection.h"

namespace ferry::routing {

namespace asio = boost::asio;

namespace {

// A response head the router writes is the backend's (at most 64 KiB) plus the router's
// fields.
constexpr std::uint32_t kDecodedHeadLimit = 128 * 1024;
// Request bytes waiting for the session below which the client's window is reopened.
constexpr size_t kCreditBelow = 16 * 1024;

// Fields HTTP/2 forbids (RFC 9113 section 8.2.2): the connection's business in HTTP/1.1.
bool connection_specific(std::string_view lower_name) {
  return lower_name == "connection" || lower_name == "keep-alive" ||
         lower_name == "proxy-connection" || lower_name == "transfer-encoding" ||
         lower_name == "upgrade";
}

}  // namespace

void H1ResponseDecoder::on_field_impl(http::field, std::string_view name_string,
                                      std::string_view value, error_code&) {
  std::string name(name_string);
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (connection_specific(name)) return;
  fields_.emplace_back(std::move(name), std::string(value));
}

H2Stream::H2Stream(H2Connection* conn, int32_t id, Executor ex, bool head_request)
    : conn_(conn), id_(id), ex_(std::move(ex)), head_request_(head_request) {
  if (conn_ != nullptr) conn_->stream_alive(this);
  // Filled by appending: room for a usual response at once.
  pending_.reserve(1024);
  fields_.reserve(16);
}

H2Stream::~H2Stream() {
  if (conn_ != nullptr) conn_->stream_gone(this);
}

void H2Stream::push_request(std::string_view bytes, size_t window) {
  in_.append(bytes);
  credit_ += window;
  try_read();
}

void H2Stream::push_head(std::string&& head) {
  if (in_.empty()) {
    in_ = std::move(head);
    in_pos_ = 0;
    try_read();
    return;
  }
  push_request(head, 0);
}

void H2Stream::end_request() {
  in_eof_ = true;
  try_read();
}

void H2Stream::try_read() {
  if (!read_.armed()) return;
  // A stream reset (or a session closed) before its request was read: the rest of the
  // request must not reach a backend.
  if (session_closed_) {
    read_.complete(ex_, asio::error::operation_aborted, 0);
    return;
  }
  if (!stream_open_) {
    read_.complete(ex_, asio::error::connection_reset, 0);
    return;
  }
  if (in_pos_ < in_.size()) {
    size_t n =
        asio::buffer_copy(read_buf_, asio::buffer(in_.data() + in_pos_, in_.size() - in_pos_));
    in_pos_ += n;
    if (in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    }
    if (credit_ > 0 && in_.size() - in_pos_ < kCreditBelow && conn_ != nullptr && stream_open_) {
      conn_->consume(id_, credit_);
      credit_ = 0;
    }
    read_.complete(ex_, {}, n);
    return;
  }
  if (in_eof_) read_.complete(ex_, asio::error::eof, 0);
}

error_code H2Stream::decode() {
  size_t body_before = out_body_.size();
  while (!pending_.empty() && !body_done_) {
    if (!decoder_) {
      decoder_.emplace(fields_, out_body_);
      decoder_->header_limit(kDecodedHeadLimit);
      decoder_->body_limit(std::numeric_limits<std::uint64_t>::max());
      if (head_request_) decoder_->skip(true);
      decoder_->eager(true);
    }
    if (decoder_->must_wait(pending_.size())) break;
    error_code ec;
    size_t n = decoder_->feed(pending_.data(), pending_.size(), ec);
    pending_.erase(0, n);
    if (ec == http::error::need_more) break;
    if (ec) return asio::error::invalid_argument;
    if (decoder_->is_header_done() && !head_ready_) {
      int s = decoder_->status();
      if (s == 101) return asio::error::invalid_argument;  // no upgrade over HTTP/2
      if (s < 200) {
        // An interim answer (103 Early Hints, 100 Continue): not passed on.
        fields_.clear();
        decoder_.reset();
        continue;
      }
      status_ = s;
      head_ready_ = true;
      if (decoder_->is_done()) body_done_ = true;
      if (conn_ != nullptr) conn_->response_head(*this);
    }
    if (decoder_->is_done()) body_done_ = true;
    if (n == 0) break;
  }
  if (head_ready_ && conn_ != nullptr && (out_body_.size() != body_before || body_done_))
    conn_->response_body(*this);
  return {};
}

size_t H2Stream::take_body(uint8_t* out, size_t max, bool* eof) {
  size_t n = std::min(max, out_body_.size() - out_pos_);
  if (n > 0) std::memcpy(out, out_body_.data() + out_pos_, n);
  out_pos_ += n;
  if (out_pos_ == out_body_.size()) {
    out_body_.clear();
    out_pos_ = 0;
  } else if (out_pos_ >= kBodyLimit) {
    out_body_.erase(0, out_pos_);
    out_pos_ = 0;
  }
  *eof = body_done_ && out_body_.empty();
  if (write_.armed() && out_body_.size() - out_pos_ < kBodyLimit)
    write_.complete(ex_, {}, write_n_);
  return n;
}

size_t H2Stream::stream_closed() {
  stream_open_ = false;
  try_read();
  write_.complete(ex_, asio::error::broken_pipe, 0);
  size_t c = credit_;
  credit_ = 0;
  return c;
}

void H2Stream::cancel() {
  read_.complete(ex_, asio::error::operation_aborted, 0);
  write_.complete(ex_, asio::error::operation_aborted, 0);
}

void H2Stream::close() {
  if (session_closed_) return;
  session_closed_ = true;
  cancel();
  if (conn_ == nullptr || !stream_open_) return;
  if (head_ready_ && !body_done_ && decoder_ && decoder_->need_eof()) {
    // A body delimited by the end of the connection ends here.
    error_code ec;
    decoder_->put_eof(ec);
    if (!ec) {
      body_done_ = true;
      conn_->response_body(*this);
    }
  }
  if (!body_done_) {
    // The response is cut short (or never came): the client must not take it as whole.
    conn_->reset(id_, NGHTTP2_INTERNAL_ERROR);
  }
}

}  // namespace ferry::routing
