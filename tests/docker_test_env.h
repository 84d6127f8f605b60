// A real dockerd for tests. When none answers on DOCKER_HOST / /var/run/docker.sock, the
// test starts its own (own data-root, exec-root, pidfile and socket in a temporary folder,
// no bridge and no iptables: instances use host networking) and stops it by its PID.
// Images are made here, never pulled (no registry is reachable): a binary built by this
// build and the shared libraries it links, gathered by deploy/docker-context.sh, imported
// or built through the Engine API.
#pragma once

#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/docker_api.h"
#include "agent/process.h"
#include "test_paths.h"

namespace ferry::testing {

// Runs a shell command; its exit code, and its output in `*out`.
inline int docker_test_sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  std::string s;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) s.append(buf, n);
  const int rc = pclose(p);
  if (out) *out = s;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// The standard output of a shell command, byte for byte (a tar stream); false on failure.
inline bool docker_test_read(const std::string& cmd, std::string* out) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return false;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

class TestDockerd {
 public:
  TestDockerd() = default;
  TestDockerd(const TestDockerd&) = delete;
  TestDockerd& operator=(const TestDockerd&) = delete;
  ~TestDockerd() { stop(); }

  // Finds a running dockerd or starts one. False with why() when neither works.
  bool start() {
    auto env = DockerApi::socket_from_env();
    if (env.ok() && ping(*env)) {
      socket_ = *env;
      return true;
    }
    std::string dockerd;
    if (docker_test_sh("command -v dockerd", &dockerd) != 0) {
      why_ = "dockerd is not installed (apt-get install docker.io; scripts/install-deps.sh --test)";
      return false;
    }
    while (!dockerd.empty() && dockerd.back() == '\n') dockerd.pop_back();
    // Short: a Unix socket path is at most 107 bytes.
    dir_ = "/tmp/ferry-dockerd-" + std::to_string(getpid()) + "-" + std::to_string(++serial());
    remove_dir();
    std::filesystem::create_directories(dir_);
    socket_ = dir_ + "/docker.sock";
    ProcessLaunch l;
    l.argv = {dockerd,
              "--data-root",
              dir_ + "/data",
              "--exec-root",
              dir_ + "/exec",
              "--pidfile",
              dir_ + "/dockerd.pid",
              "-H",
              "unix://" + socket_,
              "--bridge=none",
              "--iptables=false",
              "--ip-masq=false"};
    l.log_path = dir_ + "/dockerd.log";
    auto h = start_process(l);
    if (!h.ok()) {
      why_ = "cannot start dockerd: " + h.status().message();
      return false;
    }
    pid_ = h->pid;
    for (int i = 0; i < 600; ++i) {  // up to 60 s (sanitizer builds, a loaded machine)
      if (ping(socket_)) return true;
      int code = 0;
      if (reap_child(pid_, &code)) {
        pid_ = 0;
        why_ = "dockerd exited with " + std::to_string(code) + "; its log:\n" + log();
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    why_ = "dockerd did not answer within 60 s; its log:\n" + log();
    stop();
    return false;
  }

  // Stops the dockerd this test started (never one it found running).
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int code = 0;
    bool ended = false;
    for (int i = 0; i < 300 && !(ended = reap_child(pid_, &code)); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!ended) {
      kill(pid_, SIGKILL);
      for (int i = 0; i < 100 && !reap_child(pid_, &code); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    pid_ = 0;
    remove_dir();
  }

  const std::string& socket() const { return socket_; }
  const std::string& why() const { return why_; }
  bool ours() const { return pid_ > 0; }
  std::string log() const {
    std::string out;
    docker_test_sh("tail -n 30 " + dir_ + "/dockerd.log", &out);
    return out;
  }

  // Builds deploy/docker-context.sh's context for `binaries` into `out_dir`; `bare`: an app
  // image (no certificates, no time zones).
  static bool make_context(const std::string& out_dir, const std::string& binaries,
                           std::string* error, bool bare = false) {
    return docker_test_sh(testing::source_dir() + "/deploy/docker-context.sh " +
                              (bare ? "--bare " : "") + out_dir + " " + binaries,
                          error) == 0;
  }

  // `docker import` through the API: `rootfs_dir` as the image `ref` ("name:tag").
  Status import_rootfs(const std::string& rootfs_dir, const std::string& ref) const {
    std::string tar;
    if (!docker_test_read("tar -C " + rootfs_dir + " -cf - . 2>/dev/null", &tar))
      return internal_error("tar of " + rootfs_dir + " failed");
    const size_t colon = ref.rfind(':');
    DockerApi api(socket_, 120'000);
    auto r = api.call("POST",
                      "/images/create?fromSrc=-&repo=" + url_encode(ref.substr(0, colon)) +
                          "&tag=" + url_encode(ref.substr(colon + 1)),
                      tar, "application/x-tar");
    if (!r.ok()) return r.status();
    if (r->status != 200 || r->body.find("\"error") != std::string::npos)
      return internal_error("import failed: " + r->body.substr(0, 500));
    return Status::Ok();
  }

  // `docker build` through the API: the folder `context_dir` (with its Dockerfile) as `ref`.
  Status build(const std::string& context_dir, const std::string& ref) const {
    std::string tar;
    if (!docker_test_read("tar -C " + context_dir + " -cf - . 2>/dev/null", &tar))
      return internal_error("tar of " + context_dir + " failed");
    DockerApi api(socket_, 300'000);
    auto r = api.call("POST", "/build?rm=1&t=" + url_encode(ref), tar, "application/x-tar");
    if (!r.ok()) return r.status();
    if (r->status != 200 || r->body.find("\"error") != std::string::npos)
      return internal_error("build failed: " + r->body.substr(0, 2000));
    return Status::Ok();
  }

 private:
  static int& serial() {
    static int n = 0;
    return n;
  }
  // dockerd leaves mounts under its exec-root (netns/default): unmount them, then remove.
  void remove_dir() const {
    std::ifstream mounts("/proc/self/mountinfo");
    std::vector<std::string> under;
    std::string line;
    while (std::getline(mounts, line)) {
      std::istringstream in(line);
      std::string f[5];
      for (auto& x : f) in >> x;
      if (f[4].starts_with(dir_ + "/")) under.push_back(f[4]);
    }
    std::sort(under.rbegin(), under.rend());  // deepest first
    for (const auto& m : under) umount2(m.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static bool ping(const std::string& socket) {
    DockerApi api(socket, 2000);
    auto r = api.call("GET", "/_ping");
    return r.ok() && r->status == 200;
  }

  std::string dir_;
  std::string socket_;
  std::string why_;
  int pid_ = 0;
};

}  // namespace ferry::testing
