#include "agent/unix_http.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "common/http_server.h"

namespace ferry {
namespace {

// The local agent's client bounds what it reads like every other client: an answer over
// its limit is an error, not the caller's memory (the Unix server sends no chunked answers;
// HttpClient's test covers those through the same reader, common/http_read_limited.h).
TEST(UnixHttp, AnAnswerOverTheClientsLimitIsAnError) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ferry-unix-http-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  HttpServer routes({});
  routes.route("GET", "/big",
               [](HttpRequest&) { return HttpResponse::text(std::string(1 << 20, 'x')); });
  routes.route("GET", "/small",
               [](HttpRequest&) { return HttpResponse::text(std::string(1000, 'y')); });
  UnixHttpServer server((dir / "agent.sock").string(), routes);
  ASSERT_TRUE(server.start().ok());
  auto big = unix_http_request(server.path(), "GET", "/big", {}, {}, 10'000, 64 * 1024);
  ASSERT_FALSE(big.ok()) << "answered " << big->body.size() << " bytes";
  EXPECT_EQ(big.status().code(), Code::kUnavailable);
  EXPECT_NE(big.status().message().find("over the limit"), std::string::npos)
      << big.status().message();
  auto small = unix_http_request(server.path(), "GET", "/small", {}, {}, 10'000, 64 * 1024);
  ASSERT_TRUE(small.ok()) << small.status().to_string();
  EXPECT_EQ(small->body.size(), 1000u);
  server.stop();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
