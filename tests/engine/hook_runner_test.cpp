#include "engine/hook_runner.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/crypto.h"

namespace ferry {
namespace {

HookSpec sh(const std::string& script, int timeout_ms = 5000, int retries = 0) {
  HookSpec h;
  h.name = "test";
  h.command = {"/bin/sh", "-c", script};
  h.timeout_ms = timeout_ms;
  h.retries = retries;
  return h;
}

TEST(HookRunner, CapturesOutputAndPassesEnvironment) {
  Masker m;
  auto r = run_hook(sh("echo app=$FERRY_APP; echo err >&2"), {{"FERRY_APP", "web"}}, m);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_NE(r->output.find("app=web"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
}

TEST(HookRunner, FailureNamesHookCodeAndOutput) {
  Masker m;
  auto r = run_hook(sh("echo migration broke; exit 3"), {}, m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exited with code 3"), std::string::npos);
  EXPECT_NE(r.status().message().find("migration broke"), std::string::npos);
}

TEST(HookRunner, TransientFailuresAreRetried) {
  Masker m;
  auto marker = std::filesystem::temp_directory_path() / random_id("hook-");
  // Fails with 75 (EX_TEMPFAIL) the first time, succeeds the second.
  auto script = "if [ -f " + marker.string() + " ]; then exit 0; else touch " + marker.string() +
                "; exit 75; fi";
  auto r = run_hook(sh(script, 5000, 2), {}, m);
  std::filesystem::remove(marker);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->attempts, 2);
}

TEST(HookRunner, NonTransientFailureIsNotRetried) {
  Masker m;
  auto r = run_hook(sh("exit 1", 5000, 3), {}, m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("attempt 1 of 4"), std::string::npos);
}

TEST(HookRunner, TimeoutKillsTheHook) {
  Masker m;
  auto r = run_hook(sh("sleep 30", 300), {}, m);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos);
}

TEST(HookRunner, SecretsAreMaskedInOutput) {
  Masker m;
  m.add("hunter2-database-password");
  auto r = run_hook(sh("echo connecting with $PW; exit 2"), {{"PW", "hunter2-database-password"}}, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("hunter2"), std::string::npos);
  EXPECT_NE(r.status().message().find("****"), std::string::npos);
}

}  // namespace
}  // namespace ferry
