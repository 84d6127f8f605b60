// The client side of a router connection: a TCP socket, or a TLS stream over one. The
// session and proxy code read and write through it without knowing which; with the
// coroutine completion token both branches yield the same awaitable, so the plain path
// costs one branch and no extra allocation.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <boost/asio/ssl/stream.hpp>
#include <optional>

#include "router/http_messages.h"
#include "router/route_table.h"

namespace ferry::routing {

class ClientStream {
 public:
  using executor_type = Executor;
  using TlsStream = boost::asio::ssl::stream<Socket>;

  explicit ClientStream(Socket socket) : plain_(std::move(socket)) {}

  // Wraps the socket in TLS (before any byte is read) with `ctx`, which must outlive this
  // stream's handshake (the connection then holds its own reference to it).
  void use_tls(boost::asio::ssl::context& ctx) {
    tls_.emplace(std::move(*plain_), ctx);
    plain_.reset();
  }
  bool is_tls() const { return tls_.has_value(); }
  TlsStream& tls() { return *tls_; }
  Socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  executor_type get_executor() { return socket().get_executor(); }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
    return plain_->async_read_some(b, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& b, Token&& token) {
    if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
    return plain_->async_write_some(b, std::forward<Token>(token));
  }

  // The socket underneath: closing it ends every pending operation of either kind.
  void close(error_code& ec) { socket().close(ec); }
  void cancel(error_code& ec) { socket().cancel(ec); }
  // After the peer finished sending: a plain socket stops sending too (half close); a TLS
  // stream closes, since TLS has no half close a client could rely on.
  void finish_sending(error_code& ec) {
    if (tls_)
      socket().close(ec);
    else
      plain_->shutdown(Socket::shutdown_send, ec);
  }

 private:
  std::optional<Socket> plain_;
  std::optional<TlsStream> tls_;
};

}  // namespace ferry::routing
