// The one spawn path of instances and hooks (issue 13, item 3): allowlisted environment,
// no inherited descriptors (close_range and its fallback), exec errors reported.
#include "common/spawn.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <thread>

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

// What a child wrote to `path` (read after it has exited).
std::string file_text(const std::string& path) {
  std::string out;
  if (FILE* f = std::fopen(path.c_str(), "r")) {
    char buf[256];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
  }
  return out;
}

// The child runs as the user asked for, and no thread of the parent changes user with it:
// glibc's setuid() in a vfork child would have switched the parent's threads too.
TEST(Spawn, AChildRunAsAnotherUserLeavesEveryThreadOfTheParentAsItWas) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  auto user = lookup_user("nobody");
  ASSERT_TRUE(user.ok()) << user.status().message();
  std::atomic<bool> stop{false};
  std::atomic<uid_t> other_uid{0};
  std::thread other([&] {
    while (!stop) {
      other_uid = geteuid();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const std::string out = "/tmp/ferry-spawn-user-" + std::to_string(getpid());
  const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "id -u; id -g"};
  o.user = *user;
  o.stdout_fd = fd;
  auto pid = spawn(o);
  close(fd);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  int status = 0;
  waitpid(*pid, &status, 0);
  EXPECT_EQ(file_text(out), std::to_string(user->uid) + "\n" + std::to_string(user->gid) + "\n");
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop = true;
  other.join();
  EXPECT_EQ(geteuid(), 0u);
  EXPECT_EQ(getegid(), 0u);
  EXPECT_EQ(other_uid.load(), 0u) << "another thread of the parent changed user";
  std::remove(out.c_str());
}

// A signal the parent handles or ignores reaches the program with its default disposition
// (the parent's handler never runs in the child), and the parent's handler still works.
TEST(Spawn, TheChildStartsWithDefaultSignalDispositions) {
  static std::atomic<int> handled{0};
  struct sigaction sa = {};
  struct sigaction old_usr1 = {};
  struct sigaction old_pipe = {};
  sa.sa_handler = [](int) { handled.fetch_add(1); };
  sigaction(SIGUSR1, &sa, &old_usr1);
  struct sigaction ign = {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old_pipe);
  const std::string out = "/tmp/ferry-spawn-sig-" + std::to_string(getpid());
  const int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  SpawnOptions o;
  // The shell shows "SigIgn" and "SigCgt" of its own process: neither SIGUSR1 (bit 10) nor
  // SIGPIPE (bit 13) may be set; then it is killed by SIGUSR1, the default action.
  o.argv = {"/bin/sh", "-c", "grep -E '^Sig(Ign|Cgt)' /proc/$$/status; kill -USR1 $$; echo alive"};
  o.stdout_fd = fd;
  auto pid = spawn(o);
  close(fd);
  ASSERT_TRUE(pid.ok()) << pid.status().message();
  int status = 0;
  waitpid(*pid, &status, 0);
  EXPECT_EQ(handled.load(), 0);
  raise(SIGUSR1);  // this process's handler is still in place
  EXPECT_EQ(handled.load(), 1);
  sigaction(SIGUSR1, &old_usr1, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR1) << status;
  const std::string text = file_text(out);
  for (const char* key : {"SigIgn:", "SigCgt:"}) {
    const size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << text;
    const unsigned long long mask = std::strtoull(text.c_str() + at + 7, nullptr, 16);
    EXPECT_EQ(mask & (1ull << (SIGUSR1 - 1)), 0u) << key << " " << text;
    EXPECT_EQ(mask & (1ull << (SIGPIPE - 1)), 0u) << key << " " << text;
  }
  EXPECT_EQ(text.find("alive"), std::string::npos);
  std::remove(out.c_str());
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
