// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/tls_stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <cerrno>
#include <cstdint>
#include <new>

namespace ferry::routing {

namespace {

// OpenSSL's own socket BIO writes with write(2), which raises SIGPIPE when the client has
// reset the connection; a process that does not ignore SIGPIPE (a test, an embedding) would
// die of a client. This one sends with MSG_NOSIGNAL, as Asio does, and is otherwise the
// same: EAGAIN reported as "retry", EOF remembered for BIO_eof. Every call passes
// MSG_DONTWAIT, so no call blocks whatever the descriptor's mode: the first attempts run
// before Asio's first wait on it (which is when Asio makes it non-blocking, one ioctl; a
// connection that never waits is spared it).
int fd_of(BIO* b) {
  return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
}

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::send(fd_of(b), data, static_cast<size_t>(len), MSG_NOSIGNAL | MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int bio_read(BIO* b, char* data, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n;
  do n = ::recv(fd_of(b), data, static_cast<size_t>(len), MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(b);
  if (n == 0 && len > 0) BIO_set_flags(b, BIO_FLAGS_IN_EOF);
  return static_cast<int>(n);
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // every write went to the socket already
      return 1;
    case BIO_CTRL_EOF:
      return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

BIO_METHOD* socket_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ferry socket");
    if (m == nullptr) throw std::bad_alloc();
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    return m;
  }();
  return method;
}

}  // namespace

TlsStream::TlsStream(Socket socket, SSL_CTX* ctx) : socket_(std::move(socket)), ssl_(SSL_new(ctx)) {
  BIO* bio = ssl_ != nullptr ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    SSL_free(ssl_);
    ERR_clear_error();
    throw std::bad_alloc();
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(socket_.native_handle())));
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // the connection owns it now
  SSL_set_accept_state(ssl_);
  // A record's header and body in one recv (with read-ahead off OpenSSL asks for the five
  // header bytes first), and a pipelined request's records with the handshake's last ones.
  SSL_set_read_ahead(ssl_, 1);
  // A write that waits for the socket may be tried again from the operation's own copy of
  // a gathered buffer (TlsStream::Op), not the address it started from.
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

TlsStream::~TlsStream() {
  SSL_free(ssl_);
}

bool TlsStream::release_buffers() {
  return socket_.is_open() && !failed_ && SSL_is_init_finished(ssl_) && SSL_free_buffers(ssl_) == 1;
}

char* TlsStream::scratch() {
  thread_local std::array<char, kRecord> buffer;
  return buffer.data();
}

TlsStream::Step TlsStream::attempt(Kind kind, void* data, size_t len, size_t* n, error_code* ec) {
  *n = 0;
  // A closed socket's descriptor number may already be another connection's.
  if (!socket_.is_open()) {
    *ec = boost::asio::error::bad_descriptor;
    return Step::kDone;
  }
  if (failed_) {
    *ec = boost::asio::error::connection_aborted;
    return Step::kDone;
  }
  if ((kind == Kind::kRead || kind == Kind::kWrite) && len == 0) return Step::kDone;
  ERR_clear_error();
  errno = 0;
  int r = 0;  // 1: done (each call below returns 1 on success)
  switch (kind) {
    case Kind::kHandshake:
      r = SSL_do_handshake(ssl_);
      break;
    case Kind::kRead:
      r = SSL_read_ex(ssl_, data, len, n);
      break;
    case Kind::kWrite:
      r = SSL_write_ex(ssl_, data, len, n);
      break;
    case Kind::kWaitReadable:
      return SSL_has_pending(ssl_) == 1 ? Step::kDone : Step::kWantRead;
    case Kind::kShutdown:
      if (!shutdown_sent_) {
        r = SSL_shutdown(ssl_);
        if (r < 0) break;
        shutdown_sent_ = true;
        if (r == 1) return Step::kDone;
      }
      // Ours is out; the client's close_notify is read, and its data before it dropped.
      // (Calling SSL_shutdown again would fail on that data.)
      for (;;) {
        std::array<char, 4096> drop;
        size_t dropped = 0;
        r = SSL_read_ex(ssl_, drop.data(), drop.size(), &dropped);
        if (r != 1) break;
      }
      if (SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN) return Step::kDone;
      break;
  }
  if (r == 1) return Step::kDone;
  const int saved_errno = errno;
  switch (SSL_get_error(ssl_, r)) {
    case SSL_ERROR_WANT_READ:
      return Step::kWantRead;
    case SSL_ERROR_WANT_WRITE:
      return Step::kWantWrite;
    case SSL_ERROR_ZERO_RETURN:
      *ec = boost::asio::error::eof;
      return Step::kDone;
    case SSL_ERROR_SYSCALL:
      failed_ = true;
      if (saved_errno != 0)
        *ec = error_code(saved_errno, boost::system::system_category());
      else
        *ec = boost::asio::ssl::error::stream_truncated;
      break;
    default: {
      failed_ = true;
      unsigned long e = ERR_get_error();
      if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        *ec = boost::asio::ssl::error::stream_truncated;
      else if (e != 0)
        *ec = error_code(static_cast<int>(e), boost::asio::error::get_ssl_category());
      else
        *ec = boost::asio::error::connection_aborted;
      break;
    }
  }
  ERR_clear_error();
  return Step::kDone;
}

}  // namespace ferry::routing
