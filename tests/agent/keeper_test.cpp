// The agent's keeper (agent/keeper.h) with stand-in workers: the kept listening socket
// outlives a worker killed with SIGKILL and a connection made meanwhile is answered by the
// next worker; a worker that keeps dying is restarted with a growing delay and the keeper
// gives up; a first worker that fails ends the keeper with its code; SIGTERM reaches the
// worker. Each keeper runs in a child process of the test (it forks its workers).
#include "agent/keeper.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "wait_until.h"

namespace ferry {
namespace {

class KeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-keeper-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    if (keeper_ > 0) {
      kill(keeper_, SIGKILL);
      waitpid(keeper_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }

  // Starts a keeper in a child process, as `ferry agent` runs it (signals blocked).
  void start_keeper(KeeperOptions o) {
    keeper_ = fork();
    ASSERT_GE(keeper_, 0);
    if (keeper_ == 0) {
      sigset_t s;
      sigemptyset(&s);
      for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGUSR1}) sigaddset(&s, sig);
      pthread_sigmask(SIG_BLOCK, &s, nullptr);
      _exit(run_keeper(o));
    }
  }
  // The keeper's exit code (128 + signal for a signal), or -1 if it still runs after 30 s.
  int wait_keeper() {
    int status = 0;
    const bool ended = testing::wait_until(
        [&] { return waitpid(keeper_, &status, WNOHANG) == keeper_; }, std::chrono::seconds(30));
    if (!ended) return -1;
    keeper_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void note(const std::string& line) const {
    std::ofstream(dir_ / "notes", std::ios::app) << line << "\n";
  }
  std::vector<std::string> notes() const {
    std::ifstream f(dir_ / "notes");
    std::vector<std::string> out;
    for (std::string line; std::getline(f, line);) out.push_back(line);
    return out;
  }

  std::filesystem::path dir_;
  pid_t keeper_ = 0;
};

uint16_t bound_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

bool is_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

TEST_F(KeeperTest, ConnectionMadeWhileTheWorkerIsDeadIsAnsweredByTheNextOne) {
  KeeperOptions o;
  o.worker = [this](Handover kept, int link, int restart) -> int {
    if (restart == 0) {
      // The first worker listens, gives the keeper its socket, says where, and waits to
      // be killed.
      const int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 16) != 0) _exit(5);
      const int port = bound_port(l);
      if (!send_kept(link, {{"web", "127.0.0.1", static_cast<uint16_t>(port), l, {}}}, -1, -1).ok())
        _exit(6);
      note("port " + std::to_string(port) + " pid " + std::to_string(getpid()));
      for (;;) pause();
    }
    // The next worker serves on what the keeper kept: one connection, then it stops.
    if (kept.listeners.size() != 1 || kept.listeners[0].app != "web") _exit(7);
    const int l = kept.listeners[0].fd;
    note("kept port " + std::to_string(bound_port(l)));
    pollfd p{l, POLLIN, 0};
    if (poll(&p, 1, 20'000) != 1) _exit(8);
    const int c = accept(l, nullptr, nullptr);
    char buf[16];
    const ssize_t n = read(c, buf, sizeof buf);
    if (n > 0) (void)!write(c, "restart=1", 9);
    close(c);
    _exit(0);
  };
  start_keeper(o);
  ASSERT_TRUE(testing::wait_until([&] { return !notes().empty(); }, std::chrono::seconds(20)));
  int port = 0, pid = 0;
  std::istringstream(notes()[0].substr(5)) >> port;
  std::istringstream(notes()[0].substr(notes()[0].find("pid ") + 4)) >> pid;
  ASSERT_GT(port, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // Reaped by the keeper: the process that listened is gone.
  ASSERT_TRUE(testing::wait_until([&] { return kill(pid, 0) != 0 && errno == ESRCH; },
                                  std::chrono::seconds(20)));

  const int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a), 0)
      << "refused: the listening socket died with the worker";
  ASSERT_EQ(write(c, "ping", 4), 4);
  pollfd p{c, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 20'000), 1);
  char buf[16] = {};
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(0, read(c, buf, sizeof buf)))),
            "restart=1");
  close(c);
  EXPECT_EQ(wait_keeper(), 0);  // the worker stopped on purpose: so does the keeper
  ASSERT_EQ(notes().size(), 2u);
  EXPECT_EQ(notes()[1], "kept port " + std::to_string(port));
}

TEST_F(KeeperTest, AWorkerThatKeepsDyingIsRestartedLessOftenAndTheKeeperGivesUp) {
  KeeperOptions o;
  o.backoff_min_ms = 5;
  o.backoff_max_ms = 40;
  o.give_up_after = 3;
  o.worker = [this](Handover, int link, int restart) -> int {
    note(std::to_string(restart) + " " +
         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count()));
    if (restart == 0 && !send_kept(link, {}, -1, -1).ok()) _exit(6);  // it served once
    raise(SIGKILL);
    _exit(9);
  };
  start_keeper(o);
  EXPECT_EQ(wait_keeper(), 128 + SIGKILL);
  const auto lines = notes();
  ASSERT_EQ(lines.size(), 4u) << "one first start and give_up_after restarts, no more";
  std::vector<int64_t> at;
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].substr(0, lines[i].find(' ')), std::to_string(i));
    at.push_back(std::stoll(lines[i].substr(lines[i].find(' ') + 1)));
  }
  // The second restart waits at least backoff_min_ms, the third twice that.
  EXPECT_GE(at[2] - at[1], 5);
  EXPECT_GE(at[3] - at[2], 10);
}

TEST_F(KeeperTest, AFirstWorkerThatFailsBeforeServingEndsTheKeeperWithItsCode) {
  KeeperOptions o;
  o.worker = [this](Handover, int, int restart) -> int {
    note(std::to_string(restart));
    _exit(3);  // e.g. bad flags, or the data dir held by another agent
  };
  start_keeper(o);
  EXPECT_EQ(wait_keeper(), 3);
  EXPECT_EQ(notes().size(), 1u);
}

TEST_F(KeeperTest, SigtermReachesTheWorkerAndTheKeeperEndsWithIt) {
  KeeperOptions o;
  o.worker = [this](Handover, int link, int) -> int {
    if (!send_kept(link, {}, -1, -1).ok()) _exit(6);
    note("serving");
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    int sig = 0;
    sigwait(&s, &sig);  // blocked, as in `ferry agent`
    note("stopped by " + std::to_string(sig));
    _exit(0);
  };
  start_keeper(o);
  ASSERT_TRUE(testing::wait_until([&] { return !notes().empty(); }, std::chrono::seconds(20)));
  ASSERT_EQ(kill(keeper_, SIGTERM), 0);
  EXPECT_EQ(wait_keeper(), 0);
  ASSERT_EQ(notes().size(), 2u);
  EXPECT_EQ(notes()[1], "stopped by " + std::to_string(SIGTERM));
}

TEST_F(KeeperTest, AWorkerThatDiesWhileHandingOverIsNotRestartedBesideItsSuccessor) {
  // A planned restart under way: the successor has (or will have, the old one gone) the
  // same sockets and lock file. A copy restarted from the keeper's would be a second agent.
  KeeperOptions o;
  o.worker = [this](Handover, int link, int restart) -> int {
    note("worker " + std::to_string(restart));
    if (!send_kept(link, {}, -1, -1).ok() || !send_handing_over(link).ok()) _exit(6);
    raise(SIGKILL);  // dies between handing over and the end of its drain
    _exit(9);
  };
  start_keeper(o);
  EXPECT_EQ(wait_keeper(), 128 + SIGKILL);
  EXPECT_EQ(notes(), std::vector<std::string>{"worker 0"}) << "restarted beside its successor";
}

TEST_F(KeeperTest, AWorkerWhoseHandoffFailedIsRestartedAsBefore) {
  KeeperOptions o;
  o.worker = [this](Handover, int link, int restart) -> int {
    note("worker " + std::to_string(restart));
    if (restart > 0) _exit(0);
    // The successor went away: the worker serves on and gives the keeper its set again.
    if (!send_kept(link, {}, -1, -1).ok() || !send_handing_over(link).ok() ||
        !send_kept(link, {}, -1, -1).ok())
      _exit(6);
    raise(SIGKILL);
    _exit(9);
  };
  start_keeper(o);
  EXPECT_EQ(wait_keeper(), 0);
  EXPECT_EQ(notes(), (std::vector<std::string>{"worker 0", "worker 1"}));
}

TEST(KeeperFrames, ASetIsTakenWholeAndBadFramesCloseTheirDescriptors) {
  auto fresh = [] { return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 0); };
  Handover pending, held;
  // Two frames: a listener, then a listener with the lock and the API socket.
  const int a = fresh(), b = fresh(), lock = fresh(), api = fresh();
  Json first{{"op", "keep"},
             {"listeners", {{{"app", "web"}, {"host", "127.0.0.1"}, {"port", 8080}}}},
             {"last", false}};
  ASSERT_TRUE(take_kept_frame(first, {a}, &pending, &held).ok());
  EXPECT_TRUE(held.listeners.empty()) << "nothing held before the last frame";
  Json last{{"op", "keep"},
            {"listeners", {{{"app", "api"}, {"host", "::1"}, {"port", 9090}}}},
            {"last", true},
            {"lock", true},
            {"api", true}};
  ASSERT_TRUE(take_kept_frame(last, {b, lock, api}, &pending, &held).ok());
  ASSERT_EQ(held.listeners.size(), 2u);
  EXPECT_EQ(held.listeners[0].fd, a);
  EXPECT_EQ(held.listeners[1].port, 9090);
  EXPECT_EQ(held.lock_fd, lock);
  EXPECT_EQ(held.api_fd, api);

  // Hostile or broken frames: refused, their descriptors closed, the held set unchanged.
  const Json bad[] = {
      Json{{"op", "keep"}, {"listeners", Json::array()}, {"last", true}, {"lock", true}},
      Json{{"op", "keep"},
           {"listeners", {{{"app", "web"}, {"host", "127.0.0.1"}, {"port", 0}}}},
           {"last", true}},
      Json{{"op", "keep"},
           {"listeners", {{{"app", "web"}, {"host", "127.0.0.1"}, {"port", 70000}}}},
           {"last", true}},
      Json{{"op", "keep"}, {"listeners", {{{"host", "127.0.0.1"}, {"port", 1}}}}, {"last", true}},
      Json{{"op", "keep"},
           {"listeners", {{{"app", std::string(300, 'a')}, {"host", "h"}, {"port", 1}}}},
           {"last", true}},
      Json{{"op", "takeover"}, {"listeners", Json::array()}, {"last", true}},
      Json{{"op", "keep"}, {"listeners", 7}, {"last", true}},
      Json{{"op", "keep"},
           {"listeners", Json::array()},
           {"last", false},
           {"api", true}},  // lock/api before the last frame
  };
  for (const auto& frame : bad) {
    const int x = fresh(), y = fresh();
    EXPECT_FALSE(take_kept_frame(frame, {x, y}, &pending, &held).ok()) << frame.dump();
    EXPECT_FALSE(is_open(x)) << frame.dump();
    EXPECT_FALSE(is_open(y)) << frame.dump();
    EXPECT_EQ(held.listeners.size(), 2u);
    EXPECT_EQ(held.lock_fd, lock);
  }
  // A frame refused midway drops the part of the set already pending.
  const int c = fresh();
  ASSERT_TRUE(take_kept_frame(first, {c}, &pending, &held).ok());
  const int d = fresh();
  EXPECT_FALSE(take_kept_frame(bad[1], {d}, &pending, &held).ok());
  EXPECT_FALSE(is_open(c));
  EXPECT_TRUE(pending.listeners.empty());

  // The next whole set replaces the held one, whose descriptors close.
  const int e = fresh();
  Json only{{"op", "keep"},
            {"listeners", {{{"app", "web"}, {"host", "127.0.0.1"}, {"port", 8081}}}},
            {"last", true}};
  ASSERT_TRUE(take_kept_frame(only, {e}, &pending, &held).ok());
  EXPECT_FALSE(is_open(a));
  EXPECT_FALSE(is_open(lock));
  EXPECT_FALSE(is_open(api));
  ASSERT_EQ(held.listeners.size(), 1u);
  EXPECT_EQ(held.lock_fd, -1);
  close_all(held.listeners);
}

}  // namespace
}  // namespace ferry
