// `ferry deploy --wait --timeout D` against a real server: the exit codes a pipeline
// gates on (0 succeeded, 3 rolled back, 4 refused by a gate, 5 timed out, 2 error).
#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kImmediateApp = demo_app(
    {.instances = 1, .stop_grace = "1s", .progress_deadline = "2s"}, R"(    strategy: immediate
)");

const char* kEnvs =
    "  dev: {}\n"
    "  production:\n    requires: [dev]\n    scan: optional\n"  // about exit codes, not the scan
                                                                // gate
    "  staging:\n    approvals: 1\n    scan: optional\n";

TEST(DeployWaitE2E, ExitCodesTellAPipelineHowTheDeploymentEnded) {
  Cluster c("deploy-wait", kImmediateApp, kEnvs);
  c.start_server();
  c.release("v1");
  c.release("v2", Json{{"DEMO_SLOW_START_MS", "60000"}});  // never ready in time
  c.release("v3");

  int rc = -1;
  std::string out = c.cli("deploy web v1 --env dev --wait --timeout 60s", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("succeeded"), std::string::npos) << out;

  out = c.cli("deploy web v2 --env dev --wait --timeout 60s", &rc);
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("rolled_back"), std::string::npos) << out;

  // v3 never ran in dev: production's lifecycle gate refuses it.
  out = c.cli("deploy web v3 --env production --wait --timeout 60s", &rc);
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find("has not succeeded in dev"), std::string::npos) << out;

  // Staging waits for an approval that does not come.
  out = c.cli("deploy web v1 --env staging --wait --timeout 1500ms", &rc);
  EXPECT_EQ(rc, 5) << out;
  EXPECT_NE(out.find("timed out"), std::string::npos) << out;

  // Errors: a bad timeout, an unknown release, --timeout without --wait.
  out = c.cli("deploy web v1 --env dev --wait --timeout soon", &rc);
  EXPECT_EQ(rc, 2) << out;
  out = c.cli("deploy web v9 --env dev --wait", &rc);
  EXPECT_EQ(rc, 2) << out;
  out = c.cli("deploy web v1 --env dev --timeout 5s", &rc);
  EXPECT_NE(rc, 0) << out;

  // --json prints the final deployment for the pipeline to read.
  out = c.cli("--json deploy web v3 --env dev --wait --timeout 60s", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"state\": \"succeeded\""), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::e2e
