// The store's files are the control plane's (issue 13, item 7): the database and its
// -wal and -shm files are 0600 whatever the umask, also for a database made before.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "store/store.h"

namespace ferry {
namespace {

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

TEST(StorePermissions, TheDatabaseAndItsWalAndShmAre0600) {
  const auto dir = std::filesystem::temp_directory_path() / random_id("ferry-store-perm-");
  std::filesystem::create_directories(dir);
  const auto db = dir / "ferry.db";
  const mode_t old_umask = ::umask(0022);
  {
    auto s = open_store("sqlite:" + db.string());
    ASSERT_TRUE(s.ok()) << s.status().to_string();
    ReleaseRecord r;
    r.app = "web";
    r.version = "v1";
    ASSERT_TRUE((*s)->create_release(r).ok());
    EXPECT_EQ(mode_of(db), 0600u);
    EXPECT_EQ(mode_of(dir / "ferry.db-wal"), 0600u);
    EXPECT_EQ(mode_of(dir / "ferry.db-shm"), 0600u);
  }
  // A database left readable by an older version is tightened when opened.
  ::chmod(db.c_str(), 0644);
  {
    auto s = open_store("sqlite:" + db.string());
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(mode_of(db), 0600u);
  }
  ::umask(old_umask);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry
