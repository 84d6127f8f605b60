// Streaming: SSE flushed per chunk, request bodies in both framings, websocket tunnels,
// HTTP/1.0 clients, pipelined requests.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <gtest/gtest.h>

#include "router/router.h"
#include "router/test_backend.h"

namespace ferry {
namespace {

using testing_router::read_to_eof;
using testing_router::TestBackend;
using testing_router::TestClient;
namespace asio = testing_router::asio;
namespace beast = testing_router::beast;
namespace http = testing_router::http;
using tcp = testing_router::tcp;

class RouterStream : public ::testing::Test {
 protected:
  void SetUp() override {
    router_ = std::make_unique<Router>(RouterOptions{});
    ASSERT_TRUE(router_->start().ok());
    router_->set_table({{{"v1", 100}}, {backend_.route("a", "v1")}});
  }
  // A raw connection to the router.
  tcp::socket connect() {
    tcp::socket s(ioc_);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
    return s;
  }
  // Reads from `s` until `needle` shows up, at most ~5 s; returns what was read.
  static std::string read_until(tcp::socket& s, const std::string& needle) {
    std::string got;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    s.non_blocking(true);
    char buf[4096];
    while (got.find(needle) == std::string::npos && std::chrono::steady_clock::now() < until) {
      boost::system::error_code ec;
      size_t n = s.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        continue;
      }
      if (ec) break;
      got.append(buf, n);
    }
    s.non_blocking(false);
    return got;
  }

  asio::io_context ioc_;
  TestBackend backend_{"v1a"};
  std::unique_ptr<Router> router_;
};

TEST_F(RouterStream, ServerSentEventsArriveBeforeTheUpstreamFinishes) {
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")));
  // The backend holds its last event until released: the first must come through alone.
  std::string first = read_until(s, "data: first");
  EXPECT_NE(first.find("data: first"), std::string::npos) << first;
  EXPECT_NE(first.find("Transfer-Encoding: chunked"), std::string::npos);
  EXPECT_NE(first.find("X-Ferry-Release: v1"), std::string::npos);
  EXPECT_FALSE(backend_.sse_finished());
  backend_.release_sse();
  std::string rest = read_until(s, "0\r\n\r\n");
  EXPECT_NE(rest.find("data: last"), std::string::npos);
  // The connection stays usable after the stream ended.
  asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n")));
  EXPECT_NE(read_until(s, "v1a").find("200 OK"), std::string::npos);
}

TEST_F(RouterStream, LargeRequestBodiesStreamInBothFramings) {
  TestClient c(router_->port());
  std::string big(3u << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 997) big[i] = static_cast<char>('a' + i % 26);
  auto r = c.request(http::verb::post, "/echo", {}, big);
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(r.body(), big);

  // Chunked request body, written in pieces.
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string(
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")));
  asio::write(s, asio::buffer(std::string("5\r\nhello\r\n")));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  asio::write(s, asio::buffer(std::string("6\r\n world\r\n0\r\n\r\n")));
  std::string got = read_until(s, "hello world");
  EXPECT_NE(got.find("200 OK"), std::string::npos);
  EXPECT_NE(got.find("hello world"), std::string::npos);
}

TEST_F(RouterStream, EmptyChunkedBodyArrivingByteByByte) {
  tcp::socket s = connect();
  s.set_option(tcp::no_delay(true));
  asio::write(s, asio::buffer(std::string(
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")));
  // The last chunk comes first, then a trailer, each byte in its own segment.
  for (char ch : std::string("0\r\nX-T: 1\r\n\r\n")) {
    asio::write(s, asio::buffer(&ch, 1));
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  std::string got = read_until(s, "\r\n\r\n");
  EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
}

// The last chunk arrives with the head, its trailer later: the router parses the bytes it
// holds before choosing a backend and again while it relays the body. Beast 1.74 asserts
// (aborting a Debug or sanitizer build) when the same "0\r\n" is put to it a second time
// with nothing new; the router waits for new bytes instead.
TEST_F(RouterStream, LastChunkWithTheHeadAndItsTrailerLater) {
  for (const std::string first : {"0\r\n", "0\r\nX", "0\r\nX-", "0\r\n\r"}) {
    tcp::socket s = connect();
    s.set_option(tcp::no_delay(true));
    asio::write(
        s, asio::buffer("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                        first));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    const std::string all = "0\r\nX-T: 1\r\n\r\n";
    const std::string rest = first == "0\r\n\r" ? std::string("\n") : all.substr(first.size());
    asio::write(s, asio::buffer(rest));
    std::string got = read_until(s, "\r\n\r\n");
    EXPECT_NE(got.find("200 OK"), std::string::npos) << "first: " << first << "\n" << got;
  }
}

TEST_F(RouterStream, ExpectContinueIsAnsweredByTheRouter) {
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                          "Expect: 100-continue\r\n\r\n")));
  EXPECT_NE(read_until(s, "100 Continue").find("HTTP/1.1 100 Continue"), std::string::npos);
  asio::write(s, asio::buffer(std::string("ping")));
  std::string got = read_until(s, "ping");
  EXPECT_NE(got.find("200 OK"), std::string::npos);
}

TEST_F(RouterStream, WebsocketEchoThroughTheRouter) {
  beast::websocket::stream<tcp::socket> ws(ioc_);
  ws.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), router_->port()));
  beast::websocket::response_type res;
  ws.handshake(res, "127.0.0.1", "/ws");
  EXPECT_EQ(res["x-ferry-release"], "v1");
  for (const std::string& msg :
       {std::string("hello"), std::string(100000, 'w'), std::string("bye")}) {
    ws.write(asio::buffer(msg));
    beast::flat_buffer buf;
    ws.read(buf);
    EXPECT_EQ(beast::buffers_to_string(buf.data()), msg);
  }
  EXPECT_EQ(router_->in_flight("a"), 1);  // an open tunnel counts for draining
  ws.close(beast::websocket::close_code::normal);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (router_->in_flight("a") != 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(router_->in_flight("a"), 0);
  auto stats = router_->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].status_1xx, 1u);
}

TEST_F(RouterStream, Http10ClientGetsADecodedBodyAndClose) {
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("GET /sse HTTP/1.0\r\n\r\n")));
  backend_.release_sse();
  std::string got = read_to_eof(s);
  EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
  EXPECT_EQ(got.find("chunked"), std::string::npos) << got;
  EXPECT_NE(got.find("\r\n\r\ndata: first\n\ndata: last\n\n"), std::string::npos) << got;
}

TEST_F(RouterStream, Http10KeepAliveIsHonoured) {
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")));
  std::string got = read_until(s, "v1a");
  EXPECT_NE(got.find("Connection: keep-alive"), std::string::npos) << got;
  asio::write(s, asio::buffer(std::string("GET / HTTP/1.0\r\n\r\n")));
  got = read_to_eof(s);
  EXPECT_NE(got.find("v1a"), std::string::npos);
}

TEST_F(RouterStream, PipelinedRequestsAreAnsweredInOrder) {
  tcp::socket s = connect();
  asio::write(s, asio::buffer(std::string(
                     "GET /status/201 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /status/203 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")));
  std::string got = read_to_eof(s);
  size_t a = got.find("201"), b = got.find("202"), c = got.find("203");
  ASSERT_NE(a, std::string::npos);
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(got.find("Connection: close"), std::string::npos);
}

TEST_F(RouterStream, HeadResponsesHaveNoBody) {
  TestClient c(router_->port());
  auto r = c.request(http::verb::head, "/");
  EXPECT_EQ(r.result_int(), 200);
  EXPECT_EQ(c.get("/").body(), "v1a");  // the connection is still in step
}

}  // namespace
}  // namespace ferry
