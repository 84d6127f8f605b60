#include "engine/hook_runner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <sstream>

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
  auto r =
      run_hook(sh("echo connecting with $PW; exit 2"), {{"PW", "hunter2-database-password"}}, m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().find("hunter2"), std::string::npos);
  EXPECT_NE(r.status().message().find("****"), std::string::npos);
}

// Issue 13, item 3: hooks inherit nothing of the server but PATH, HOME, LANG and TZ.
TEST(HookRunner, EnvironmentIsAnAllowlistNotTheServers) {
  setenv("FERRY_TOKEN", "ferry_tok_must_not_leak", 1);
  setenv("SLACK_WEBHOOK_URL", "https://hooks.example/must-not-leak", 1);
  Masker m;
  auto r = run_hook(sh("env"), {{"FERRY_APP", "web"}, {"DB_URL", "postgres://db/web"}}, m);
  unsetenv("FERRY_TOKEN");
  unsetenv("SLACK_WEBHOOK_URL");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->output.find("must_not_leak"), std::string::npos) << r->output;
  EXPECT_EQ(r->output.find("must-not-leak"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("FERRY_APP=web"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("DB_URL=postgres://db/web"), std::string::npos) << r->output;
  EXPECT_NE(r->output.find("PATH="), std::string::npos) << r->output;
}

TEST(HookRunner, NoDescriptorOfTheServerIsInherited) {
  // A descriptor without close-on-exec, as a listening socket or the store might be.
  const int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 57), 57);
  ::close(fd);
  Masker m;
  // "$$$$": hook arguments are expanded like instance ones, so the shell sees "$$".
  auto r = run_hook(sh("ls /proc/$$$$/fd"), {}, m);
  ::close(57);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  std::set<std::string> fds;
  std::istringstream in(r->output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) fds.insert(line);
  EXPECT_EQ(fds.count("57"), 0u) << r->output;
  for (const auto& f : fds) EXPECT_LE(std::stoi(f), 2) << "fd " << f << " leaked: " << r->output;
}

TEST(HookRunner, ArgumentsAreExpandedLikeInstanceArguments) {
  setenv("FERRY_TOKEN", "ferry_tok_must_not_leak", 1);
  HookSpec h;
  h.name = "backup";
  h.command = {"/bin/echo",     "backup-${VERSION}", "from-$PREVIOUS_VERSION",
               "${APP}.${ENV}", "[${FERRY_TOKEN}]",  "$$literal"};
  Masker m;
  auto r = run_hook(h,
                    {{"FERRY_RELEASE", "v7"},
                     {"FERRY_PREVIOUS_RELEASE", "v6"},
                     {"FERRY_APP", "web"},
                     {"FERRY_ENV", "prod"}},
                    m);
  unsetenv("FERRY_TOKEN");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->output, "backup-v7 from-v6 web.prod [] $literal\n");
}

}  // namespace
}  // namespace ferry
