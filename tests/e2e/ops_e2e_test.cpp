// Operations end to end, with real binaries: a backup taken while the server runs restores
// after the store is lost (the disaster-recovery runbook, timed), and `ferry diff` tells
// environments apart by what really runs in them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "e2e/e2e_env.h"

namespace ferry::e2e {
namespace {

const std::string kOpsApp =
    demo_app({.instances = 1, .stop_grace = "2s", .progress_deadline = "15s"});

TEST(OpsE2E, BackupTakenWhileServingRestoresAfterTheStoreIsLost) {
  Cluster c("dr", kOpsApp);
  c.start_server();
  c.release("v1");
  c.release("v2");
  Json secret{{"value", "s3cr3t-value-for-drill"}};
  ASSERT_TRUE(c.api("PUT", "/api/v1/apps/web/envs/dev/secrets/DB_PASSWORD", &secret).ok());
  ASSERT_EQ(c.wait_final(c.deploy("v1", "dev")).value("state", ""), "succeeded") << c.log();

  // Online: the server keeps running while the copy is made.
  int rc = 0;
  const std::string made = c.cli("--json backup create --config " + c.config(), &rc);
  ASSERT_EQ(rc, 0) << made;
  auto mj = parse_json(made);
  ASSERT_TRUE(mj.ok()) << made;
  const std::string backup = mj->value("dir", "");
  ASSERT_FALSE(backup.empty());
  ASSERT_EQ(c.wait_final(c.deploy("v2", "dev")).value("state", ""),
            "succeeded");  // after the backup

  // No restore over a live server.
  std::string out = c.cli("backup restore " + backup + " --config " + c.config(), &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("running"), std::string::npos) << out;

  // The store is lost.
  c.stop_server();
  const auto data = c.dir() / "data";
  for (const char* f : {"ferry.db", "ferry.db-wal", "ferry.db-shm"})
    std::filesystem::remove(data / f);
  const auto t0 = std::chrono::steady_clock::now();
  out = c.cli("backup restore " + backup + " --config " + c.config(), &rc);
  const double restore_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(rc, 0) << out;
  std::cout << "[ measure ] restore of the store from a backup: " << restore_s << " s\n";
  c.start_server();

  // What the backup held is back: v1's deployment, the secret, an unbroken audit chain.
  auto deps = c.api("GET", "/api/v1/deployments?app=web");
  ASSERT_TRUE(deps.ok());
  std::set<std::string> releases;
  for (const auto& d : (*deps)["deployments"]) releases.insert(d.value("release", ""));
  EXPECT_TRUE(releases.count("v1")) << deps->dump(2);
  EXPECT_FALSE(releases.count("v2")) << "the deployment made after the backup is gone";
  out = c.cli("secrets list web --env dev", &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("DB_PASSWORD"), std::string::npos) << out;
  out = c.cli("audit verify", &rc);
  EXPECT_EQ(rc, 0) << out;
  // The agent still runs v2; deploying it again brings the record in line.
  EXPECT_EQ(c.wait_final(c.deploy("v2", "dev")).value("state", ""), "succeeded") << c.log();
  out = c.cli("backup drill --config " + c.config(), &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("restored and checked"), std::string::npos) << out;
}

TEST(OpsE2E, DiffTellsEnvironmentsApartByWhatRuns) {
  // prod needs no scan (these releases have no source) and has its own router port.
  const std::string app = std::string(kOpsApp) +
                          "    environments:\n      prod: {port: " + std::to_string(free_port()) +
                          "}\n";
  Cluster c("diff", app, "  dev: {}\n  prod: {scan: optional}\n");
  c.start_server();
  c.release("v1");
  ASSERT_EQ(c.wait_final(c.deploy("v1", "dev")).value("state", ""), "succeeded") << c.log();
  int rc = 0;
  std::string out = c.cli("diff dev prod --config " + c.config(), &rc);
  EXPECT_EQ(rc, 1) << out;  // prod runs nothing yet
  EXPECT_NE(out.find("! web"), std::string::npos) << out;
  EXPECT_NE(out.find("~ web          port"), std::string::npos) << out;  // declared
  ASSERT_EQ(c.wait_final(c.deploy("v1", "prod")).value("state", ""), "succeeded") << c.log();
  out = c.cli("--json diff dev prod --config " + c.config(), &rc);
  EXPECT_EQ(rc, 0) << out;
  auto j = parse_json(out);
  ASSERT_TRUE(j.ok()) << out;
  EXPECT_FALSE((*j)["drift"].get<bool>());
  // A secret only in dev is drift again.
  Json secret{{"value", "x-only-in-dev-1"}};
  ASSERT_TRUE(c.api("PUT", "/api/v1/apps/web/envs/dev/secrets/ONLY_DEV", &secret).ok());
  out = c.cli("diff dev prod --config " + c.config(), &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("ONLY_DEV"), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::e2e
