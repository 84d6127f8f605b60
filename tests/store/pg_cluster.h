// A throwaway PostgreSQL cluster for tests: initdb in a temp dir, the postmaster on a free
// port on 127.0.0.1 (and a Unix socket in the same dir), stopped by its PID. As root (CI)
// the cluster runs as an unprivileged user (FERRY_PG_TEST_USER, default ferry-app, which
// scripts/install-deps.sh --test creates): PostgreSQL refuses to run as root.
//
//   PgCluster pg;
//   ASSERT_TRUE(pg.start().ok());
//   ASSERT_TRUE(pg.create_database("t1").ok());
//   auto store = open_store(pg.url("t1"));
//
// shared_pg_cluster() starts one per test binary on first use; PgClusterEnvironment
// stops it when the binary ends. initdb runs once per machine into
// TMPDIR/ferry-pg-template-UID-VERSION; every cluster starts from a copy of it.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>

#include "common/crypto.h"
#include "common/spawn.h"
#include "common/status.h"
#include "free_port.h"

namespace ferry::testing {

// The folder with initdb and postgres: FERRY_PG_BINDIR, else the newest
// /usr/lib/postgresql/N/bin; "" when PostgreSQL is not installed.
inline std::string pg_bindir() {
  if (const char* d = std::getenv("FERRY_PG_BINDIR"); d && *d) return d;
  std::string best;
  int best_version = -1;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = e.path().filename().string();
    const int v = std::atoi(name.c_str());
    if (v > best_version && std::filesystem::exists(e.path() / "bin" / "postgres", ec)) {
      best_version = v;
      best = (e.path() / "bin").string();
    }
  }
  return best;
}

inline int pg_free_port() {
  return testing::free_loopback_port();
}

class PgCluster {
 public:
  // durable=false turns fsync off (unit tests); the benchmark keeps PostgreSQL's defaults.
  explicit PgCluster(bool durable = false) : durable_(durable) {}
  ~PgCluster() {
    (void)stop();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // initdb on first use, then the postmaster; ready when it accepts connections.
  Status start() {
    if (pid_ > 0) return Status::Ok();
    if (bindir_.empty()) bindir_ = pg_bindir();
    if (bindir_.empty())
      return not_found(
          "PostgreSQL is not installed (no /usr/lib/postgresql/N/bin/postgres; "
          "scripts/install-deps.sh --test installs it)");
    if (dir_.empty()) FERRY_RETURN_IF_ERROR(init());
    if (port_ == 0) port_ = pg_free_port();
    SpawnOptions o;
    o.argv = {bindir_ + "/postgres",
              "-D",
              data(),
              "-p",
              std::to_string(port_),
              "-k",
              dir_,
              "-c",
              "listen_addresses=127.0.0.1",
              "-c",
              "max_connections=60"};
    if (!durable_)
      for (const char* s : {"fsync=off", "synchronous_commit=off", "full_page_writes=off"})
        o.argv.insert(o.argv.end(), {"-c", s});
    o.env = {{"LC_ALL", "C"}};
    o.cwd = dir_;
    o.user = user_;
    const int log = ::open((dir_ + "/postgres.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    o.stdout_fd = log;
    auto pid = spawn(o);
    ::close(log);
    if (!pid.ok()) return pid.status();
    pid_ = *pid;
    // Under sanitizers on a busy 2-core machine a start can take many seconds.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const std::string ping = "host=127.0.0.1 port=" + std::to_string(port_) +
                             " dbname=postgres user=ferry connect_timeout=2";
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(ping.c_str()) == PQPING_OK) return Status::Ok();
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return internal_error("postgres exited at start: " + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    (void)stop();
    return deadline_exceeded("postgres did not accept connections within 60 s: " + log_tail());
  }

  // Fast shutdown (SIGINT to the postmaster we started), waited for; SIGKILL after 30 s.
  Status stop() { return signal_and_wait(SIGINT, std::chrono::seconds(30)); }

  pid_t pid() const { return pid_; }
  int port() const { return port_; }
  std::string url(const std::string& db) const {
    return "postgres://ferry@127.0.0.1:" + std::to_string(port_) + "/" + db;
  }

  // Runs one SQL statement as the superuser on `db`.
  Status sql(const std::string& statement, const std::string& db = "postgres") const {
    PGconn* c = PQconnectdb(("host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + db +
                             " user=ferry connect_timeout=5")
                                .c_str());
    if (PQstatus(c) != CONNECTION_OK) {
      std::string m = PQerrorMessage(c);
      PQfinish(c);
      return unavailable(m);
    }
    PGresult* r = PQexec(c, statement.c_str());
    const auto st = PQresultStatus(r);
    std::string m = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return internal_error(m);
    return Status::Ok();
  }
  Status create_database(const std::string& name) const {
    return sql("CREATE DATABASE " + name + " TEMPLATE template0");
  }
  Status drop_database(const std::string& name) const {
    return sql("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  }

 private:
  std::string data() const { return dir_ + "/data"; }

  Status init() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-pg-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) return internal_error("mkdtemp failed");
    dir_ = tmpl;
    if (::geteuid() == 0) {
      const char* u = std::getenv("FERRY_PG_TEST_USER");
      const std::string name = (u && *u) ? u : "ferry-app";
      auto who = lookup_user(name);
      if (!who.ok())
        return failed_precondition("PostgreSQL refuses to run as root and the test user '" + name +
                                   "' is missing (" + who.status().message() +
                                   "); scripts/install-deps.sh --test creates ferry-app");
      user_ = *who;
      if (::chown(dir_.c_str(), who->uid, who->gid) != 0)
        return internal_error("chown " + dir_ + " failed");
    }
    // initdb costs seconds and ctest runs every test in its own process: one initdb per
    // machine, user and PostgreSQL version goes into a template (under a file lock), and
    // each cluster starts from a copy of it.
    const std::string owner = user_ ? std::to_string(user_->uid) : std::to_string(::geteuid());
    const std::string tmpl_dir =
        (std::filesystem::temp_directory_path() /
         ("ferry-pg-template-" + owner + "-" +
          std::filesystem::path(bindir_).parent_path().filename().string()))
            .string();
    {
      const int lock = ::open((tmpl_dir + ".lock").c_str(), O_RDWR | O_CREAT, 0600);
      if (lock < 0 || ::flock(lock, LOCK_EX) != 0) return internal_error("cannot lock " + tmpl_dir);
      Status made = Status::Ok();
      // A template someone else owns (a predictable name in /tmp) is never used.
      struct stat st {};
      const uid_t want = user_ ? user_->uid : ::geteuid();
      const bool ours =
          ::lstat(tmpl_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == want;
      if (!ours || !std::filesystem::exists(tmpl_dir + "/ready")) made = make_template(tmpl_dir);
      ::close(lock);  // releases the lock
      FERRY_RETURN_IF_ERROR(made);
    }
    SpawnOptions o;
    o.argv = {"/bin/cp", "-a", tmpl_dir + "/data", data()};
    o.cwd = dir_;
    o.user = user_;
    auto pid = spawn(o);
    if (!pid.ok()) return pid.status().with_context("copying the template cluster");
    int st = 0;
    ::waitpid(*pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
      return internal_error("copying the template cluster " + tmpl_dir + " failed");
    return Status::Ok();
  }

  Status make_template(const std::string& tmpl_dir) {
    std::error_code ec;
    std::filesystem::remove_all(tmpl_dir, ec);  // a half-made one from an interrupted run
    if (!std::filesystem::create_directory(tmpl_dir, ec))
      return internal_error("cannot create " + tmpl_dir);
    ::chmod(tmpl_dir.c_str(), 0700);
    if (user_ && ::chown(tmpl_dir.c_str(), user_->uid, user_->gid) != 0)
      return internal_error("chown " + tmpl_dir + " failed");
    SpawnOptions o;
    o.argv = {bindir_ + "/initdb",
              "-D",
              tmpl_dir + "/data",
              "-U",
              "ferry",
              "-A",
              "trust",
              "-E",
              "UTF8",
              "--locale=C",
              "--no-sync"};
    o.env = {{"LC_ALL", "C"}};
    o.cwd = tmpl_dir;
    o.user = user_;
    const int log = ::open((dir_ + "/initdb.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    o.stdout_fd = log;
    auto pid = spawn(o);
    ::close(log);
    if (!pid.ok()) return pid.status().with_context("initdb");
    int st = 0;
    ::waitpid(*pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      std::ifstream in(dir_ + "/initdb.log");
      std::stringstream ss;
      ss << in.rdbuf();
      return internal_error("initdb failed: " + ss.str());
    }
    std::ofstream(tmpl_dir + "/ready") << "initdb done\n";
    return Status::Ok();
  }

  Status signal_and_wait(int sig, std::chrono::seconds bound) {
    if (pid_ <= 0) return Status::Ok();
    ::kill(pid_, sig);
    const auto deadline = std::chrono::steady_clock::now() + bound;
    int st = 0;
    while (::waitpid(pid_, &st, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &st, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
    return Status::Ok();
  }

  std::string log_tail() const {
    std::ifstream in(dir_ + "/postgres.log");
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

  bool durable_;
  std::string bindir_;
  std::string dir_;
  std::optional<RunAs> user_;
  int port_ = 0;
  pid_t pid_ = -1;
};

struct SharedPgCluster {
  std::once_flag once;
  std::unique_ptr<PgCluster> cluster;
  Status status;
};
inline SharedPgCluster& shared_pg_state() {
  static SharedPgCluster s;
  return s;
}

// The binary's shared cluster, started on first use; nullptr and `why` when it cannot
// run. Thread-compatible (tests call it from their SetUp).
inline PgCluster* shared_pg_cluster(std::string* why) {
  auto& s = shared_pg_state();
  std::call_once(s.once, [&s] {
    s.cluster = std::make_unique<PgCluster>();
    s.status = s.cluster->start();
    if (!s.status.ok()) s.cluster.reset();
  });
  if (!s.status.ok() && why) *why = s.status.message();
  return s.cluster.get();
}

// Stops the shared cluster (by its PID) and removes its folder when the binary ends.
class PgClusterEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { shared_pg_state().cluster.reset(); }
};

}  // namespace ferry::testing
