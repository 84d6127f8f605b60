// The dashboard's assets as a real ControlPlane serves them over a loopback socket:
// each embedded file at its path with its type, ETag revalidation, the security
// headers; and rules the files themselves must keep (no inline script or style, no
// innerHTML, nothing loaded from another site).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "common/http_client.h"
#include "core/agent_api.h"
#include "free_port.h"
#include "server/control_plane.h"
#include "server/web_assets.h"

namespace ferry::testing {
namespace {

uint16_t free_port() {
  return free_loopback_port();
}

std::string header(const HttpResponse& r, std::string name) {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  name = lower(name);
  for (const auto& [k, v] : r.headers)
    if (lower(k) == name) return v;
  return "";
}

// An in-process `ferry server` (no agents: the dashboard needs none) on a loopback port.
class DashboardRoutes : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-web-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    const uint16_t port = free_port();
    ASSERT_NE(port, 0);
    std::ofstream(dir_ / "ferry.yaml")
        << "version: 1\nserver:\n  listen: 127.0.0.1:" << port
        << "\n  store: sqlite:" << (dir_ / "ferry.db").string()
        << "\n  data_dir: " << (dir_ / "data").string() << "\n  start_local_agent: false\n"
        << "environments:\n  dev: {}\napps:\n  web:\n    port: " << free_port()
        << "\n    run:\n      command: [\"/bin/true\"]\n    strategy: immediate\n";
    ServerOptions o;
    o.config_path = (dir_ / "ferry.yaml").string();
    o.local_agent = false;
    o.log_file = (dir_ / "server.log").string();
    auto cp = ControlPlane::create(o);
    ASSERT_TRUE(cp.ok()) << cp.status().message();
    cp_ = std::move(*cp);
    Status s = cp_->start();
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void TearDown() override {
    if (cp_) cp_->stop();
    cp_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  Result<HttpResponse> get(const std::string& target, const std::string& if_none_match = "",
                           const std::string& token = "") {
    HttpClient c(Endpoint{"127.0.0.1", cp_->port()});
    if (!if_none_match.empty()) c.set_header("If-None-Match", if_none_match);
    if (!token.empty()) c.set_header("Authorization", "Bearer " + token);
    return c.request("GET", target);
  }

  std::filesystem::path dir_;
  std::unique_ptr<ControlPlane> cp_;
};

TEST_F(DashboardRoutes, EveryAssetIsServedWithItsTypeAndSecurityHeaders) {
  ASSERT_GE(web_assets().size(), 5u);
  for (const WebAsset& a : web_assets()) {
    SCOPED_TRACE(std::string(a.path));
    auto r = get(std::string(a.path));
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->content_type, a.content_type);
    EXPECT_EQ(r->body, a.data);
    const std::string csp = header(*r, "Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(header(*r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header(*r, "Referrer-Policy"), "no-referrer");
    EXPECT_EQ(header(*r, "Cache-Control"), "no-cache");
    EXPECT_EQ(header(*r, "ETag"), "\"" + std::string(a.sha256.substr(0, 32)) + "\"");
  }
}

TEST_F(DashboardRoutes, RootIsIndexAndAssetsNeedNoToken) {
  const WebAsset* index = find_web_asset("/index.html");
  ASSERT_NE(index, nullptr);
  auto r = get("/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, index->data);
  EXPECT_EQ(r->content_type, "text/html; charset=utf-8");
  auto js = get("/js/app.js");
  ASSERT_TRUE(js.ok());
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  auto missing = get("/js/nope.js");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
}

TEST_F(DashboardRoutes, MatchingETagGives304WithoutBody) {
  auto first = get("/js/app.js");
  ASSERT_TRUE(first.ok());
  const std::string etag = header(*first, "ETag");
  ASSERT_FALSE(etag.empty());
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    SCOPED_TRACE(inm);
    auto r = get("/js/app.js", inm);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 304);
    EXPECT_TRUE(r->body.empty());
    EXPECT_EQ(header(*r, "ETag"), etag);
  }
  auto stale = get("/js/app.js", "\"0123\"");
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->status, 200);
  EXPECT_FALSE(stale->body.empty());
}

TEST_F(DashboardRoutes, DashboardMetaNeedsATokenAndGivesTheLatencyBucketsAndFinalStates) {
  auto anon = get("/api/v1/dashboard");
  ASSERT_TRUE(anon.ok());
  EXPECT_EQ(anon->status, 401);
  auto viewer = cp_->auth().create("watcher", Role::kViewer, {}, "test", 1);
  ASSERT_TRUE(viewer.ok()) << viewer.status().message();
  auto r = get("/api/v1/dashboard", "", viewer->token);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = parse_json(r->body);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["latency_buckets_ms"].get<std::vector<double>>(), latency_buckets_ms());
  // The page's only source of "finished": exactly the states is_final() names.
  std::vector<std::string> final_states;
  for (auto s : all_deployment_states())
    if (is_final(s)) final_states.emplace_back(to_string(s));
  EXPECT_EQ((*j)["final_states"].get<std::vector<std::string>>(), final_states);
  EXPECT_EQ(final_states,
            (std::vector<std::string>{"succeeded", "failed", "rolled_back", "aborted"}));
}

TEST(WebAssets, TableIsSortedAndHashesMatch) {
  std::string previous;
  for (const WebAsset& a : web_assets()) {
    EXPECT_LT(previous, a.path);
    previous = std::string(a.path);
    EXPECT_EQ(sha256_hex(a.data), a.sha256) << a.path;
    EXPECT_EQ(find_web_asset(a.path), &a);
  }
  EXPECT_EQ(find_web_asset("/nope"), nullptr);
}

// What the CSP would block (or what would make it pointless) must not be in the files.
TEST(WebAssets, NoInlineCodeNoInnerHtmlNothingFromElsewhere) {
  for (const WebAsset& a : web_assets()) {
    SCOPED_TRACE(std::string(a.path));
    const std::string_view d = a.data;
    const bool html = a.content_type.starts_with("text/html");
    const bool js = a.content_type.starts_with("text/javascript");
    const bool css = a.content_type.starts_with("text/css");
    if (html) {
      // every <script> has a src; no inline handlers or styles
      for (size_t p = d.find("<script"); p != std::string_view::npos;
           p = d.find("<script", p + 1)) {
        const size_t end = d.find('>', p);
        ASSERT_NE(end, std::string_view::npos);
        EXPECT_NE(d.substr(p, end - p).find(" src="), std::string_view::npos)
            << d.substr(p, end - p);
      }
      EXPECT_EQ(d.find("<style"), std::string_view::npos);
      EXPECT_EQ(d.find(" style="), std::string_view::npos);
      EXPECT_EQ(d.find(" onclick="), std::string_view::npos);
      EXPECT_EQ(d.find(" onload="), std::string_view::npos);
    }
    if (js) {
      EXPECT_EQ(d.find("innerHTML"), std::string_view::npos);
      EXPECT_EQ(d.find("outerHTML"), std::string_view::npos);
      EXPECT_EQ(d.find("insertAdjacentHTML"), std::string_view::npos);
      EXPECT_EQ(d.find("eval("), std::string_view::npos);
      EXPECT_EQ(d.find("localStorage"),
                std::string_view::npos);  // the token stays in sessionStorage
    }
    if (html || js || css) {
      EXPECT_EQ(d.find("http://"), std::string_view::npos);
      EXPECT_EQ(d.find("https://"), std::string_view::npos);
    }
  }
}

}  // namespace
}  // namespace ferry::testing
