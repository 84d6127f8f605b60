// A store whose file is damaged admits it: the quick check at start finds garbage written
// into an audit page, /health/ready reports it, new deployments are refused with the
// restore steps, and `ferry store check` (check_store) lists the damage.
#include <sqlite3.h>

#include <fstream>
#include <random>

#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

// Writes random bytes over most of one leaf page of `table` (past its 8-byte header).
void corrupt_a_page_of(const std::filesystem::path& db_path, const std::string& table) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_path.string().c_str(), &db), SQLITE_OK);
  int64_t root = 0, page_size = 0;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT rootpage FROM sqlite_master WHERE name = ?", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, table.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st) == SQLITE_ROW) root = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, nullptr);
  if (sqlite3_step(st) == SQLITE_ROW) page_size = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  // Everything into the main file, so the damage is not hidden behind the WAL.
  sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  ASSERT_GT(root, 0);
  ASSERT_GT(page_size, 0);
  std::fstream f(db_path, std::ios::in | std::ios::out | std::ios::binary);
  auto page_offset = [&](int64_t page) { return (page - 1) * page_size + (page == 1 ? 100 : 0); };
  // An interior page (0x05) points at its right-most child in bytes 8-11: a leaf of the table.
  int64_t page = root;
  unsigned char header[12] = {};
  f.seekg(page_offset(page));
  f.read(reinterpret_cast<char*>(header), sizeof header);
  if (header[0] == 0x05)
    page = (int64_t{header[8]} << 24) | (header[9] << 16) | (header[10] << 8) | header[11];
  std::mt19937 rng(7);
  std::string garbage(static_cast<size_t>(page_size - 16), '\0');
  for (auto& c : garbage) c = static_cast<char>(rng());
  f.seekp(page_offset(page) + 8);
  f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  ASSERT_TRUE(f.good());
}

class StoreCorruptionTest : public ServerFixture {
 protected:
  void SetUp() override { start("  dev: {}\n"); }
  void restart_server() {
    if (cp_) cp_->stop();
    cp_.reset();
    ServerOptions o;
    o.config_path = (dir_ / "ferry.yaml").string();
    o.local_agent = false;
    o.listen = "127.0.0.1:0";
    o.log_file = (dir_ / "server2.log").string();
    auto cp = ControlPlane::create(o);
    ASSERT_TRUE(cp.ok()) << cp.status().message();
    cp_ = std::move(*cp);
    ASSERT_TRUE(cp_->start().ok());
  }
};

TEST_F(StoreCorruptionTest, GarbageInAnAuditPageIsFoundAtStartAndStopsDeployments) {
  release("v1");
  // Enough audit entries to fill several pages.
  for (int i = 0; i < 400; ++i)
    cp_->audit("test", "probe", "web", "dev", "", "",
               Json{{"n", i}, {"padding", std::string(200, 'x')}});
  const auto db = dir_ / "ferry.db";
  auto sound = check_store("sqlite:" + db.string());
  ASSERT_TRUE(sound.ok()) << sound.status().message();
  EXPECT_TRUE(sound->empty());
  cp_->stop();
  cp_.reset();
  corrupt_a_page_of(db, "audit");
  restart_server();

  // With a token: an anonymous caller learns only ready or not (tests/server/hardening_test).
  auto ready = call(admin_, "GET", "/health/ready");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("corrupted"), std::string::npos) << ready->body;
  EXPECT_NE(ready->body.find("ferry store check"), std::string::npos) << ready->body;

  auto d = call(admin_, "POST", "/api/v1/deployments",
                Json{{"app", "web"}, {"env", "dev"}, {"release", "v1"}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->status, 503) << d->body;
  EXPECT_NE(d->body.find("new deployments are stopped"), std::string::npos) << d->body;
  EXPECT_NE(d->body.find("backup"), std::string::npos) << d->body;
  auto list = cp_->store().list_deployments({.app = "web"});
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());

  auto problems = check_store("sqlite:" + db.string());
  ASSERT_TRUE(problems.ok()) << problems.status().message();
  EXPECT_FALSE(problems->empty());
}

TEST(CheckStore, MissingFileIsNotFoundAndNeverCreated) {
  const auto path = std::filesystem::temp_directory_path() / "ferry-no-such-store.db";
  std::filesystem::remove(path);
  auto r = check_store("sqlite:" + path.string());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(path));
}

}  // namespace
}  // namespace ferry::testing
