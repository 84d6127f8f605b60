// A release's own environment (issue 13, item 6): names checked as configuration.md says,
// loader variables refused unless the app allows them, ferry's own names refused, and the
// env shown by the API (release show) and in the audit entry.
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

class ReleaseEnvTest : public ServerFixture {
 protected:
  void SetUp() override {
    app_run_extra_ = "      allow_loader_env: [LD_LIBRARY_PATH]\n";
    start("  dev: {}\n");
  }
  int create(const std::string& version, const Json& env, std::string* body = nullptr) {
    auto r = call(admin_, "POST", "/api/v1/releases",
                  Json{{"app", "web"}, {"version", version}, {"env", env}});
    EXPECT_TRUE(r.ok());
    if (body) *body = r->body;
    return r->status;
  }
};

TEST_F(ReleaseEnvTest, NamesAreCheckedAndLoaderVariablesRefused) {
  std::string body;
  for (const char* bad : {"A B", "1ABC", "A=B", "", "A-B", "Ä"}) {
    EXPECT_EQ(create("v1", Json{{bad, "x"}}, &body), 400) << bad << ": " << body;
    EXPECT_NE(body.find("not a variable name"), std::string::npos) << body;
  }
  EXPECT_EQ(create("v1", Json{{"LD_PRELOAD", "/tmp/evil.so"}}, &body), 403) << body;
  EXPECT_NE(body.find("allow_loader_env"), std::string::npos) << body;
  for (const char* loader : {"LD_AUDIT", "GCONV_PATH", "GLIBC_TUNABLES", "BASH_ENV"})
    EXPECT_EQ(create("v1", Json{{loader, "x"}}), 403) << loader;
  for (const char* own : {"PORT", "FERRY_APP", "FERRY_RELEASE"})
    EXPECT_EQ(create("v1", Json{{own, "x"}}), 400) << own;
  EXPECT_EQ(create("v1", Json{{"A", std::string("x\0y", 3)}}), 400);
  EXPECT_EQ(create("v1", Json{{"A", 5}}), 400);
  // Nothing of the refused ones was recorded.
  EXPECT_EQ(call(admin_, "GET", "/api/v1/apps/web/releases/v1")->status, 404);
  // The app allows LD_LIBRARY_PATH by name.
  EXPECT_EQ(create("v1", Json{{"LD_LIBRARY_PATH", "/opt/web/lib"}, {"WORKERS", "4"}}), 201);
}

TEST_F(ReleaseEnvTest, TheEnvIsShownByTheApiAndAudited) {
  ASSERT_EQ(create("v1", Json{{"FEATURE_X", "on"}, {"WORKERS", "4"}}), 201);
  Json r = ok_json(admin_, "GET", "/api/v1/apps/web/releases/v1");
  EXPECT_EQ(r["env"], (Json{{"FEATURE_X", "on"}, {"WORKERS", "4"}})) << r.dump();
  Json list = ok_json(admin_, "GET", "/api/v1/apps/web/releases");
  EXPECT_EQ(list["releases"][0]["env"].value("FEATURE_X", ""), "on");
  bool audited = false;
  const Json audit = ok_json(admin_, "GET", "/api/v1/audit");
  for (const auto& e : audit["entries"])
    audited |= e.value("action", "") == "release.create" &&
               e["details"]["env"].value("FEATURE_X", "") == "on";
  EXPECT_TRUE(audited);
}

}  // namespace
}  // namespace ferry::testing
