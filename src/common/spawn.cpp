#include "common/spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace ferry {

namespace {

// What the child reports through the exec pipe when it cannot go on.
struct ChildError {
  int stage = 0;  // 1 chdir, 2 user switch, 3 exec
  int err = 0;
};

void close_range_or_loop(unsigned lo, unsigned hi) {
  if (lo > hi) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lo, hi, 0u) == 0) return;
#endif
  close_descriptors_by_loop(static_cast<int>(lo),
                            static_cast<int>(std::min<unsigned>(hi, INT_MAX)));
}

}  // namespace

void close_descriptors_by_loop(int lo, int hi) {
  struct rlimit rl {};
  long max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    max = static_cast<long>(std::min<rlim_t>(rl.rlim_cur, 1u << 20));
  for (long fd = lo; fd <= hi && fd < max; ++fd) close(static_cast<int>(fd));
}

void close_descriptors_from(int lowest, int keep) {
  if (keep >= lowest) {
    if (keep > lowest)
      close_range_or_loop(static_cast<unsigned>(lowest), static_cast<unsigned>(keep - 1));
    close_range_or_loop(static_cast<unsigned>(keep + 1), ~0u);
  } else {
    close_range_or_loop(static_cast<unsigned>(lowest), ~0u);
  }
}

bool can_switch_users() {
  if (geteuid() == 0) return true;
  FILE* f = std::fopen("/proc/self/status", "re");
  if (!f) return false;
  char line[256];
  unsigned long long eff = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, "CapEff:", 7) == 0) eff = std::strtoull(line + 7, nullptr, 16);
  std::fclose(f);
  constexpr unsigned long long kSetgid = 1ull << 6, kSetuid = 1ull << 7;
  return (eff & kSetgid) && (eff & kSetuid);
}

bool valid_user_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  bool digits = true;
  for (char c : name) digits &= std::isdigit(static_cast<unsigned char>(c)) != 0;
  if (digits) return name.size() <= 10;
  const unsigned char first = static_cast<unsigned char>(name[0]);
  if (!(std::islower(first) || first == '_')) return false;
  for (char c : name) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (!(std::islower(u) || std::isdigit(u) || u == '_' || u == '-')) return false;
  }
  return true;
}

Result<RunAs> lookup_user(const std::string& name) {
  if (!valid_user_name(name))
    return invalid_argument("run.user '" + name.substr(0, 64) +
                            "' is not a user name (1-32 of a-z 0-9 _ -, starting with a letter "
                            "or _) or a uid");
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  if (std::isdigit(static_cast<unsigned char>(name[0])))
    rc = getpwuid_r(static_cast<uid_t>(std::strtoul(name.c_str(), nullptr, 10)), &pw, buf.data(),
                    buf.size(), &found);
  else
    rc = getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found)
    return invalid_argument("run.user '" + name +
                            "' does not exist on this host (create it, e.g. " +
                            "`useradd --system --no-create-home " + name + "`)");
  RunAs r;
  r.uid = pw.pw_uid;
  r.gid = pw.pw_gid;
  r.home = pw.pw_dir ? pw.pw_dir : "/";
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups.data(), &n) < 0) n = 0;
  }
  groups.resize(static_cast<size_t>(std::max(n, 0)));
  r.groups = std::move(groups);
  return r;
}

std::vector<std::string> child_environment(const std::map<std::string, std::string>& env,
                                           const std::optional<RunAs>& user) {
  std::map<std::string, std::string> merged;
  for (const char* name : kInheritedEnv)
    if (const char* v = std::getenv(name)) merged[name] = v;
  if (user) merged["HOME"] = user->home;
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> out;
  out.reserve(merged.size());
  for (const auto& [k, v] : merged) out.push_back(k + "=" + v);
  return out;
}

Result<pid_t> spawn(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) return invalid_argument("empty command");
  std::vector<std::string> env_strings;
  if (o.inherit_parent_env) {
    for (char** e = environ; *e; ++e) {
      std::string_view kv(*e);
      const std::string name(kv.substr(0, kv.find('=')));
      if (o.env.count(name) ||
          std::find(o.unset_env.begin(), o.unset_env.end(), name) != o.unset_env.end())
        continue;
      env_strings.emplace_back(kv);
    }
    for (const auto& [k, v] : o.env) env_strings.push_back(k + "=" + v);
  } else {
    env_strings = child_environment(o.env, o.user);
  }
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = o.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  // A pipe closed on exec tells the parent whether exec worked.
  int exec_pipe[2];
  if (pipe2(exec_pipe, O_CLOEXEC) != 0) {
    if (devnull >= 0) close(devnull);
    return internal_error(std::string("pipe failed: ") + std::strerror(errno));
  }
  // vfork, not fork: the child borrows this process's memory until it execs, so starting it
  // costs the same whatever this process's size. A fork copied the page tables of the whole
  // process and left every page to fault again on its next write: ~27 ms per start from a
  // 50 MB sanitized process against ~2 ms (and the agent that starts a hundred instances
  // is not small). The child therefore makes system calls only: it allocates nothing,
  // takes no lock, and writes no memory but its own stack frame. Every signal is blocked
  // in this thread around vfork, so no handler of this process runs in the child before
  // it has reset them.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = vfork();
  if (pid < 0) {
    const int e = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (devnull >= 0) close(devnull);
    close(exec_pipe[0]);
    close(exec_pipe[1]);
    return internal_error(std::string("vfork failed: ") + std::strerror(e));
  }
  if (pid == 0) {
    auto fail = [&](int stage) {
      ChildError ce{stage, errno};
      (void)!write(exec_pipe[1], &ce, sizeof ce);
      _exit(127);
    };
    // The child has its own table of signal dispositions (no CLONE_SIGHAND): a handler of
    // the parent's becomes the default before any signal is let in; an ignored SIGPIPE is
    // not passed on either.
    for (int sig = 1; sig < NSIG; ++sig) {
      struct sigaction sa {};
      if (sigaction(sig, nullptr, &sa) != 0) continue;
      if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGPIPE)) continue;
      sa = {};
      sa.sa_handler = SIG_DFL;
      sigaction(sig, &sa, nullptr);
    }
    if (o.new_session)
      setsid();
    else
      setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int in = o.stdin_fd >= 0 ? o.stdin_fd : devnull;
    const int out = o.stdout_fd >= 0 ? o.stdout_fd : devnull;
    const int err = o.stderr_fd >= 0 ? o.stderr_fd : out;
    if (in >= 0) dup2(in, 0);
    if (out >= 0) dup2(out, 1);
    if (err >= 0) dup2(err, 2);
    // Listening sockets, the store and every other file of the parent stay behind.
    close_descriptors_from(3, exec_pipe[1]);
    if (o.user) {
      // Raw system calls: in a threaded process glibc's setuid()/setgid()/setgroups()
      // take a lock and signal every thread listed in the process's memory — in a vfork
      // child, the parent's lock and the parent's threads. The kernel changes only the
      // calling task, which is the child (the test checks the parent's threads stay root).
      if (syscall(SYS_setgroups, o.user->groups.size(), o.user->groups.data()) != 0) fail(2);
      if (syscall(SYS_setgid, o.user->gid) != 0) fail(2);
      if (syscall(SYS_setuid, o.user->uid) != 0) fail(2);
    }
    if (!o.cwd.empty() && chdir(o.cwd.c_str()) != 0) fail(1);
    execvpe(argv[0], argv.data(), envp.data());
    fail(3);
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);  // the child has exec'ed or exited
  if (devnull >= 0) close(devnull);
  close(exec_pipe[1]);
  ChildError ce;
  ssize_t n;
  while ((n = read(exec_pipe[0], &ce, sizeof ce)) < 0 && errno == EINTR) {
  }
  close(exec_pipe[0]);
  if (n > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    const std::string what = ce.stage == 1 ? "cannot enter " + o.cwd + " to start '" + o.argv[0]
                             : ce.stage == 2
                                 ? "cannot switch to the run.user to start '" + o.argv[0]
                                 : "cannot start '" + o.argv[0];
    return invalid_argument(what + "'" + (o.cwd.empty() ? "" : " in " + o.cwd) + ": " +
                            std::strerror(ce.err));
  }
  return pid;
}

std::string expand_vars_with(const std::string& text,
                             const std::function<std::string(const std::string&)>& lookup) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '$' || i + 1 >= text.size()) {
      out += c;
      continue;
    }
    if (text[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (text[i + 1] == '{') {
      const size_t end = text.find('}', i + 2);
      if (end == std::string::npos) {
        out += text.substr(i);
        break;
      }
      out += lookup(text.substr(i + 2, end - i - 2));
      i = end;
    } else if (std::isalpha(static_cast<unsigned char>(text[i + 1])) || text[i + 1] == '_') {
      size_t j = i + 1;
      while (j < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[j])) || text[j] == '_'))
        ++j;
      out += lookup(text.substr(i + 1, j - i - 1));
      i = j - 1;
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace ferry
