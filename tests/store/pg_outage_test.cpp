// PostgreSQL restarts under a PgStore: while it is down every call answers kUnavailable
// at once with a message that says so (what the API turns into a 503); once it is back
// the same store reconnects by itself, with nothing lost that had been committed.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/pg_cluster.h"
#include "store/store.h"
#include "test_skip.h"

namespace ferry {
namespace {

TEST(PgOutage, CallsFailFastWhileDownAndTheStoreReconnectsAfterARestart) {
  if (testing::pg_bindir().empty()) FERRY_SKIP_OR_FAIL("PostgreSQL is not installed");
  testing::PgCluster pg;  // its own cluster: this test stops it
  Status up = pg.start();
  ASSERT_TRUE(up.ok()) << up.to_string();
  ASSERT_TRUE(pg.create_database("outage").ok());
  auto s = open_store(pg.url("outage"));
  ASSERT_TRUE(s.ok()) << s.status().to_string();
  auto& store = **s;
  ASSERT_TRUE(store.create_release({.app = "web", .version = "v1", .created_at_ms = 1}).ok());

  ASSERT_TRUE(pg.stop().ok());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 20; ++i) {
    auto r = store.get_release("web", "v1");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().to_string();
    EXPECT_NE(r.status().message().find("PostgreSQL"), std::string::npos) << r.status().message();
  }
  Status h = store.health();
  EXPECT_EQ(h.code(), Code::kUnavailable);
  // Twenty calls during the outage wait on no connect timeout each: the backoff answers.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));

  Status again = pg.start();  // the same data and port
  ASSERT_TRUE(again.ok()) << again.to_string();
  // Back within the backoff's cap (5 s) plus slack for a slow machine.
  Result<ReleaseRecord> r = not_found("not yet");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    r = store.get_release("web", "v1");
    if (r.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->version, "v1");
  EXPECT_TRUE(store.health().ok());
  EXPECT_TRUE(store.create_release({.app = "web", .version = "v2", .created_at_ms = 2}).ok());
}

}  // namespace
}  // namespace ferry
