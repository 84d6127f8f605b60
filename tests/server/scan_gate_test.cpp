// The scan gate at deploy time (issue 13, item 1): an unscanned release cannot reach an
// environment that requires a scan; the admin override needs a reason and is audited; the
// gate's ignores come from the server, never from the release's tree; its answers carry no
// fingerprints; the server's data_dir is never scanned.
#include <cstdlib>

#include "scan/scanner.h"
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

const char* kGateEnvs =
    "  dev: {}\n"
    "  staging: {}\n"
    "  loose:\n    scan: optional\n"
    "  production:\n    requires: [dev]\n    approvals: 1\n";

const char* kAwsKey = "AKIAZ7QX3NB4KD2LP6WY";
const char* kAwsSecret = "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";

class ScanGateTest : public ServerFixture {
 protected:
  void SetUp() override {
    server_extra_ =
        "  scan_ignore_file: " +
        (std::filesystem::temp_directory_path() / ("ferry-scan-ignore-" + std::to_string(getpid())))
            .string() +
        "\n";
    ignore_file_ = server_extra_.substr(std::string("  scan_ignore_file: ").size());
    ignore_file_.pop_back();
    std::ofstream(ignore_file_) << "# the server's accepted findings\n";
    start(kGateEnvs);
  }
  void TearDown() override {
    std::filesystem::remove(ignore_file_);
    ServerFixture::TearDown();
  }
  std::filesystem::path leaky_tree(const std::string& name) {
    const auto src = dir_ / name;
    std::filesystem::create_directories(src);
    std::ofstream(src / "config.py")
        << "aws_key = \"" << kAwsKey << "\"\naws_secret = \"" << kAwsSecret << "\"\n";
    return src;
  }
  std::string ignore_file_;
};

Json deploy_body(const std::string& env, const std::string& rel) {
  return Json{{"app", "web"}, {"env", env}, {"release", rel}};
}

TEST_F(ScanGateTest, UnscannedReleaseIsRefusedWhereTheScanIsRequiredByDefault) {
  EXPECT_TRUE(cp_->config()->scan_required("staging"));     // not first in promotion order
  EXPECT_TRUE(cp_->config()->scan_required("production"));  // approvals
  EXPECT_FALSE(cp_->config()->scan_required("dev"));        // first, no approvals
  EXPECT_FALSE(cp_->config()->scan_required("loose"));      // scan: optional
  unscanned_release("v1");
  // The first environment without approvals takes it (scan optional there by default).
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments", deploy_body("dev", "v1"))->status, 201);
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments", deploy_body("loose", "v1"))->status, 201);
  // Staging refuses it, naming --source and the override.
  auto r = call(admin_, "POST", "/api/v1/deployments", deploy_body("staging", "v1"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 412) << r->body;
  EXPECT_NE(r->body.find("--source"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("--override-scan"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("not_scanned"), std::string::npos) << r->body;
  // Nothing was created.
  Json list = ok_json(admin_, "GET", "/api/v1/deployments?env=staging");
  EXPECT_TRUE(list["deployments"].empty()) << list.dump();
  // A scanned release passes.
  release("v2");
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments", deploy_body("staging", "v2"))->status, 201);
}

TEST_F(ScanGateTest, OnlyAnAdminWithAReasonOverridesAndTheOverrideIsAudited) {
  unscanned_release("v1");
  const std::string dep = token("dave", Role::kDeployer);
  Json body = deploy_body("staging", "v1");
  EXPECT_EQ(call(dep, "POST", "/api/v1/deployments", body)->status, 412);
  body["override_scan"] = true;
  body["reason"] = "emergency fix, scanned by hand";
  EXPECT_EQ(call(dep, "POST", "/api/v1/deployments", body)->status, 403);
  body["reason"] = "short";
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments", body)->status, 400);
  body["override_scan"] = "yes";
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments", body)->status, 400);
  body["override_scan"] = true;
  body["reason"] = "emergency fix, scanned by hand";
  Json d = ok_json(admin_, "POST", "/api/v1/deployments", body);
  ASSERT_TRUE(d.contains("id")) << d.dump();
  // The runner's own gate check honours the recorded override.
  d = wait_state(d["id"], [](const Json& j) {
    const std::string s = j.value("state", "");
    return s != "pending" && s != "waiting";
  });
  EXPECT_EQ(d.value("reason", "").find("scan status"), std::string::npos) << d.dump();
  bool override_audited = false, refusal_audited = false;
  const Json audit = ok_json(admin_, "GET", "/api/v1/audit");
  for (const auto& e : audit["entries"]) {
    override_audited |= e.value("action", "") == "deployment.scan_override" &&
                        e["details"].value("reason", "") == "emergency fix, scanned by hand";
    refusal_audited |= e.value("action", "") == "deployment.scan_refused";
  }
  EXPECT_TRUE(override_audited);
  EXPECT_TRUE(refusal_audited);
}

TEST_F(ScanGateTest, TheRunnerRefusesAStoredDeploymentWithoutAPassingScan) {
  // The runner refuses a deployment the store holds without a passing scan and without
  // an override (made by an older server, say).
  unscanned_release("v1");
  DeploymentRecord rec;
  rec.id = "d-old1";
  rec.app = "web";
  rec.env = "staging";
  rec.release = "v1";
  rec.strategy = "immediate";
  rec.plan = Json::array();
  rec.requested_by = "token:root";
  ASSERT_TRUE(
      cp_->store().create_deployment(rec, DeploymentEvent{.time_ms = 1, .type = EventType::kCreated}).ok());
  cp_->engine().poke();
  Json d = wait_state("d-old1", [](const Json& j) { return j.value("state", "") == "failed"; });
  EXPECT_NE(d.value("reason", "").find("scan status"), std::string::npos) << d.dump();
}

TEST_F(ScanGateTest, TheTreesOwnIgnoreFilesAreNotHonouredTheServersAre) {
  const auto src = leaky_tree("leaky");
  scan::ScanOptions o;
  o.no_default_ignore_file = true;
  auto found = scan::scan_path(src.string(), o);
  ASSERT_TRUE(found.ok());
  ASSERT_FALSE(found->findings.empty());
  std::string fps;
  for (const auto& f : found->findings) fps += f.fingerprint + "\n";
  // The deployer ignores their own findings in the tree: no effect.
  std::ofstream(src / ".ferryignore") << fps;
  std::ofstream(src / ".gitleaksignore") << fps;
  const std::string dep = token("dave", Role::kDeployer);
  auto r = call(dep, "POST", "/api/v1/releases",
                Json{{"app", "web"}, {"version", "v1"}, {"source", src.string()}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 412) << r->body;
  // No fingerprint (a hash of the secret) comes back, in any form.
  EXPECT_EQ(r->body.find("fingerprint"), std::string::npos) << r->body;
  for (const auto& f : found->findings) {
    const std::string hash = f.fingerprint.substr(f.fingerprint.rfind(':') + 1);
    EXPECT_EQ(r->body.find(hash), std::string::npos) << r->body;
  }
  EXPECT_EQ(r->body.find(kAwsSecret), std::string::npos);
  // Nor are inline allow comments written next to the secret.
  {
    const auto inline_src = dir_ / "inline";
    std::filesystem::create_directories(inline_src);
    std::ofstream(inline_src / "config.py")
        << "aws_key = \"" << kAwsKey << "\"  # ferry:allow\naws_secret = \"" << kAwsSecret
        << "\"  # gitleaks:allow\n";
    auto in = call(dep, "POST", "/api/v1/releases",
                   Json{{"app", "web"}, {"version", "v0"}, {"source", inline_src.string()}});
    EXPECT_EQ(in->status, 412) << in->body;
  }
  // The server's ignore file (ferry.yaml server.scan_ignore_file) is honoured.
  std::ofstream(ignore_file_, std::ios::app) << fps;
  Json rel = ok_json(dep, "POST", "/api/v1/releases",
                     Json{{"app", "web"}, {"version", "v2"}, {"source", src.string()}});
  EXPECT_EQ(rel.value("scan_status", ""), "clean") << rel.dump();
  auto listed = call(admin_, "GET", "/api/v1/apps/web/releases");
  EXPECT_EQ(listed->body.find("fingerprint"), std::string::npos);
}

TEST_F(ScanGateTest, TheDataDirIsNeverScanned) {
  const auto data = dir_ / "data";
  std::ofstream(data / "planted.env")
      << "aws_key=" << kAwsKey << "\naws_secret=" << kAwsSecret << "\n";
  // As a source, refused outright; also when FERRY_SCAN_ROOTS names it.
  setenv("FERRY_SCAN_ROOTS", data.c_str(), 1);
  auto r = call(admin_, "POST", "/api/v1/releases",
                Json{{"app", "web"}, {"version", "v1"}, {"source", data.string()}});
  unsetenv("FERRY_SCAN_ROOTS");
  EXPECT_EQ(r->status, 403) << r->body;
  EXPECT_NE(r->body.find("data_dir"), std::string::npos) << r->body;
  // Inside a source that holds it, the walk skips it: the planted secret is not found,
  // and secrets.key is not read.
  Json rel = ok_json(admin_, "POST", "/api/v1/releases",
                     Json{{"app", "web"}, {"version", "v2"}, {"source", dir_.string()}});
  EXPECT_EQ(rel.value("scan_status", ""), "clean") << rel.dump();
  // A link to it is the same directory.
  std::filesystem::create_directory_symlink(data, dir_ / "innocent");
  r = call(admin_, "POST", "/api/v1/releases",
           Json{{"app", "web"}, {"version", "v3"}, {"source", (dir_ / "innocent").string()}});
  EXPECT_EQ(r->status, 403) << r->body;
}

}  // namespace
}  // namespace ferry::testing
