// The one spawn path of instances and hooks (issue 13, item 3): allowlisted environment,
// no inherited descriptors (close_range and its fallback), exec errors reported.
#include "common/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>

namespace ferry {
namespace {

bool has(const std::vector<std::string>& env, const std::string& prefix) {
  for (const auto& e : env)
    if (e.rfind(prefix, 0) == 0) return true;
  return false;
}

TEST(Spawn, ChildEnvironmentIsTheAllowlistPlusTheGivenVariables) {
  setenv("FERRY_TOKEN", "tok", 1);
  setenv("LD_PRELOAD", "/tmp/evil.so", 1);
  setenv("PATH", "/usr/bin:/bin", 1);
  auto env = child_environment({{"APP_SETTING", "1"}, {"FERRY_APP", "web"}});
  unsetenv("FERRY_TOKEN");
  unsetenv("LD_PRELOAD");
  EXPECT_TRUE(has(env, "APP_SETTING=1"));
  EXPECT_TRUE(has(env, "FERRY_APP=web"));
  EXPECT_TRUE(has(env, "PATH=/usr/bin:/bin"));
  EXPECT_FALSE(has(env, "FERRY_TOKEN="));
  EXPECT_FALSE(has(env, "LD_PRELOAD="));
  // A user switch gives that user's HOME unless the app sets one.
  RunAs u;
  u.home = "/home/app";
  EXPECT_TRUE(has(child_environment({}, u), "HOME=/home/app"));
  EXPECT_TRUE(has(child_environment({{"HOME", "/srv/web"}}, u), "HOME=/srv/web"));
}

// Runs `fn` in a forked child; true when it exited 0.
template <typename Fn>
bool in_child(Fn fn) {
  const pid_t pid = fork();
  if (pid == 0) _exit(fn() ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

TEST(Spawn, CloseRangeAndItsFallbackCloseEveryDescriptorButTheKeptOne) {
  for (bool fallback : {false, true}) {
    EXPECT_TRUE(in_child([&] {
      const int fd = open("/dev/null", O_RDONLY);
      if (dup2(fd, 40) != 40 || dup2(fd, 41) != 41 || dup2(fd, 300) != 300) return false;
      if (fallback) {
        close_descriptors_by_loop(3, 40);
        close_descriptors_by_loop(42, INT_MAX);
      } else {
        close_descriptors_from(3, 41);
      }
      const bool kept_ok = fallback ? !is_open(40) && is_open(41) : !is_open(40) && is_open(41);
      return kept_ok && !is_open(300) && !is_open(fd) && is_open(0);
    })) << (fallback ? "close() loop" : "close_range");
  }
}

TEST(Spawn, ExecFailureIsAnErrorNamingTheProgram) {
  SpawnOptions o;
  o.argv = {"/nonexistent/ferry-no-such-program"};
  auto pid = spawn(o);
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("ferry-no-such-program"), std::string::npos);
  o.argv = {"/bin/true"};
  o.cwd = "/nonexistent-dir-13";
  pid = spawn(o);
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.status().message().find("/nonexistent-dir-13"), std::string::npos);
}

TEST(Spawn, UserNamesAreCheckedForSyntax) {
  for (const char* ok : {"ferry-app", "_svc", "web1", "www-data", "1000"})
    EXPECT_TRUE(valid_user_name(ok)) << ok;
  for (const char* bad : {"", "Root", "-x", "a b", "../etc", "x:y", "12345678901",
                          "averyveryveryveryverylongusername1"})
    EXPECT_FALSE(valid_user_name(bad)) << bad;
  EXPECT_FALSE(lookup_user("no-such-user-13").ok());
  auto root = lookup_user("0");
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->uid, 0u);
}

TEST(Spawn, VariablesExpandThroughTheLookupOnly) {
  auto lookup = [](const std::string& n) { return n == "VERSION" ? std::string("v7") : ""; };
  EXPECT_EQ(expand_vars_with("a-${VERSION}-$VERSION-$$-${NOPE}-$", lookup), "a-v7-v7-$--$");
}

}  // namespace
}  // namespace ferry
