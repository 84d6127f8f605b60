// API input an attacker (or a broken script) sends: numbers out of range, wrong types,
// bodies that are not objects. Every one is a 400 that names the field or the shape and
// never quotes the JSON library; unknown apps are 404.
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

class ApiInputTest : public ServerFixture {
 protected:
  void SetUp() override { start("  dev: {}\n"); }
  HttpResponse raw(const std::string& method, const std::string& target, const std::string& body) {
    HttpClient c(Endpoint{"127.0.0.1", cp_->port()});
    c.set_header("Authorization", "Bearer " + admin_);
    auto r = c.request(method, target, body);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : HttpResponse{};
  }
  static void expect_clean_400(const HttpResponse& r, const std::string& what,
                               const std::string& must_name) {
    EXPECT_EQ(r.status, 400) << what << ": " << r.body;
    EXPECT_NE(r.body.find(must_name), std::string::npos) << what << ": " << r.body;
    for (const char* leak :
         {"json.exception", "out_of_range", "parse_error", "type_error", "handler failed", "[json"})
      EXPECT_EQ(r.body.find(leak), std::string::npos)
          << what << " leaks '" << leak << "': " << r.body;
  }
};

TEST_F(ApiInputTest, NumbersOutOfRangeAre400NamingTheField) {
  release("v1");
  expect_clean_400(raw("POST", "/api/v1/releases", R"({"app":"web","version":1e400})"), "releases",
                   "'version'");
  expect_clean_400(
      raw("POST", "/api/v1/deployments", R"({"app":"web","env":"dev","release":"v1","x":1e400})"),
      "deployments", "'x'");
  expect_clean_400(raw("POST", "/api/v1/approvals", R"({"app":"web","env":-1e999})"), "approvals",
                   "'env'");
  expect_clean_400(raw("POST", "/api/v1/apps/web/envs/dev/rollback", R"({"release":2e308})"),
                   "rollback", "'release'");
  // Nested: the path to the field.
  expect_clean_400(raw("POST", "/api/v1/releases", R"({"app":"web","env":{"A":1e400}})"), "nested",
                   "'env.A'");
  // Plain syntax errors: the byte, not the library's text.
  expect_clean_400(raw("POST", "/api/v1/deployments", R"({"app":"web",)"), "truncated", "byte");
  // Integers too big for 64 bits become doubles in range: accepted by the parser, then the
  // type check names the field.
  expect_clean_400(raw("POST", "/api/v1/deployments",
                       R"({"app":"web","env":"dev","release":123456789012345678901234567890})"),
                   "huge integer", "'release'");
}

TEST_F(ApiInputTest, WrongTypesAndNonObjectBodiesAre400) {
  release("v1");
  for (const char* body : {R"(["web","dev","v1"])", R"("web")", "42", "null", "true"}) {
    expect_clean_400(raw("POST", "/api/v1/deployments", body), body, "JSON object");
    expect_clean_400(raw("POST", "/api/v1/releases", body), body, "JSON object");
    expect_clean_400(raw("POST", "/api/v1/approvals", body), body, "JSON object");
    expect_clean_400(raw("POST", "/api/v1/apps/web/envs/dev/rollback", body), body, "JSON object");
  }
  expect_clean_400(
      raw("POST", "/api/v1/deployments", R"({"app":"web","env":["dev"],"release":"v1"})"),
      "env list", "'env'");
  expect_clean_400(raw("POST", "/api/v1/releases", R"({"app":"web","version":"v2","env":[1]})"),
                   "env list", "'env'");
  expect_clean_400(
      raw("POST", "/api/v1/releases", R"({"app":"web","version":"v2","override_scan":"yes"})"),
      "override_scan", "'override_scan'");
  expect_clean_400(raw("POST", "/api/v1/approvals",
                       R"({"app":"web","env":"dev","release":"v1","comment":{"a":1}})"),
                   "comment", "'comment'");
  // Nothing was created by any of them.
  auto list = cp_->store().list_deployments({.app = "web"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
  auto rels = cp_->store().list_releases("web", 10);
  ASSERT_TRUE(rels.ok());
  EXPECT_EQ(rels->size(), 1u);
}

TEST_F(ApiInputTest, ReleasesOfAnUnknownAppAre404) {
  EXPECT_EQ(raw("GET", "/api/v1/apps/nope/releases", "").status, 404);
  EXPECT_EQ(raw("GET", "/api/v1/apps/web/releases", "").status, 200);
}

}  // namespace
}  // namespace ferry::testing
