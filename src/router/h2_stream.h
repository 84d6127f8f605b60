// One HTTP/2 stream as the router's request pipeline sees it: a client connection that
// carries one HTTP/1.1 request and takes one HTTP/1.1 response. The HTTP/2 connection
// (router/h2_connection.h) writes the stream's request into it as HTTP/1.1 bytes (request
// line, fields, body framed by Content-Length or chunks); a Session reads them through
// ClientStream exactly as it reads a socket, routes and relays the request, and writes its
// HTTP/1.1 response back, which this class decodes into what HTTP/2 carries: a status,
// fields without the connection-specific ones, and body bytes without chunk framing.
// So an HTTP/2 request passes the same routing, weights, affinity, pinning, shield,
// counters, access log and limits as an HTTP/1.1 one.
//
// Flow control: request bytes are credited back to the client's HTTP/2 window only once
// the session has read them, and the session's response writes wait while more than
// kBodyLimit bytes of body are waiting for the client's window. Everything runs on the
// worker's io thread; completions are posted, never run inside the caller.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "router/http_messages.h"
#include "router/route_table.h"

namespace ferry::routing {

class H2Connection;

// A completion handler of signature void(error_code, size_t) kept until the operation
// completes (move-only: awaitable handlers cannot be copied).
class PendingIo {
 public:
  bool armed() const { return fn_ != nullptr; }
  template <typename Handler>
  void arm(Handler&& h) {
    fn_ = std::make_unique<Impl<std::decay_t<Handler>>>(std::forward<Handler>(h));
  }
  // Posts the completion to `ex` and disarms.
  void complete(const Executor& ex, error_code ec, size_t n) {
    if (!fn_) return;
    boost::asio::post(ex, [f = std::move(fn_), ec, n]() mutable { f->call(ec, n); });
  }

 private:
  struct Base {
    virtual ~Base() = default;
    virtual void call(error_code ec, size_t n) = 0;
  };
  template <typename H>
  struct Impl : Base {
    explicit Impl(H&& handler) : h(std::move(handler)) {}
    void call(error_code ec, size_t n) override { std::move(h)(ec, n); }
    H h;
  };
  std::unique_ptr<Base> fn_;
};

// The HTTP/1.1 response a Session writes, decoded for HTTP/2.
class H1ResponseDecoder : public GuardedParser<false> {
 public:
  H1ResponseDecoder(std::vector<std::pair<std::string, std::string>>& fields, std::string& body)
      : fields_(fields), body_(body) {}
  int status() const { return status_; }

 private:
  void on_request_impl(http::verb, std::string_view, std::string_view, int, error_code&) override {}
  void on_response_impl(int code, std::string_view, int, error_code&) override { status_ = code; }
  void on_field_impl(http::field name, std::string_view name_string, std::string_view value,
                     error_code& ec) override;
  void on_header_impl(error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&, error_code&) override {}
  std::size_t on_body_impl(std::string_view body, error_code&) override {
    body_.append(body);
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t size, std::string_view, error_code&) override {
    saw_chunk(size);
  }
  std::size_t on_chunk_body_impl(std::uint64_t, std::string_view body, error_code&) override {
    body_.append(body);
    return body.size();
  }
  void on_finish_impl(error_code&) override {}

  std::vector<std::pair<std::string, std::string>>& fields_;
  std::string& body_;
  int status_ = 0;
};

class H2Stream {
 public:
  using executor_type = Executor;
  // Response body bytes waiting for the client's window beyond which the session's
  // writes wait.
  static constexpr size_t kBodyLimit = 64 * 1024;

  // `conn` registers the stream as live until it is destroyed or the connection ends.
  H2Stream(H2Connection* conn, int32_t id, Executor ex, bool head_request);
  ~H2Stream();
  H2Stream(const H2Stream&) = delete;
  H2Stream& operator=(const H2Stream&) = delete;

  // ---- the session's side (through ClientStream)
  executor_type get_executor() const { return ex_; }
  // Reads request bytes; eof once the request ended and all were read. Only the first
  // buffer of the sequence is filled.
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, size_t)>(
        [this](auto handler, boost::asio::mutable_buffer buf) {
          this->start_read(std::move(handler), buf);
        },
        token, *boost::asio::buffer_sequence_begin(b));
  }
  // Takes response bytes (all of them); completes once the body waiting for the client
  // is under kBodyLimit. Fails once the stream is closed or the response is malformed.
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, size_t)>(
        [this](auto handler, const Buffers& bufs) {
          size_t n = 0;
          error_code ec = take_response(bufs, &n);
          if (ec || out_body_.size() - out_pos_ < kBodyLimit || !stream_open_) {
            PendingIo io;
            io.arm(std::move(handler));
            io.complete(ex_, ec, n);
            return;
          }
          write_.arm(std::move(handler));
          write_n_ = n;
        },
        token, b);
  }
  // The session is done with the stream (or its timeout fired): pending operations end
  // with operation_aborted, later ones fail; an unfinished response resets the stream.
  void close();
  // Pending operations end with operation_aborted.
  void cancel();

  // ---- the connection's side
  int32_t id() const { return id_; }
  // Request bytes for the session; `window` of them came in DATA frames and are credited
  // back to the client once read.
  void push_request(std::string_view bytes, size_t window);
  // The request's head (no window): taken over rather than copied when nothing is queued.
  void push_head(std::string&& head);
  // The request ended: reads see eof after the bytes pushed.
  void end_request();
  // Response body for DATA frames: up to `max` bytes into `out`; `*eof` when they are the
  // last. 0 bytes without eof: nothing is ready yet (the connection resumes the stream
  // when there is).
  size_t take_body(uint8_t* out, size_t max, bool* eof);
  // The HTTP/2 stream closed (ended, or reset by either side): the session's reads and
  // writes fail from now on. Returns the request bytes not yet credited back.
  size_t stream_closed();
  // The connection ended: nothing is reported to it any more.
  void detach() { conn_ = nullptr; }
  // The response's status and fields (names lower case), valid once head_ready().
  int status() const { return status_; }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  // Whether the whole response went to the connection (head and body, none left here).
  bool response_done() const { return body_done_; }
  // Whether body bytes are waiting for DATA frames.
  bool body_pending() const { return out_body_.size() > out_pos_; }
  bool session_closed() const { return session_closed_; }
  // Set by the connection when the data source returned "deferred".
  bool deferred = false;

 private:
  template <typename Handler>
  void start_read(Handler&& h, boost::asio::mutable_buffer buf) {
    read_.arm(std::forward<Handler>(h));
    read_buf_ = buf;
    try_read();
  }
  void try_read();
  template <typename Buffers>
  error_code take_response(const Buffers& bufs, size_t* n) {
    if (session_closed_ || !stream_open_) return boost::asio::error::broken_pipe;
    for (auto it = boost::asio::buffer_sequence_begin(bufs);
         it != boost::asio::buffer_sequence_end(bufs); ++it) {
      boost::asio::const_buffer cb(*it);
      pending_.append(static_cast<const char*>(cb.data()), cb.size());
      *n += cb.size();
    }
    return decode();
  }
  // Runs the decoder over pending_ and hands a completed head or new body to the
  // connection.
  error_code decode();

  H2Connection* conn_;
  const int32_t id_;
  Executor ex_;
  const bool head_request_;

  // Request side.
  std::string in_;
  size_t in_pos_ = 0;
  size_t credit_ = 0;  // DATA bytes pushed and not yet credited back
  bool in_eof_ = false;
  PendingIo read_;
  boost::asio::mutable_buffer read_buf_;

  // Response side.
  std::string pending_;  // bytes written and not yet decoded
  std::optional<H1ResponseDecoder> decoder_;
  std::vector<std::pair<std::string, std::string>> fields_;
  int status_ = 0;
  bool head_ready_ = false;
  std::string out_body_;
  size_t out_pos_ = 0;
  bool body_done_ = false;
  PendingIo write_;
  size_t write_n_ = 0;

  bool stream_open_ = true;
  bool session_closed_ = false;
};

}  // namespace ferry::routing
