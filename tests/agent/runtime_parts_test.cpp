// ProcessRuntime (real processes, log policy), the state file's sealing, the port range
// and the prober's kept-alive HTTP connection.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "agent/app_manager.h"
#include "agent/prober.h"
#include "agent/process.h"
#include "agent/process_runtime.h"
#include "agent/state_file.h"
#include "common/http_server.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;

// /proc/PID/stat is read with read(2) and split after the command name: a name with spaces
// and parentheses does not shift the fields, and a process that is gone reads as nothing
// (an ifstream threw "No such process" when the process ended during the read).
TEST(ProcStat, FieldsSkipTheCommandNameAndAGoneProcessReadsAsNothing) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    prctl(PR_SET_NAME, "a) b (c", 0, 0, 0);
    pause();
    _exit(0);
  }
  bool named = false;
  for (int i = 0; i < 2000 && !named; ++i) {
    named = read_proc_file(child, "comm") == "a) b (c\n";
    if (!named) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(named);
  const std::vector<std::string> f = proc_stat_fields(child);
  ASSERT_GE(f.size(), 20u);
  EXPECT_TRUE(f[0] == "S" || f[0] == "R") << f[0];
  EXPECT_EQ(std::to_string(getpid()), f[1]);  // field 4: the parent
  EXPECT_GT(process_start_ticks(child), 0u);
  EXPECT_EQ(process_start_ticks(child), std::stoull(f[19]));
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(read_proc_file(child, "stat"), "");
  EXPECT_TRUE(proc_stat_fields(child).empty());
  EXPECT_EQ(process_start_ticks(child), 0u);
}

class TempDir {
 public:
  TempDir() {
    path = fs::temp_directory_path() /
           ("ferry-rt-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path path;
};

void write_bytes(const fs::path& p, size_t n) {
  std::ofstream(p) << std::string(n, 'x');
}

TEST(ProcessRuntime, StartsReportsTheExitCodeAndStops) {
  TempDir dir;
  ProcessRuntime rt(dir.path.string(), LogPolicy{});
  LaunchSpec l;
  l.app = "web";
  l.instance = "web-v1-0";
  l.argv = {"/bin/sh", "-c", "echo hello; exit 7"};
  auto h = rt.start(l);
  ASSERT_TRUE(h.ok());
  std::optional<int> code;
  for (int i = 0; i < 500 && !code; ++i) {
    code = rt.exit_status(*h);
    if (!code) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 7);
  std::ifstream log(rt.log_path("web", "web-v1-0"));
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, "hello");

  l.argv = {"/bin/sleep", "30"};
  auto s = rt.start(l);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(rt.alive(*s));
  EXPECT_FALSE(rt.exit_status(*s).has_value());
  rt.stop(*s, StopMode::kGraceful);
  code.reset();
  for (int i = 0; i < 500 && !code; ++i) {
    code = rt.exit_status(*s);
    if (!code) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, -15);
  EXPECT_FALSE(rt.alive(*s));
  EXPECT_FALSE(rt.adopt(*s));
}

// Whether `fd` becomes readable within `ms`.
bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

TEST(ProcessRuntime, ExitFdBecomesReadableWhenTheProcessEndsAndNamesNoOtherProcess) {
  TempDir dir;
  ProcessRuntime rt(dir.path.string(), LogPolicy{});
  LaunchSpec l;
  l.app = "web";
  l.instance = "web-v1-0";
  l.argv = {"/bin/sleep", "30"};
  auto h = rt.start(l);
  ASSERT_TRUE(h.ok());
  const int fd = rt.exit_fd(*h);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(readable_within(fd, 0));  // running
  kill(h->pid, SIGKILL);
  EXPECT_TRUE(readable_within(fd, 20'000));
  close(fd);
  // The end is still reported once by exit_status(), with its signal.
  EXPECT_EQ(rt.exit_status(*h), std::optional<int>(-SIGKILL));
  // Ended and reaped before it was asked for: readable at once, so its owner looks now.
  const int late = rt.exit_fd(*h);
  ASSERT_GE(late, 0);
  EXPECT_TRUE(readable_within(late, 0));
  close(late);

  // A process this runtime did not start (adopted): watched only while it is the one meant.
  ProcessLaunch other;
  other.argv = {"/bin/sleep", "30"};
  other.log_path = "/dev/null";
  auto p = start_process(other);
  ASSERT_TRUE(p.ok());
  const RuntimeHandle adopted{p->pid, p->start_ticks, ""};
  // The same pid with another start time is a reused pid: the process meant has ended, and
  // the fd says so at once (it is no pidfd on the running stranger).
  const int reused = rt.exit_fd(RuntimeHandle{p->pid, p->start_ticks + 1, ""});
  ASSERT_GE(reused, 0);
  EXPECT_TRUE(readable_within(reused, 0));
  close(reused);
  EXPECT_EQ(rt.exit_fd(RuntimeHandle{0, 0, ""}), -1);
  EXPECT_EQ(rt.exit_fd(RuntimeHandle{-1, 0, ""}), -1);
  const int afd = rt.exit_fd(adopted);
  ASSERT_GE(afd, 0);
  EXPECT_FALSE(readable_within(afd, 0));
  kill(p->pid, SIGKILL);
  EXPECT_TRUE(readable_within(afd, 20'000));
  close(afd);
  EXPECT_EQ(rt.exit_status(adopted), std::optional<int>(kExitUnknown));  // not ours to reap
  // Killed before its watch was asked for, and left a zombie (its parent, this test, has not
  // reaped it): the fd is readable at once, not a wait for a tick that may be far off.
  const int zfd = rt.exit_fd(adopted);
  ASSERT_GE(zfd, 0);
  EXPECT_TRUE(readable_within(zfd, 0));
  close(zfd);
  int status = 0;
  EXPECT_EQ(waitpid(p->pid, &status, 0), p->pid);  // this test's child: reaped here
}

TEST(ProcessRuntime, CommandThatCannotStartIsAnError) {
  TempDir dir;
  ProcessRuntime rt(dir.path.string(), LogPolicy{});
  LaunchSpec l;
  l.app = "web";
  l.instance = "x";
  l.argv = {"/nonexistent/ferry-no-such-binary"};
  auto h = rt.start(l);
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("No such file"), std::string::npos);
}

TEST(ProcessRuntime, LogsAreRotatedAndGoneInstancesBeyondKeepRemoved) {
  TempDir dir;
  ProcessRuntime rt(dir.path.string(), LogPolicy{2, 100});
  const fs::path app = dir.path / "web";
  fs::create_directories(app);
  // Current instance: rotated once past 100 bytes, at most 2 rotated files kept.
  for (int round = 0; round < 4; ++round) {
    write_bytes(app / "cur.log", 150);
    rt.housekeeping("web", {"cur"});
  }
  EXPECT_TRUE(fs::exists(app / "cur.log"));
  EXPECT_EQ(fs::file_size(app / "cur.log"), 0u);
  EXPECT_TRUE(fs::exists(app / "cur.log.1"));
  EXPECT_TRUE(fs::exists(app / "cur.log.2"));
  EXPECT_FALSE(fs::exists(app / "cur.log.3"));
  // Gone instances: the newest 2 keep their logs, older ones are removed.
  for (int i = 0; i < 5; ++i) {
    write_bytes(app / ("old" + std::to_string(i) + ".log"), 10);
    write_bytes(app / ("old" + std::to_string(i) + ".log.1"), 10);
    fs::last_write_time(app / ("old" + std::to_string(i) + ".log"),
                        fs::file_time_type::clock::now() - std::chrono::hours(10 - i));
    fs::last_write_time(app / ("old" + std::to_string(i) + ".log.1"),
                        fs::file_time_type::clock::now() - std::chrono::hours(10 - i));
  }
  rt.housekeeping("web", {"cur"});
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(app)) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"cur.log", "cur.log.1", "cur.log.2", "old3.log",
                                         "old3.log.1", "old4.log", "old4.log.1"}));
  // An app that left: only the newest `keep` instances' logs stay.
  rt.housekeeping("web", {});
  left.clear();
  for (const auto& e : fs::directory_iterator(app)) left.insert(e.path().filename().string());
  EXPECT_EQ(left,
            (std::set<std::string>{"cur.log", "cur.log.1", "cur.log.2", "old4.log", "old4.log.1"}));
}

TEST(PortRange, ParsesAndRefusesBadRanges) {
  auto r = parse_port_range("20000-29999");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->first, 20000);
  EXPECT_EQ(r->last, 29999);
  for (const char* bad :
       {"", "20000", "30000-20000", "80-90", "20000-70000", "a-b", "1-2-3", "20000-", "-20000"})
    EXPECT_FALSE(parse_port_range(bad).ok()) << bad;
  EXPECT_TRUE(overlaps(PortRange{30000, 40000}, PortRange{32768, 60999}));
  EXPECT_FALSE(overlaps(PortRange{20000, 29999}, PortRange{32768, 60999}));
  const PortRange eph = ephemeral_port_range();
  EXPECT_LE(eph.first, eph.last);
}

TEST(StateFile, SealsEveryEnvironmentAndRefusesTampering) {
  TempDir dir;
  const std::string key = state_key_from_token(std::string(32, 't'));
  ASSERT_EQ(key.size(), 32u);
  StateFile f((dir.path / "state.json").string(), key);
  Json apps = Json::parse(R"([{"desired":{"app":"web","instances":[{"id":"a","run":
      {"command":["x"],"env":{"TOKEN":"s3cr3t-value"}}}]},
      "instances":[{"spec":{"id":"a","run":{"command":["x"],"env":{"TOKEN":"s3cr3t-value"}}}}]}])");
  ASSERT_TRUE(f.save(apps).ok());
  std::ifstream in(dir.path / "state.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos);
  auto back = f.load();
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->has_value());
  EXPECT_EQ(**back, apps);
  // A flipped byte in a sealed value: refused, naming the file.
  const size_t at = text.find("env_sealed\":\"") + 20;
  text[at] = text[at] == '0' ? '1' : '0';
  std::ofstream(dir.path / "state.json") << text;
  auto bad = f.load();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("state.json"), std::string::npos);
  // No file: nothing to load.
  StateFile none((dir.path / "none.json").string(), key);
  auto empty = none.load();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
}

TEST(Prober, HttpProbesReuseOneConnection) {
  HttpServer server(HttpServerOptions{});
  std::mutex mu;
  std::set<std::string> peers;
  int probes = 0;
  server.route("GET", "/healthz", [](HttpRequest&) {
    return HttpResponse::json(Json{{"ok", true}});
  });
  server.observe([&](const HttpRequest& req, const HttpResponse&, double) {
    std::lock_guard lk(mu);
    peers.insert(req.remote_addr);
    ++probes;
  });
  ASSERT_TRUE(server.start().ok());
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  ChecksSpec checks;
  checks.readiness.kind = ProbeSpec::Kind::kHttp;
  checks.readiness.path = "/healthz";
  checks.readiness.interval_ms = 10;
  checks.readiness.timeout_ms = 1000;
  std::atomic<int> ok{0}, failed{0};
  auto p = Prober::create(
      boost::asio::make_strand(io), checks, ProbeTarget{"127.0.0.1", server.port(), {}}, 0, 0,
      [&](ProbeRole, bool good, const std::string&) { (good ? ok : failed)++; });
  p->start();
  for (int i = 0; i < 500 && ok < 6; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  p->stop();
  work.reset();
  t.join();
  server.stop();
  EXPECT_GE(ok.load(), 6);
  EXPECT_EQ(failed.load(), 0);
  std::lock_guard lk(mu);
  EXPECT_EQ(peers.size(), 1u) << "each probe opened a new connection";
}

TEST(Prober, SteadyIntervalOnlyAfterSuccessThresholdAndAFailureReturnsToInterval) {
  ProbeSpec p;
  p.interval_ms = 200;
  p.steady_interval_ms = 2000;
  p.success_threshold = 2;
  int streak = 0;
  EXPECT_EQ(probe_wait_ms(p, streak, false), 200);
  EXPECT_EQ(probe_wait_ms(p, streak, true), 200);  // one success: not yet steady
  EXPECT_EQ(probe_wait_ms(p, streak, true), 2000);
  EXPECT_EQ(probe_wait_ms(p, streak, true), 2000);
  EXPECT_EQ(probe_wait_ms(p, streak, false), 200);  // the first failure: back to interval
  EXPECT_EQ(probe_wait_ms(p, streak, true), 200);
  EXPECT_EQ(probe_wait_ms(p, streak, true), 2000);
  // Not set: interval throughout. Values from the wire outside the config's limits are held
  // to them (an agent API caller is not trusted with a 0 ms loop or a day-long silence).
  ProbeSpec plain;
  plain.interval_ms = 300;
  streak = 0;
  for (int i = 0; i < 5; ++i) EXPECT_EQ(probe_wait_ms(plain, streak, true), 300);
  ProbeSpec odd;
  odd.interval_ms = 0;
  odd.steady_interval_ms = 86'400'000;
  streak = 0;
  EXPECT_EQ(probe_wait_ms(odd, streak, true), 3'600'000);
  EXPECT_EQ(probe_wait_ms(odd, streak, false), 10);
  odd.steady_interval_ms = 5;  // below interval: interval
  odd.interval_ms = 100;
  EXPECT_EQ(probe_wait_ms(odd, streak, true), 100);
}

TEST(Prober, APassingProbeWithASteadyIntervalStopsProbingAtThePace) {
  // Two probers of one backend: one at `interval` throughout, one with a long steady
  // interval. While the first probes on, the second stays at success_threshold probes.
  HttpServer server(HttpServerOptions{});
  std::atomic<int> fast{0}, steady{0};
  server.route("GET", "/fast", [&](HttpRequest&) {
    ++fast;
    return HttpResponse::json(Json{{"ok", true}});
  });
  server.route("GET", "/steady", [&](HttpRequest&) {
    ++steady;
    return HttpResponse::json(Json{{"ok", true}});
  });
  ASSERT_TRUE(server.start().ok());
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  ChecksSpec checks;
  checks.readiness.kind = ProbeSpec::Kind::kHttp;
  checks.readiness.interval_ms = 10;
  checks.readiness.timeout_ms = 2000;
  checks.readiness.path = "/fast";
  auto a = Prober::create(boost::asio::make_strand(io), checks,
                          ProbeTarget{"127.0.0.1", server.port(), {}}, 0, 0,
                          [](ProbeRole, bool, const std::string&) {});
  checks.readiness.path = "/steady";
  checks.readiness.success_threshold = 2;
  checks.readiness.steady_interval_ms = 3'600'000;
  auto b = Prober::create(boost::asio::make_strand(io), checks,
                          ProbeTarget{"127.0.0.1", server.port(), {}}, 0, 0,
                          [](ProbeRole, bool, const std::string&) {});
  a->start();
  b->start();
  for (int i = 0; i < 2000 && fast < 30; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  a->stop();
  b->stop();
  work.reset();
  t.join();
  server.stop();
  EXPECT_GE(fast.load(), 30);
  EXPECT_EQ(steady.load(), 2);
}

TEST(Prober, FailuresNameWhatFailed) {
  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread t([&] { io.run(); });
  ChecksSpec checks;
  checks.readiness.kind = ProbeSpec::Kind::kTcp;
  checks.readiness.interval_ms = 10;
  checks.readiness.timeout_ms = 500;
  std::mutex mu;
  std::string message;
  std::atomic<bool> got{false};
  // Port 1 on loopback: nothing listens (connection refused).
  auto p = Prober::create(boost::asio::make_strand(io), checks, ProbeTarget{"127.0.0.1", 1, {}}, 0,
                          0, [&](ProbeRole, bool good, const std::string& m) {
                            if (good) return;
                            std::lock_guard lk(mu);
                            message = m;
                            got = true;
                          });
  p->start();
  for (int i = 0; i < 300 && !got; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  p->stop();
  work.reset();
  t.join();
  std::lock_guard lk(mu);
  EXPECT_NE(message.find("tcp connect to port 1"), std::string::npos) << message;
}

}  // namespace
}  // namespace ferry
