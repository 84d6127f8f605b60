// The server side of one TLS connection of the router, with OpenSSL reading and writing
// the client's socket itself (a BIO of ours over the descriptor, read-ahead on). Every
// operation is first tried in place; only when OpenSSL needs the socket to become readable
// or writable does the operation wait, with one async_wait on the socket, and try again
// when woken.
//
// Why not boost::asio::ssl::stream: it runs OpenSSL over a memory BIO pair and moves every
// record through Asio reads and writes of its own, each completion a trip through the io
// thread's queue, and allocates two zeroed 17 KiB staging buffers per connection. This
// stream halved the router's own instructions around a handshake (callgrind: 103,000 to
// 54,000 per connection, OpenSSL's 2.7 million unchanged) and the memory of an idle TLS
// connection (94 to 43 KiB): docs/BENCHMARKS.md, "Stop 22".
//
// Contract, as for Asio's streams: one read and one write may be pending at a time (a
// tunnel and HTTP/2 keep both); the handshake and the shutdown run alone. Completions of
// operations that finish at once are posted, never run inside the initiating call.
// Closing or cancelling the socket (next_layer()) ends the pending operations with
// operation_aborted; once the socket is closed, no operation touches its descriptor again
// (the number may already belong to another connection). Errors: asio::error::eof when
// the client sent close_notify, asio::ssl::error::stream_truncated when it closed TCP
// without one, an errno as a system error, an OpenSSL error in Asio's ssl category. After
// a fatal error every operation fails at once. One thread: the worker's io thread.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/associated_allocator.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <memory>
#include <type_traits>

#include "router/http_messages.h"
#include "router/route_table.h"

namespace ferry::routing {

class TlsStream {
 public:
  using executor_type = Executor;
  using next_layer_type = Socket;

  // Takes over `socket` (not yet read from) for a server connection with `ctx`'s settings;
  // the connection keeps its own reference to `ctx`. Throws std::bad_alloc when OpenSSL
  // cannot allocate it.
  TlsStream(Socket socket, SSL_CTX* ctx);
  ~TlsStream();
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  SSL* native_handle() { return ssl_; }
  // Frees OpenSSL's record buffers (about 17 KiB each way) when they hold nothing: for a
  // connection that has gone idle. The next read or write allocates them again. False when
  // they are in use (a record half read or half written) or the stream is closed.
  bool release_buffers();
  Socket& next_layer() { return socket_; }
  executor_type get_executor() { return socket_.get_executor(); }

  // void(error_code): the server handshake.
  template <typename Token>
  auto async_handshake(Token&& token) {
    return start<false>(Kind::kHandshake, nullptr, 0, std::forward<Token>(token));
  }
  // void(error_code, size_t): decrypted bytes into the first non-empty buffer.
  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    auto b = first_buffer(boost::asio::buffer_sequence_begin(buffers),
                          boost::asio::buffer_sequence_end(buffers));
    return start<true>(Kind::kRead, b.data(), b.size(), std::forward<Token>(token));
  }
  // void(error_code, size_t): the buffers' bytes as records; several small buffers (a head
  // and a body) are sent as one record, up to kRecord bytes of them.
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    auto begin = boost::asio::buffer_sequence_begin(buffers);
    auto end = boost::asio::buffer_sequence_end(buffers);
    boost::asio::const_buffer b = first_buffer(begin, end);
    // A first buffer smaller than a record with more after it: gathered into one record.
    if (b.size() < kRecord && nonempty_buffers(begin, end) > 1) b = gather(begin, end);
    return start<true>(Kind::kWrite, const_cast<void*>(b.data()), b.size(),
                       std::forward<Token>(token));
  }
  // void(error_code): completes when a read would find something (decrypted bytes held
  // by OpenSSL, or the socket readable), without a buffer: an idle connection waits so.
  template <typename Token>
  auto async_wait_readable(Token&& token) {
    return start<false>(Kind::kWaitReadable, nullptr, 0, std::forward<Token>(token));
  }
  // void(error_code): sends close_notify, then reads (and drops) what the client still
  // sends until its close_notify. Returns at once after sending when the client's was
  // received already (or SSL_RECEIVED_SHUTDOWN was set to skip waiting for it).
  template <typename Token>
  auto async_shutdown(Token&& token) {
    return start<false>(Kind::kShutdown, nullptr, 0, std::forward<Token>(token));
  }

 private:
  // The most plaintext one record carries.
  static constexpr size_t kRecord = 16384;
  enum class Kind { kHandshake, kRead, kWrite, kShutdown, kWaitReadable };
  enum class Step { kDone, kWantRead, kWantWrite };

  template <bool Sized, typename Handler>
  class Op;

  // One attempt of `kind` in place. kDone: *ec and *n hold the result (n: bytes read or
  // written). Otherwise the socket must become readable or writable first.
  Step attempt(Kind kind, void* data, size_t len, size_t* n, error_code* ec);
  // A thread's buffer of kRecord bytes: gathered writes are made in it.
  static char* scratch();

  template <typename It>
  static auto first_buffer(It begin, It end) {
    using Buffer = typename std::iterator_traits<It>::value_type;
    for (auto it = begin; it != end; ++it)
      if (Buffer(*it).size() != 0) return Buffer(*it);
    return Buffer();
  }
  template <typename It>
  static int nonempty_buffers(It begin, It end) {
    int count = 0;
    for (auto it = begin; it != end; ++it) count += boost::asio::const_buffer(*it).size() != 0;
    return count;
  }
  // Copies up to kRecord bytes of the sequence into scratch().
  template <typename It>
  static boost::asio::const_buffer gather(It begin, It end) {
    char* out = scratch();
    size_t used = 0;
    for (auto it = begin; it != end && used < kRecord; ++it) {
      boost::asio::const_buffer part(*it);
      size_t take = std::min(part.size(), kRecord - used);
      if (take != 0) std::memcpy(out + used, part.data(), take);
      used += take;
    }
    return {out, used};
  }

  template <bool Sized, typename Token>
  auto start(Kind kind, void* data, size_t len, Token&& token) {
    using Signature = std::conditional_t<Sized, void(error_code, size_t), void(error_code)>;
    return boost::asio::async_initiate<Token, Signature>(
        [this, kind, data, len](auto handler) {
          using H = decltype(handler);
          Op<Sized, H>(*this, kind, data, len, std::move(handler)).run({}, true);
        },
        token);
  }

  Socket socket_;
  SSL* ssl_;
  bool failed_ = false;         // a fatal error ended the connection
  bool shutdown_sent_ = false;  // close_notify is written (not only queued)
};

template <bool Sized, typename Handler>
class TlsStream::Op {
 public:
  Op(TlsStream& s, Kind kind, void* data, size_t len, Handler&& h)
      : s_(&s), kind_(kind), data_(data), len_(len), h_(std::move(h)) {}

  using executor_type = boost::asio::associated_executor_t<Handler, Executor>;
  executor_type get_executor() const noexcept {
    return boost::asio::get_associated_executor(h_, s_->get_executor());
  }
  using allocator_type = boost::asio::associated_allocator_t<Handler>;
  allocator_type get_allocator() const noexcept {
    return boost::asio::get_associated_allocator(h_);
  }

  // The socket is ready (or the wait failed).
  void operator()(error_code ec) { run(ec, false); }

  // `first`: called by the initiating function, whose caller must not be re-entered.
  void run(error_code ec, bool first) {
    size_t n = 0;
    Step step = Step::kDone;
    // A wait for readability is over once the socket was readable.
    if (!ec && (first || kind_ != Kind::kWaitReadable))
      step = s_->attempt(kind_, data_, len_, &n, &ec);
    if (step != Step::kDone) {
      // A gathered write lives in the thread's scratch buffer, which the next connection
      // may fill while this one waits: OpenSSL reads the rest of the record from here when
      // tried again, so the bytes move to the operation's own copy.
      if (kind_ == Kind::kWrite && data_ == scratch()) {
        owned_ = std::make_unique<char[]>(len_);
        std::memcpy(owned_.get(), data_, len_);
        data_ = owned_.get();
      }
      auto wait = step == Step::kWantRead ? Socket::wait_read : Socket::wait_write;
      s_->socket_.async_wait(wait, std::move(*this));
      return;
    }
    if (first) {
      auto ex = get_executor();
      boost::asio::post(ex, [h = std::move(h_), ec, n]() mutable { call(h, ec, n); });
    } else {
      call(h_, ec, n);
    }
  }

 private:
  static void call(Handler& h, error_code ec, size_t n) {
    if constexpr (Sized)
      h(ec, n);
    else
      h(ec);
  }

  TlsStream* s_;
  Kind kind_;
  void* data_;
  size_t len_;
  std::unique_ptr<char[]> owned_;
  Handler h_;
};

}  // namespace ferry::routing
