// App code cannot read the control plane (issue 13, item 2): as root, the agent runs an
// instance as ferry-app (or run.user) in its own 0700 working directory, and that process
// cannot open secrets.key, the store, the agent token or the agent state file. Needs root
// (CI runs as root); skipped with a message otherwise.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/process.h"
#include "common/spawn.h"
#include "server/server_fixture.h"

namespace ferry::testing {
namespace {

class RunUserTest : public ServerFixture {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users (CI runs the suite as root)";
    if (!lookup_user(kDefaultAppUser).ok() &&
        std::system("useradd --system --no-create-home --home-dir /nonexistent "
                    "--shell /usr/sbin/nologin ferry-app") != 0)
      GTEST_SKIP() << "cannot create the ferry-app user (useradd failed)";
    start("  dev: {}\n");
  }
  void TearDown() override {
    if (agent_) agent_->stop(true);
    agent_.reset();
    unsetenv("FERRY_INSTANCES_DIR");
    ServerFixture::TearDown();
  }

  // Starts an agent in the server's data dir (where the local agent lives) with one
  // instance running `script`, and returns its log once the script printed DONE.
  std::string run_instance(const std::string& script, const std::string& user) {
    const auto data = dir_ / "data";
    std::filesystem::create_directories(dir_ / "instances");
    setenv("FERRY_INSTANCES_DIR", (dir_ / "instances").c_str(), 1);
    // The local agent's token, as LocalAgent writes it (0600 in the data dir).
    {
      const int fd = ::open((data / "agent.token").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      EXPECT_GE(fd, 0);
      EXPECT_EQ(::write(fd, "tok\n", 4), 4);
      ::close(fd);
    }
    AgentOptions o;
    o.data_dir = (data / "agent").string();
    o.tick_ms = 10;
    agent_ = std::make_unique<Agent>(o);
    Status s = agent_->start();
    EXPECT_TRUE(s.ok()) << s.message();
    AppDesiredState d;
    d.app = "web--dev";
    d.generation = 1;
    InstanceSpec i;
    i.id = "web-v1-0";
    i.release = "v1";
    i.run.command = {"/bin/sh", "-c", script};
    i.run.user = user;
    i.run.env = {{"APP_SETTING", "x"}};
    d.instances.push_back(i);
    d.weights = {{"v1", 100}};
    s = agent_->put_app(d);
    EXPECT_TRUE(s.ok()) << s.message();
    const auto log = data / "agent" / "logs" / "web--dev" / "web-v1-0.log";
    std::string text;
    for (int n = 0; n < 250; ++n) {
      std::ifstream f(log);
      text.assign(std::istreambuf_iterator<char>(f), {});
      if (text.find("DONE") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return text;
  }

  std::unique_ptr<Agent> agent_;
};

TEST_F(RunUserTest, AnInstanceCannotOpenTheKeyTheStoreTheTokenOrTheStateFile) {
  const auto data = dir_ / "data";
  // The files the control plane keeps: they exist, and the test (root) can read them.
  const std::vector<std::filesystem::path> secret_files{data / "secrets.key", dir_ / "ferry.db",
                                                        data / "agent.token",
                                                        data / "agent" / "agent-state.json"};
  // The agent writes its state file from a writer thread: give it a moment, so every file
  // exists when the instance tries it (checked below, or DENIED would prove nothing).
  std::string script = "sleep 1; id -un; pwd; ";
  for (const auto& f : secret_files)
    script += "if cat '" + f.string() + "' >/dev/null 2>&1; then echo OPENED " +
              f.filename().string() + "; else echo DENIED " + f.filename().string() + "; fi; ";
  script += "echo DONE; sleep 30";
  const std::string log = run_instance(script, "");
  ASSERT_NE(log.find("DONE"), std::string::npos) << log;
  for (const auto& f : secret_files) {
    for (int i = 0; i < 100 && !std::filesystem::exists(f); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_TRUE(std::filesystem::exists(f)) << f;
    EXPECT_NE(log.find("DENIED " + f.filename().string()), std::string::npos) << log;
    EXPECT_EQ(log.find("OPENED " + f.filename().string()), std::string::npos) << log;
  }
  EXPECT_EQ(log.rfind("ferry-app\n", 0), 0u) << "the default user of a root agent: " << log;
  // Its own working directory, 0700, owned by it.
  const auto work = dir_ / "instances" / "web--dev" / "web-v1-0";
  EXPECT_NE(log.find(work.string() + "\n"), std::string::npos) << log;
  struct stat st {};
  ASSERT_EQ(::stat(work.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(st.st_uid, lookup_user(kDefaultAppUser)->uid);
  // The data dir is 0700, the store 0600.
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((dir_ / "ferry.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(RunUserTest, RunUserNamesTheUserAndAnUnknownOneIsAClearError) {
  std::string log = run_instance("id -un; echo DONE; sleep 30", "nobody");
  EXPECT_EQ(log.rfind("nobody\n", 0), 0u) << log;
  agent_->stop(true);
  agent_.reset();
  auto h = start_process(
      ProcessLaunch{.argv = {"/bin/true"}, .app_code = true, .user = "no-such-user-13"});
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.status().message().find("does not exist"), std::string::npos) << h.status().message();
}

}  // namespace
}  // namespace ferry::testing
