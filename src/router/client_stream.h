// The client side of a router connection: a TCP socket, a TLS stream over one, or one
// HTTP/2 stream of a TLS connection (router/h2_stream.h). The session and proxy code read
// and write through it without knowing which; with the coroutine completion token every
// branch yields the same awaitable, so the plain path costs one branch and no extra
// allocation.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/ssl/context.hpp>
#include <optional>

#include "router/h2_stream.h"
#include "router/http_messages.h"
#include "router/route_table.h"
#include "router/tls_stream.h"

namespace ferry::routing {

class ClientStream {
 public:
  using executor_type = Executor;
  explicit ClientStream(Socket socket) : plain_(std::move(socket)) {}
  explicit ClientStream(std::shared_ptr<H2Stream> stream) : h2_(std::move(stream)) {}

  // Wraps the socket in TLS (before any byte is read) with `ctx`, which must outlive this
  // stream's handshake (the connection then holds its own reference to it).
  void use_tls(boost::asio::ssl::context& ctx) {
    tls_.emplace(std::move(*plain_), ctx.native_handle());
    plain_.reset();
  }
  // A TLS connection of its own (handshake, close_notify).
  bool is_tls() const { return tls_.has_value(); }
  // An HTTP/2 stream (of a TLS connection).
  bool is_h2() const { return h2_ != nullptr; }
  // The client reached the router over TLS (X-Forwarded-Proto, HSTS).
  bool secure() const { return tls_.has_value() || h2_ != nullptr; }
  TlsStream& tls() { return *tls_; }
  // The TCP socket underneath; not for an HTTP/2 stream.
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  executor_type get_executor() { return h2_ ? h2_->get_executor() : socket().get_executor(); }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
    if (h2_) return h2_->async_read_some(b, std::forward<Token>(token));
    return plain_->async_read_some(b, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
    if (h2_) return h2_->async_write_some(b, std::forward<Token>(token));
    return plain_->async_write_some(b, std::forward<Token>(token));
  }

  // void(error_code) once a read would find something, holding no buffer meanwhile. Not
  // for an HTTP/2 stream.
  template <typename Token>
  auto async_wait_readable(Token&& token) {
    if (tls_) return tls_->async_wait_readable(std::forward<Token>(token));
    return plain_->async_wait(Socket::wait_read, std::forward<Token>(token));
  }

  // The socket underneath: closing it ends every pending operation of either kind.
  void close(error_code& ec) {
    if (h2_)
      h2_->close();
    else
      socket().close(ec);
  }
  void cancel(error_code& ec) {
    if (h2_)
      h2_->cancel();
    else
      socket().cancel(ec);
  }
  // After the peer finished sending: a plain socket stops sending too (half close); a TLS
  // stream closes, since TLS has no half close a client could rely on (nor an HTTP/2
  // stream, which carries no tunnel).
  void finish_sending(error_code& ec) {
    if (tls_ || h2_)
      close(ec);
    else
      plain_->shutdown(Socket::shutdown_send, ec);
  }

 private:
  std::optional<Socket> plain_;
  std::optional<TlsStream> tls_;
  std::shared_ptr<H2Stream> h2_;
};

}  // namespace ferry::routing
