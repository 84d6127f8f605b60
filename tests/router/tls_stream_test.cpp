// TlsStream (router/tls_stream.h) against a real OpenSSL client over loopback: megabytes in
// both directions at once with the socket buffers full (a read and a write pending
// together, writes waiting for the socket), several buffers sent as one record, the end of
// a connection told apart (close_notify, a bare TCP close, a reset), cancelling and closing
// pending operations, the shutdown, giving buffers back when idle and waiting for bytes
// without one, and a handshake that never blocks the io thread. Attacks: a reset while the
// router writes must not raise SIGPIPE; plain text instead of a ClientHello fails the
// handshake and everything after it; a stream whose socket was closed never touches the
// descriptor number again (it may be another client's by then).
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/tls_stream.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "router/test_certs.h"

namespace ferry {
namespace {

using routing::error_code;
using routing::Executor;
using routing::Socket;
using routing::TlsStream;
namespace asio = boost::asio;
using Acceptor = asio::basic_socket_acceptor<asio::ip::tcp, Executor>;

char pattern(size_t i) {
  return static_cast<char>((i * 7 + (i >> 10)) & 0xff);
}

// The client side: OpenSSL on a blocking socket in the test's thread (or one of its own).
class Client {
 public:
  Client(SSL_CTX* ctx, uint16_t port) : fd_(socket(AF_INET, SOCK_STREAM, 0)), ssl_(SSL_new(ctx)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{20, 0};  // a stuck server fails the test instead of hanging it
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    SSL_set_fd(ssl_, fd_);
  }
  ~Client() {
    SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }
  SSL* ssl() { return ssl_; }
  bool handshake() { return SSL_connect(ssl_) == 1; }
  bool write(std::string_view s) {
    size_t n = 0;
    return SSL_write_ex(ssl_, s.data(), s.size(), &n) == 1 && n == s.size();
  }
  // One SSL_read: at most one record's bytes. Empty on EOF, error or timeout.
  std::string read_once() {
    char buf[32768];
    size_t n = 0;
    if (SSL_read_ex(ssl_, buf, sizeof buf, &n) != 1) return {};
    return std::string(buf, n);
  }
  // Reads until `n` bytes came or the connection ended.
  std::string read_n(size_t n) {
    std::string out;
    while (out.size() < n) {
      std::string part = read_once();
      if (part.empty()) break;
      out += part;
    }
    return out;
  }
  // Whether the next read finds the server's close_notify.
  bool reads_close_notify() {
    char buf[256];
    size_t n = 0;
    int r = SSL_read_ex(ssl_, buf, sizeof buf, &n);
    return r != 1 && SSL_get_error(ssl_, r) == SSL_ERROR_ZERO_RETURN;
  }
  void send_close_notify() { SSL_shutdown(ssl_); }
  // Closes TCP with a reset (SO_LINGER 0), no close_notify.
  void reset() {
    linger l{1, 0};
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close_tcp();
  }
  void close_tcp() {
    ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
  SSL* ssl_;
  bool connected_ = false;
};

// How an operation of the stream ended, set by its completion handler.
struct Outcome {
  std::optional<error_code> ec;
  size_t n = 0;
  bool done() const { return ec.has_value(); }
  // A handler for a void(error_code, size_t) operation; the outcome starts over.
  auto sized() {
    ec.reset();
    n = 0;
    return [this](error_code e, size_t k) {
      ec = e;
      n = k;
    };
  }
  // A handler for a void(error_code) operation; the outcome starts over.
  auto plain() {
    ec.reset();
    return [this](error_code e) { ec = e; };
  }
};

class TlsStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-tls-stream-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    testing_router::TestCa ca(dir_, "stream");
    auto [crt, key] = ca.issue(dir_, "a", {"a.test"});
    server_ctx_ = SSL_CTX_new(TLS_server_method());
    ASSERT_EQ(SSL_CTX_use_certificate_chain_file(server_ctx_, crt.c_str()), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey_file(server_ctx_, key.c_str(), SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_num_tickets(server_ctx_, 0);
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
  }
  void TearDown() override {
    SSL_CTX_free(server_ctx_);
    SSL_CTX_free(client_ctx_);
    std::filesystem::remove_all(dir_);
  }

  // The server side of the next connection (accepted before any byte is read).
  std::unique_ptr<TlsStream> accept() {
    Socket s(ioc_);
    acceptor_.accept(s);
    return std::make_unique<TlsStream>(std::move(s), server_ctx_);
  }
  // Runs the io_context until `done` holds (at most 20 s).
  void run_until(const std::function<bool()>& done) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < until) {
      ioc_.restart();
      ioc_.run_for(std::chrono::milliseconds(20));
    }
  }
  // Runs what is ready now, without waiting for anything.
  void poll() {
    ioc_.restart();
    ioc_.poll();
  }
  void wait_for(const Outcome& o) {
    run_until([&] { return o.done(); });
  }
  // A client connected and hand-shaken in a thread of its own, and the server's stream.
  std::unique_ptr<TlsStream> handshaken(Client& c) {
    bool client_ok = false;
    std::thread t([&] { client_ok = c.connected() && c.handshake(); });
    auto s = accept();
    std::optional<error_code> ec;
    s->async_handshake([&](error_code e) { ec = e; });
    run_until([&] { return ec.has_value(); });
    t.join();
    EXPECT_TRUE(ec.has_value() && !*ec) << (ec ? ec->message() : "no answer");
    EXPECT_TRUE(client_ok);
    return s;
  }

  std::string dir_;
  SSL_CTX* server_ctx_ = nullptr;
  SSL_CTX* client_ctx_ = nullptr;
  asio::io_context ioc_;
  Acceptor acceptor_{ioc_};
  uint16_t port_ = 0;
};

TEST_F(TlsStreamTest, MegabytesBothWaysAtOnceArriveWholeAndInOrder) {
  constexpr size_t kSize = 4 << 20;  // far more than both sockets' buffers
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  // The client writes and reads at once (non-blocking, poll), so neither side can stall
  // the other: the server has a read and a write pending together, and its writes wait
  // for the socket again and again.
  std::string got_by_client;
  bool client_ok = true;
  std::thread t([&] {
    fcntl(c.fd(), F_SETFL, fcntl(c.fd(), F_GETFL) | O_NONBLOCK);
    std::string out(kSize, '\0');
    for (size_t i = 0; i < kSize; ++i) out[i] = pattern(i);
    size_t sent = 0;
    char buf[32768];
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while ((sent < kSize || got_by_client.size() < kSize) &&
           std::chrono::steady_clock::now() < until) {
      bool progress = false;
      if (sent < kSize) {
        size_t n = 0;
        if (SSL_write_ex(c.ssl(), out.data() + sent, std::min<size_t>(16384, kSize - sent), &n)) {
          sent += n;
          progress = true;
        }
      }
      size_t n = 0;
      if (SSL_read_ex(c.ssl(), buf, sizeof buf, &n)) {
        got_by_client.append(buf, n);
        progress = true;
      } else if (SSL_get_error(c.ssl(), 0) != SSL_ERROR_WANT_READ &&
                 SSL_get_error(c.ssl(), 0) != SSL_ERROR_WANT_WRITE) {
        client_ok = false;
        break;
      }
      if (!progress) {
        pollfd p{c.fd(), static_cast<short>(POLLIN | (sent < kSize ? POLLOUT : 0)), 0};
        ::poll(&p, 1, 50);
      }
    }
  });

  std::string data(kSize, '\0');
  for (size_t i = 0; i < kSize; ++i) data[i] = pattern(i);
  std::optional<error_code> write_ec;
  asio::async_write(*s, asio::buffer(data), [&](error_code e, size_t) { write_ec = e; });
  std::string got_by_server;
  std::vector<char> buf(20000);
  std::optional<error_code> read_ec;
  std::function<void()> read_more = [&] {
    s->async_read_some(asio::buffer(buf), [&](error_code e, size_t n) {
      got_by_server.append(buf.data(), n);
      if (e || got_by_server.size() >= kSize)
        read_ec = e;
      else
        read_more();
    });
  };
  read_more();
  run_until([&] { return write_ec && read_ec; });
  t.join();
  ASSERT_TRUE(write_ec && read_ec);
  EXPECT_FALSE(*write_ec) << write_ec->message();
  EXPECT_FALSE(*read_ec) << read_ec->message();
  EXPECT_TRUE(client_ok);
  EXPECT_EQ(got_by_server.size(), kSize);
  EXPECT_TRUE(got_by_server == data) << "the server read other bytes than the client sent";
  EXPECT_EQ(got_by_client.size(), kSize);
  EXPECT_TRUE(got_by_client == data) << "the client read other bytes than the server sent";
}

TEST_F(TlsStreamTest, SeveralSmallBuffersGoOutAsOneRecord) {
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", body = "hello";
  std::array<asio::const_buffer, 3> bufs{asio::buffer(head), asio::const_buffer(),
                                         asio::buffer(body)};
  std::optional<error_code> ec;
  size_t written = 0;
  s->async_write_some(bufs, [&](error_code e, size_t n) {
    ec = e;
    written = n;
  });
  run_until([&] { return ec.has_value(); });
  ASSERT_TRUE(ec.has_value());
  EXPECT_FALSE(*ec);
  EXPECT_EQ(written, head.size() + body.size());
  // One SSL_read returns one record's bytes at most.
  EXPECT_EQ(c.read_once(), head + body);

  // More than a record's worth in several buffers: all of it, in order, by async_write.
  std::vector<std::string> parts;
  std::vector<asio::const_buffer> seq;
  for (int i = 0; i < 5; ++i) parts.push_back(std::string(7000 + i, static_cast<char>('a' + i)));
  std::string all;
  for (auto& p : parts) {
    seq.push_back(asio::buffer(p));
    all += p;
  }
  ec.reset();
  asio::async_write(*s, seq, [&](error_code e, size_t) { ec = e; });
  std::string got;
  std::thread t([&] { got = c.read_n(all.size()); });
  run_until([&] { return ec.has_value(); });
  t.join();
  EXPECT_FALSE(ec.value_or(asio::error::timed_out));
  EXPECT_TRUE(got == all);
}

TEST_F(TlsStreamTest, TheEndOfAConnectionIsToldApart) {
  struct Case {
    const char* what;
    std::function<void(Client&)> end;
    std::vector<error_code> expected;
  };
  std::vector<Case> cases = {
      {"close_notify", [](Client& c) { c.send_close_notify(); }, {asio::error::eof}},
      {"TCP close without close_notify",
       [](Client& c) { c.close_tcp(); },
       {asio::ssl::error::stream_truncated}},
      {"reset",
       [](Client& c) { c.reset(); },
       {error_code(ECONNRESET, boost::system::system_category()),
        asio::ssl::error::stream_truncated}},
  };
  for (auto& k : cases) {
    SCOPED_TRACE(k.what);
    Client c(client_ctx_, port_);
    auto s = handshaken(c);
    ASSERT_TRUE(c.write("last words"));
    k.end(c);
    std::string got;
    std::optional<error_code> ec;
    std::array<char, 64> buf;
    std::function<void()> read_more = [&] {
      s->async_read_some(asio::buffer(buf), [&](error_code e, size_t n) {
        got.append(buf.data(), n);
        if (e)
          ec = e;
        else
          read_more();
      });
    };
    read_more();
    run_until([&] { return ec.has_value(); });
    ASSERT_TRUE(ec.has_value());
    EXPECT_NE(std::find(k.expected.begin(), k.expected.end(), *ec), k.expected.end())
        << ec->message();
    if (std::string(k.what) != "reset") EXPECT_EQ(got, "last words");
  }
}

TEST_F(TlsStreamTest, AResetWhileTheServerWritesFailsTheWriteWithoutSigpipe) {
  // The default action of SIGPIPE ends the process: the stream must never raise it.
  auto old = std::signal(SIGPIPE, SIG_DFL);
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  c.reset();
  std::string data(8 << 20, 'x');
  std::optional<error_code> ec;
  asio::async_write(*s, asio::buffer(data), [&](error_code e, size_t) { ec = e; });
  run_until([&] { return ec.has_value(); });
  ASSERT_TRUE(ec.has_value());
  EXPECT_TRUE(*ec) << "a write to a reset connection succeeded";
  // And the stream stays failed: the next write ends at once.
  std::optional<error_code> again;
  s->async_write_some(asio::buffer(data.data(), 10), [&](error_code e, size_t) { again = e; });
  run_until([&] { return again.has_value(); });
  EXPECT_TRUE(again.value_or(error_code()));

  // The kernel raises SIGPIPE for a send to a socket that can no longer send when no error
  // is pending on it (a reset's ECONNRESET is reported once, without the signal; the send
  // after it gets EPIPE and the signal). Here the first send finds the socket shut for
  // sending: EPIPE at once, and it must come back as an error, not a signal.
  Client c2(client_ctx_, port_);
  auto s2 = handshaken(c2);
  ::shutdown(s2->next_layer().native_handle(), SHUT_WR);
  ec.reset();
  s2->async_write_some(asio::buffer(data.data(), 10), [&](error_code e, size_t) { ec = e; });
  run_until([&] { return ec.has_value(); });
  std::signal(SIGPIPE, old);
  EXPECT_EQ(ec.value_or(error_code()), error_code(EPIPE, boost::system::system_category()));
}

TEST_F(TlsStreamTest, CancelledReadsEndAndTheStreamReadsOnClosedOnesNeverTouchTheFdAgain) {
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  std::array<char, 64> buf;
  Outcome read;
  s->async_read_some(asio::buffer(buf), read.sized());
  poll();
  ASSERT_FALSE(read.done()) << "a read completed with nothing sent";
  error_code ignored;
  s->next_layer().cancel(ignored);
  wait_for(read);
  EXPECT_EQ(read.ec.value_or(error_code()), asio::error::operation_aborted);
  // A cancelled read leaves the stream whole: the next one gets the client's bytes.
  ASSERT_TRUE(c.write("after cancel"));
  s->async_read_some(asio::buffer(buf), read.sized());
  wait_for(read);
  EXPECT_FALSE(read.ec.value_or(asio::error::timed_out));
  EXPECT_EQ(std::string(buf.data(), read.n), "after cancel");

  // Closing the socket ends a pending read...
  Client other(client_ctx_, port_);  // its descriptor made first: the next free one is ours
  ASSERT_TRUE(other.connected());
  s->async_read_some(asio::buffer(buf), read.sized());
  poll();
  const int old_fd = s->next_layer().native_handle();
  s->next_layer().close(ignored);
  wait_for(read);
  EXPECT_EQ(read.ec.value_or(error_code()), asio::error::operation_aborted);
  // ...and once the descriptor number belongs to another client's connection, the old
  // stream writes nothing to it.
  Socket other_side(ioc_);
  acceptor_.accept(other_side);
  if (other_side.native_handle() == old_fd) {
    Outcome write;
    s->async_write_some(asio::buffer("leak", 4), write.sized());
    wait_for(write);
    EXPECT_EQ(write.ec.value_or(error_code()), asio::error::bad_descriptor);
    timeval shortly{0, 200'000};
    setsockopt(other.fd(), SOL_SOCKET, SO_RCVTIMEO, &shortly, sizeof shortly);
    char byte;
    EXPECT_LT(::recv(other.fd(), &byte, 1, 0), 0) << "bytes reached another connection";
  } else {
    ADD_FAILURE() << "the descriptor number was not reused (" << other_side.native_handle()
                  << " after " << old_fd << "); the test cannot check what it means to";
  }
}

TEST_F(TlsStreamTest, PlainTextInsteadOfAClientHelloFailsTheHandshakeAndAllAfterIt) {
  Client c(client_ctx_, port_);
  ASSERT_TRUE(c.connected());
  std::string get = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
  ASSERT_EQ(::send(c.fd(), get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  auto s = accept();
  std::optional<error_code> ec;
  s->async_handshake([&](error_code e) { ec = e; });
  run_until([&] { return ec.has_value(); });
  ASSERT_TRUE(ec.has_value());
  EXPECT_EQ(ec->category(), asio::error::get_ssl_category()) << ec->message();
  std::array<char, 16> buf;
  std::optional<error_code> rec;
  s->async_read_some(asio::buffer(buf), [&](error_code e, size_t) { rec = e; });
  run_until([&] { return rec.has_value(); });
  EXPECT_TRUE(rec.value_or(error_code())) << "a read after a failed handshake succeeded";
}

TEST_F(TlsStreamTest, ShutdownSendsCloseNotifyAndDropsTheClientsLastBytesUntilItsOwn) {
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  std::optional<error_code> ec;
  s->async_shutdown([&](error_code e) { ec = e; });
  poll();
  EXPECT_FALSE(ec.has_value()) << "the shutdown ended before the client's close_notify";
  EXPECT_TRUE(c.reads_close_notify());
  ASSERT_TRUE(c.write("still talking"));
  poll();
  EXPECT_FALSE(ec.has_value());
  c.send_close_notify();
  run_until([&] { return ec.has_value(); });
  ASSERT_TRUE(ec.has_value());
  EXPECT_FALSE(*ec) << ec->message();

  // With SSL_RECEIVED_SHUTDOWN set (the router found nothing more coming), it ends at once.
  Client c2(client_ctx_, port_);
  auto s2 = handshaken(c2);
  SSL_set_shutdown(s2->native_handle(),
                   SSL_get_shutdown(s2->native_handle()) | SSL_RECEIVED_SHUTDOWN);
  ec.reset();
  s2->async_shutdown([&](error_code e) { ec = e; });
  run_until([&] { return ec.has_value(); });
  EXPECT_FALSE(ec.value_or(asio::error::timed_out));
  EXPECT_TRUE(c2.reads_close_notify());
}

TEST_F(TlsStreamTest, AnIdleConnectionGivesBackItsRecordBuffersAndReadsOnAfterwards) {
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  std::array<char, 64> buf;
  Outcome read, write;
  ASSERT_TRUE(c.write("one"));
  s->async_read_some(asio::buffer(buf), read.sized());
  wait_for(read);
  ASSERT_EQ(std::string(buf.data(), read.n), "one");
  s->async_write_some(asio::buffer("two", 3), write.sized());
  wait_for(write);
  ASSERT_EQ(c.read_once(), "two");

  // Idle, a read waiting: the buffers go, and the connection works on as before.
  s->async_read_some(asio::buffer(buf), read.sized());
  poll();
  ASSERT_FALSE(read.done());
  EXPECT_TRUE(s->release_buffers());
  ASSERT_TRUE(c.write("three"));
  wait_for(read);
  EXPECT_FALSE(read.ec.value_or(asio::error::timed_out));
  EXPECT_EQ(std::string(buf.data(), read.n), "three");
  s->async_write_some(asio::buffer("four", 4), write.sized());
  wait_for(write);
  EXPECT_EQ(c.read_once(), "four");

  // Half a record in: the read buffer is in use and stays.
  s->async_read_some(asio::buffer(buf), read.sized());
  poll();
  SSL_set_mode(c.ssl(), 0);
  std::string record_head("\x17\x03\x03\x00\x40", 5);  // application data, 64 bytes follow
  ASSERT_EQ(::send(c.fd(), record_head.data(), record_head.size(), MSG_NOSIGNAL), 5);
  run_until([&] { return !s->release_buffers() || read.done(); });
  EXPECT_FALSE(read.done());
  EXPECT_FALSE(s->release_buffers()) << "a half-read record's buffer was freed";
}

TEST_F(TlsStreamTest, AHandshakeWaitingForItsClientHelloNeverBlocksTheIoThread) {
  // The client sends its ClientHello only once the server's io thread has come back from
  // starting the handshake; a stream that read the still blocking socket would hold the
  // thread until then, and the client gives up waiting after 5 s (failing, not hanging).
  Client c(client_ctx_, port_);
  ASSERT_TRUE(c.connected());
  std::atomic<bool> server_returned{false};
  bool client_ok = false, client_waited_in_vain = true;
  std::thread t([&] {
    for (int i = 0; i < 500 && !server_returned; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    client_waited_in_vain = !server_returned;
    client_ok = c.handshake();
  });
  auto s = accept();
  std::optional<error_code> ec;
  s->async_handshake([&](error_code e) { ec = e; });
  poll();
  server_returned = true;
  EXPECT_FALSE(ec.has_value()) << "the handshake ended before the client said anything";
  run_until([&] { return ec.has_value(); });
  t.join();
  EXPECT_FALSE(client_waited_in_vain) << "the io thread blocked in the handshake";
  EXPECT_FALSE(ec.value_or(asio::error::timed_out));
  EXPECT_TRUE(client_ok);
}

TEST_F(TlsStreamTest, WaitingUntilReadableSeesTheSocketAndWhatOpenSslAlreadyHolds) {
  Client c(client_ctx_, port_);
  auto s = handshaken(c);
  Outcome wait, read;
  s->async_wait_readable(wait.plain());
  poll();
  EXPECT_FALSE(wait.done()) << "readable with nothing sent";
  ASSERT_TRUE(c.write("ab"));
  wait_for(wait);
  EXPECT_FALSE(wait.ec.value_or(asio::error::timed_out));

  // A one-byte read leaves the record's second byte with OpenSSL, not in the socket: the
  // wait ends at once, and the next read gets it.
  std::array<char, 1> one;
  s->async_read_some(asio::buffer(one), read.sized());
  wait_for(read);
  ASSERT_EQ(std::string(one.data(), read.n), "a");
  s->async_wait_readable(wait.plain());
  wait_for(wait);
  EXPECT_FALSE(wait.ec.value_or(asio::error::timed_out));
  s->async_read_some(asio::buffer(one), read.sized());
  wait_for(read);
  EXPECT_EQ(std::string(one.data(), read.n), "b");

  // Cancelled, the wait ends with operation_aborted.
  s->async_wait_readable(wait.plain());
  poll();
  error_code ignored;
  s->next_layer().cancel(ignored);
  wait_for(wait);
  EXPECT_EQ(wait.ec.value_or(error_code()), asio::error::operation_aborted);
}

}  // namespace
}  // namespace ferry
