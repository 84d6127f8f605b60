// The smaller items of issue 13 (item 7): event streams end when their token is revoked,
// reads honour a token's environment scope, a ttl must be positive, two Authorization
// headers are refused, denials are audited once per token and route per minute with a
// count, and /health/ready tells an anonymous caller only whether it is ready.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

const char* k_hardening_envs =
    "  dev: {}\n"
    "  production:\n    approvals: 1\n";

class HardeningTest : public ServerFixture {
 protected:
  int connect_raw() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(cp_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  }
  // Reads until `needle` shows up, the peer closes, or `ms` pass; returns what came.
  static std::string read_until(int fd, const std::string& needle, int ms, bool* closed) {
    std::string got;
    *closed = false;
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) {
        *closed = true;
        break;
      }
      got.append(buf, static_cast<size_t>(n));
      if (!needle.empty() && got.find(needle) != std::string::npos) break;
    }
    return got;
  }
};

TEST_F(HardeningTest, AnEventStreamEndsOnceItsTokenIsRevoked) {
  start(k_hardening_envs);
  const std::string tok = token("watcher", Role::kViewer);
  const std::string id = tok.substr(6, tok.find('_', 6) - 6);
  const int fd = connect_raw();
  const std::string req =
      "GET /api/v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  bool closed = false;
  std::string got = read_until(fd, "ferry event stream", 5000, &closed);
  ASSERT_NE(got.find("ferry event stream"), std::string::npos) << got;
  ok_json(admin_, "DELETE", "/api/v1/tokens/" + id);
  // Bounded generously here; the stream checks every half second.
  got = read_until(fd, "", 10'000, &closed);
  close(fd);
  EXPECT_TRUE(closed) << "the stream outlived its token: " << got;
  EXPECT_NE(got.find("token revoked or expired"), std::string::npos) << got;
}

TEST_F(HardeningTest, ReadsHonourTheTokensEnvironmentScope) {
  start(k_hardening_envs);
  release("v1");
  ASSERT_TRUE(cp_->store().set_env_release({"web", "dev", "v0", "d-x", 1}).ok());
  Json dev = ok_json(admin_, "POST", "/api/v1/deployments",
                     Json{{"app", "web"}, {"env", "dev"}, {"release", "v1"}});
  Json prod = ok_json(admin_, "POST", "/api/v1/deployments",
                      Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  ASSERT_TRUE(prod.contains("id")) << prod.dump();
  const std::string scoped = token("dev-viewer", Role::kViewer, {"dev"});
  for (const char* path :
       {"/api/v1/deployments", "/api/v1/events", "/api/v1/audit", "/api/v1/apps"}) {
    auto r = call(scoped, "GET", path);
    ASSERT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->body.find(prod.value("id", "")), std::string::npos) << path << ": " << r->body;
    EXPECT_EQ(r->body.find("\"production\""), std::string::npos) << path << ": " << r->body;
  }
  EXPECT_EQ(call(scoped, "GET", "/api/v1/deployments/" + prod.value("id", ""))->status, 403);
  EXPECT_EQ(call(scoped, "GET", "/api/v1/deployments/" + dev.value("id", ""))->status, 200);
  EXPECT_EQ(call(scoped, "GET", "/api/v1/deployments?env=production")->status, 403);
  EXPECT_EQ(call(scoped, "GET", "/api/v1/approvals?app=web&env=production&release=v1")->status,
            403);
  EXPECT_EQ(call(scoped, "GET", "/api/v1/events?deployment=" + prod.value("id", ""))->status, 403);
  // The unscoped viewer still sees both.
  const std::string all = token("all-viewer", Role::kViewer);
  EXPECT_NE(call(all, "GET", "/api/v1/deployments")->body.find(prod.value("id", "")),
            std::string::npos);
}

TEST_F(HardeningTest, ATokensTtlMustBePositive) {
  start(k_hardening_envs);
  for (const Json& ttl : {Json(-1), Json(0), Json("3600000"), Json(1.5), Json(INT64_MAX)}) {
    auto r = call(admin_, "POST", "/api/v1/tokens",
                  Json{{"name", "t"}, {"role", "viewer"}, {"ttl_ms", ttl}});
    EXPECT_EQ(r->status, 400) << ttl.dump() << ": " << r->body;
  }
  Json t = ok_json(admin_, "POST", "/api/v1/tokens",
                   Json{{"name", "t"}, {"role", "viewer"}, {"ttl_ms", 60'000}});
  EXPECT_GT(t.value("expires_at_ms", int64_t{0}), 0) << t.dump();
  Json forever = ok_json(admin_, "POST", "/api/v1/tokens", Json{{"name", "f"}, {"role", "viewer"}});
  EXPECT_EQ(forever.value("expires_at_ms", int64_t{-1}), 0);
  EXPECT_FALSE(cp_->auth().create("x", Role::kViewer, {}, "test", 1, -1).ok());
}

TEST_F(HardeningTest, TwoAuthorizationHeadersAreRefused) {
  start(k_hardening_envs);
  const std::string viewer = token("v", Role::kViewer);
  const int fd = connect_raw();
  const std::string req = "GET /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                          viewer + "\r\nAuthorization: Bearer " + admin_ +
                          "\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  bool closed = false;
  const std::string got = read_until(fd, "\r\n\r\n", 5000, &closed);
  close(fd);
  EXPECT_EQ(got.rfind("HTTP/1.1 400", 0), 0u) << got;
}

TEST_F(HardeningTest, DenialsAreAuditedOncePerTokenAndRoutePerMinute) {
  start(k_hardening_envs);
  const std::string viewer = token("vic", Role::kViewer);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(
        call(viewer, "POST", "/api/v1/tokens", Json{{"name", "x"}, {"role", "admin"}})->status,
        403);
  EXPECT_EQ(call(viewer, "GET", "/api/v1/tokens")->status, 403);
  int denied_post = 0, denied_get = 0;
  Json audit;
  // The denial is audited as the answer goes out: the last one may land just after it.
  for (int i = 0; i < 100 && denied_get == 0; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    audit = ok_json(admin_, "GET", "/api/v1/audit");
    denied_post = denied_get = 0;
    for (const auto& e : audit["entries"]) {
      if (e.value("action", "") != "api.denied") continue;
      const std::string method = e["details"].value("method", "");
      denied_post += method == "POST";
      denied_get += method == "GET";
    }
  }
  for (const auto& e : audit["entries"])
    if (e.value("action", "") == "api.denied")
      EXPECT_EQ(e["details"].value("count", 0), 1) << e.dump();
  EXPECT_EQ(denied_post, 1);
  EXPECT_EQ(denied_get, 1);
  // The count: the entry after the minute carries every denial since the last one.
  DenialLimiter limiter;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(limiter.record("tok POST /x", t0), 1);
  for (int i = 1; i <= 4; ++i)
    EXPECT_FALSE(limiter.record("tok POST /x", t0 + std::chrono::seconds(i * 10)).has_value());
  EXPECT_EQ(limiter.record("other POST /x", t0), 1);
  EXPECT_EQ(limiter.record("tok POST /x", t0 + std::chrono::seconds(61)), 5);
}

TEST_F(HardeningTest, AnonymousReadinessSaysReadyOrNotAndNothingElse) {
  before_start_ = [this] {
    std::ofstream(dir_ / "box.token") << "box-token-0123456789abcdef\n";
    std::filesystem::permissions(
        dir_ / "box.token",
        std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
        std::filesystem::perm_options::replace);
  };
  start("  dev:\n    agents: [box]\nagents:\n  box:\n    address: 127.0.0.1:9\n    token_file: " +
        (std::filesystem::temp_directory_path() /
         ("ferry-server-test-" + std::to_string(getpid()) +
          "-AnonymousReadinessSaysReadyOrNotAndNothingElse") /
         "box.token")
            .string() +
        "\n");
  auto anon = call("", "GET", "/health/ready");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 503) << anon->body;
  EXPECT_EQ(anon->body, "{\"ok\":false}");
  auto detailed = call(admin_, "GET", "/health/ready");
  EXPECT_EQ(detailed->status, 503);
  EXPECT_NE(detailed->body.find("127.0.0.1:9"), std::string::npos) << detailed->body;
  // A bad token is treated as none.
  EXPECT_EQ(call("ferry_0000_bad", "GET", "/health/ready")->body, "{\"ok\":false}");
}

}  // namespace
}  // namespace ferry::testing
