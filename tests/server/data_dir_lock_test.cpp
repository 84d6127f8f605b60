// One server per data dir and store (issue 16, item 5): a second `ferry server` on the same
// store refuses to start, names the lock and the other server; a dead server's lock is gone.
#include "server/data_dir_lock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "server_fixture.h"

namespace ferry {
namespace {

class DataDirLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / random_id("ferry-lock-");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(DataDirLockTest, ASecondHolderIsRefusedNamingTheLockAndTheOwner) {
  const std::string path = (dir_ / "server.lock").string();
  auto first = DataDirLock::acquire(path);
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(first->describe_owner("127.0.0.1:7070").ok());
  auto second = DataDirLock::acquire(path);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(path), std::string::npos) << second.status().message();
  EXPECT_NE(second.status().message().find("pid " + std::to_string(getpid())), std::string::npos)
      << second.status().message();
  EXPECT_NE(second.status().message().find("listening on 127.0.0.1:7070"), std::string::npos)
      << second.status().message();
  // Released with its owner: the next one gets it.
  { DataDirLock gone = std::move(*first); }
  EXPECT_TRUE(DataDirLock::acquire(path).ok());
}

TEST_F(DataDirLockTest, AKilledOwnersLockIsFreeWithoutCleanup) {
  const std::string path = (dir_ / "server.lock").string();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto l = DataDirLock::acquire(path);
    const char ok = l.ok() ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    while (true) pause();
  }
  close(ready[1]);
  char ok = 0;
  ASSERT_EQ(read(ready[0], &ok, 1), 1);
  close(ready[0]);
  ASSERT_EQ(ok, 'y');
  auto refused = DataDirLock::acquire(path);
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("pid " + std::to_string(child)), std::string::npos)
      << refused.status().message();
  kill(child, SIGKILL);
  int st = 0;
  waitpid(child, &st, 0);
  // The kernel dropped the dead process's lock; the stale file changes nothing.
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_TRUE(DataDirLock::acquire(path).ok());
}

TEST_F(DataDirLockTest, AnUnwritableLockPathIsAnErrorNamingIt) {
  auto r = DataDirLock::acquire((dir_ / "no-such-dir" / "server.lock").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no-such-dir"), std::string::npos);
}

class SecondServerTest : public testing::ServerFixture {
 protected:
  Result<std::unique_ptr<ControlPlane>> second(const std::string& config) {
    ServerOptions o;
    o.config_path = config;
    o.local_agent = false;
    o.listen = "127.0.0.1:0";
    o.log_file = (dir_ / "second.log").string();
    return ControlPlane::create(o);
  }
};

TEST_F(SecondServerTest, ASecondServerOnTheSameDataDirRefusesToStart) {
  start("  dev: {}\n");
  release("v1");
  const auto audit_before = cp_->store().audit_head();
  ASSERT_TRUE(audit_before.ok());
  auto other = second((dir_ / "ferry.yaml").string());
  ASSERT_FALSE(other.ok());
  const std::string msg = other.status().message();
  EXPECT_EQ(other.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(msg.find((dir_ / "data" / "server.lock").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("listening on " + cp_->address()), std::string::npos) << msg;
  // It changed nothing: no audit entry of its own, the first server still answers.
  auto audit_after = cp_->store().audit_head();
  ASSERT_TRUE(audit_after.ok());
  EXPECT_EQ(audit_after->seq, audit_before->seq);
  ok_json(admin_, "GET", "/api/v1/apps/web/releases");
  // Once the first is gone, a server starts on the same data dir.
  cp_->stop();
  cp_.reset();
  auto next = second((dir_ / "ferry.yaml").string());
  EXPECT_TRUE(next.ok()) << next.status().message();
}

TEST_F(SecondServerTest, ASecondServerWithItsOwnDataDirButTheSameSqliteStoreRefusesToStart) {
  start("  dev: {}\n");
  // Same store, another data dir: the lock beside the database refuses it.
  std::ifstream in(dir_ / "ferry.yaml");
  std::string yaml((std::istreambuf_iterator<char>(in)), {});
  const std::string data = (dir_ / "data").string();
  yaml.replace(yaml.find(data), data.size(), (dir_ / "data2").string());
  std::ofstream(dir_ / "ferry2.yaml") << yaml;
  auto other = second((dir_ / "ferry2.yaml").string());
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.status().message().find((dir_ / "ferry.db.server-lock").string()),
            std::string::npos)
      << other.status().message();
}

}  // namespace
}  // namespace ferry
