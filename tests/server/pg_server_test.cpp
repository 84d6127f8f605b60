// The control plane on PostgreSQL: it starts, serves, and during a PostgreSQL restart
// answers 503 with a clear message instead of "invalid token" or a 500, then recovers
// by itself.
#include <chrono>
#include <thread>

#include "server_fixture.h"
#include "store/pg_cluster.h"
#include "test_skip.h"

namespace ferry {
namespace {

class PgServer : public testing::ServerFixture {};

TEST_F(PgServer, RunsOnPostgresAnswers503DuringAnOutageAndRecovers) {
  if (testing::pg_bindir().empty()) FERRY_SKIP_OR_FAIL("PostgreSQL is not installed");
  testing::PgCluster pg;
  Status up = pg.start();
  ASSERT_TRUE(up.ok()) << up.to_string();
  ASSERT_TRUE(pg.create_database("server").ok());
  tweak_options_ = [&pg](ServerOptions& o) { o.store_url = pg.url("server"); };
  start("  dev: {}\n");
  unscanned_release("v1");
  auto before = ok_json(admin_, "GET", "/api/v1/apps/web/releases");
  ASSERT_EQ(before["releases"].size(), 1u) << before.dump();

  ASSERT_TRUE(pg.stop().ok());
  auto down = call(admin_, "GET", "/api/v1/apps/web/releases");
  ASSERT_TRUE(down.ok());
  EXPECT_EQ(down->status, 503) << down->body;
  EXPECT_NE(down->body.find("store is unavailable"), std::string::npos) << down->body;
  auto ready = call("", "GET", "/health/ready");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503) << ready->body;

  ASSERT_TRUE(pg.start().ok());
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = call(admin_, "GET", "/api/v1/apps/web/releases");
    status = r.ok() ? r->status : 0;
    if (status == 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(status, 200);
  // What was written before the outage is there, and the audit chain still verifies.
  auto verify = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_TRUE(verify.value("ok", false)) << verify.dump();
  cp_->stop();  // before the cluster goes away with this scope
  cp_.reset();
}

}  // namespace
}  // namespace ferry
