#include <gtest/gtest.h>

#include <thread>

#include "common/http_client.h"
#include "common/http_server.h"

namespace ferry {
namespace {

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o;
    o.max_body_bytes = 1024;
    server_ = std::make_unique<HttpServer>(o);
    server_->route("GET", "/apps/{app}", [](HttpRequest& r) {
      return HttpResponse::json({{"app", r.param("app")}, {"q", r.query["x"]}});
    });
    server_->route("POST", "/echo", [](HttpRequest& r) { return HttpResponse::text(r.body); });
    server_->route("GET", "/stream", [](HttpRequest&) {
      HttpResponse r;
      r.content_type = "text/event-stream";
      r.stream = [](StreamWriter& w) {
        for (int i = 0; i < 3; ++i) w.write("data: " + std::to_string(i) + "\n\n");
      };
      return r;
    });
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override { server_->stop(); }
  HttpClient client() { return HttpClient({"127.0.0.1", server_->port()}); }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpTest, RoutesCaptureParamsAndQuery) {
  auto r = client().call("GET", "/apps/web%2Dapp?x=a%20b");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)["app"], "web-app");
  EXPECT_EQ((*r)["q"], "a b");
}

TEST_F(HttpTest, UnknownRouteIsNotFoundAsJsonError) {
  auto r = client().call("GET", "/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

TEST_F(HttpTest, BodyOverLimitIsRefusedWith413) {
  auto r = client().request("POST", "/echo", std::string(4096, 'x'));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 413);
  auto ok = client().request("POST", "/echo", "hello");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->body, "hello");
}

TEST_F(HttpTest, StreamsChunkedBody) {
  auto r = client().request("GET", "/stream");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->body, "data: 0\n\ndata: 1\n\ndata: 2\n\n");
}

TEST_F(HttpTest, ManyConcurrentClients) {
  std::vector<std::thread> ts;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i)
    ts.emplace_back([&] {
      for (int j = 0; j < 10; ++j)
        if (client().call("GET", "/apps/x").ok()) ++ok;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, 160);
}

// A server (or something posing as one) that answers more than the client's limit gets an
// error, not the caller's memory: with a declared length that arrives in the same read as
// the head, and as a chunked stream with no length at all.
TEST(HttpClient, AnAnswerOverTheLimitIsAnErrorWhetherDeclaredOrChunked) {
  HttpServer s({});
  s.route("GET", "/big",
          [](HttpRequest&) { return HttpResponse::text(std::string(1 << 20, 'x')); });
  s.route("GET", "/small", [](HttpRequest&) { return HttpResponse::text(std::string(1000, 'y')); });
  s.route("GET", "/chunked", [](HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain";
    r.stream = [](StreamWriter& w) {
      for (int i = 0; i < 64; ++i) w.write(std::string(4096, 'z'));
    };
    return r;
  });
  ASSERT_TRUE(s.start().ok());
  HttpClientOptions o;
  o.max_response_bytes = 64 * 1024;
  HttpClient c({"127.0.0.1", s.port()}, o);
  for (const char* target : {"/big", "/chunked"}) {
    auto r = c.request("GET", target);
    ASSERT_FALSE(r.ok()) << target << " answered " << r->body.size() << " bytes";
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << target;
    EXPECT_NE(r.status().message().find("limit"), std::string::npos) << r.status().message();
  }
  auto small = c.request("GET", "/small");
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->body.size(), 1000u);
  s.stop();
}

TEST(HttpClient, ConnectionRefusedIsUnavailable) {
  HttpServer s({});
  ASSERT_TRUE(s.start().ok());
  uint16_t port = s.port();
  s.stop();
  HttpClient c({"127.0.0.1", port});
  auto r = c.call("GET", "/");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
}

TEST(Endpoint, ParsesHostPortForms) {
  EXPECT_EQ(parse_endpoint("127.0.0.1:7070")->port, 7070);
  EXPECT_EQ(parse_endpoint("http://[::1]:80/")->host, "::1");
  EXPECT_FALSE(parse_endpoint("localhost").ok());
  EXPECT_FALSE(parse_endpoint("a:70000").ok());
  EXPECT_FALSE(parse_endpoint("a:12x").ok());
}

}  // namespace
}  // namespace ferry
