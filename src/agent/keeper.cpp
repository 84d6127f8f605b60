#include "agent/keeper.h"

#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>

namespace ferry {

namespace {

using KeeperClock = std::chrono::steady_clock;

void close_held(Handover& h) {
  close_all(h.listeners);
  h.listeners.clear();
  for (int* fd : {&h.lock_fd, &h.api_fd})
    if (*fd >= 0) close(std::exchange(*fd, -1));
}

void close_fds(const std::vector<int>& fds) {
  for (int fd : fds)
    if (fd >= 0) close(fd);
}

bool short_string(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() && !it->get<std::string>().empty() &&
         it->get<std::string>().size() <= 256;
}

bool flag(const Json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

int ms_until(KeeperClock::time_point t) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - KeeperClock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, 1'000'000));
}

}  // namespace

Status send_kept(int link, const std::vector<HandedListener>& listeners, int lock_fd, int api_fd) {
  size_t i = 0;
  do {
    const size_t n = std::min(kKeptPerFrame, listeners.size() - i);
    const bool last = i + n == listeners.size();
    Json frame{{"op", "keep"}, {"listeners", Json::array()}, {"last", last}};
    std::vector<int> fds;
    for (size_t k = i; k < i + n; ++k) {
      frame["listeners"].push_back(
          {{"app", listeners[k].app}, {"host", listeners[k].host}, {"port", listeners[k].port}});
      fds.push_back(listeners[k].fd);
    }
    frame["lock"] = last && lock_fd >= 0;
    frame["api"] = last && api_fd >= 0;
    if (last && lock_fd >= 0) fds.push_back(lock_fd);
    if (last && api_fd >= 0) fds.push_back(api_fd);
    if (Status s = send_frame(link, frame, fds); !s.ok())
      return s.with_context("sending the listening sockets to the agent's keeper");
    i += n;
  } while (i < listeners.size());
  return Status::Ok();
}

Status send_handing_over(int link) {
  if (Status s = send_frame(link, Json{{"op", "handing_over"}}); !s.ok())
    return s.with_context("telling the agent's keeper of a handoff");
  return Status::Ok();
}

Status take_kept_frame(const Json& frame, std::vector<int> fds, Handover* pending, Handover* held) {
  auto refuse = [&](const std::string& why) {
    close_fds(fds);
    close_held(*pending);  // a set is taken whole or not at all
    return invalid_argument("keeper frame refused: " + why);
  };
  if (!frame.is_object() || frame.value("op", "") != "keep") return refuse("not a keep frame");
  const auto it = frame.find("listeners");
  if (it == frame.end() || !it->is_array() || it->size() > kKeptPerFrame)
    return refuse("listeners must be a list of at most " + std::to_string(kKeptPerFrame));
  const bool last = flag(frame, "last");
  const bool lock = flag(frame, "lock");
  const bool api = flag(frame, "api");
  if (!last && (lock || api)) return refuse("lock and api come with the last frame");
  if (fds.size() != it->size() + (lock ? 1 : 0) + (api ? 1 : 0))
    return refuse("descriptors do not match the frame");
  if (pending->listeners.size() + it->size() > kMaxHandoffListeners)
    return refuse("more than " + std::to_string(kMaxHandoffListeners) + " listeners");
  std::vector<HandedListener> add;
  for (const auto& l : *it) {
    if (!l.is_object() || !short_string(l, "app") || !short_string(l, "host") ||
        !l.contains("port") || !l["port"].is_number_integer() || l["port"].get<int64_t>() < 1 ||
        l["port"].get<int64_t>() > 65535)
      return refuse("a listener needs app, host and a port 1-65535");
    add.push_back({l["app"].get<std::string>(),
                   l["host"].get<std::string>(),
                   static_cast<uint16_t>(l["port"].get<int64_t>()),
                   -1,
                   {}});
  }
  for (size_t k = 0; k < add.size(); ++k) add[k].fd = fds[k];
  for (auto& l : add) pending->listeners.push_back(std::move(l));
  size_t next = add.size();
  if (lock) pending->lock_fd = fds[next++];
  if (api) pending->api_fd = fds[next++];
  if (last) {
    close_held(*held);
    *held = std::move(*pending);
    *pending = Handover{};
  }
  return Status::Ok();
}

int run_keeper(const KeeperOptions& o) {
  // `ps -o pid,comm,args` and top tell the keeper from the agent process it runs.
  prctl(PR_SET_NAME, "ferry-keeper");
  sigset_t worker_mask;
  pthread_sigmask(SIG_SETMASK, nullptr, &worker_mask);
  sigdelset(&worker_mask, SIGCHLD);
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  const int sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sig_fd < 0) {
    std::cerr << "error: the agent's keeper cannot watch signals (signalfd failed)\n";
    return 2;
  }
  Handover held, pending;
  int worker = 0;
  int link = -1;
  int restarts = 0;
  int deaths = 0;
  bool served_ever = false;
  bool stopping = false;
  bool handing_over = false;  // the worker is handing over to a successor: no restart
  KeeperClock::time_point started{};
  std::optional<KeeperClock::time_point> restart_at;
  auto done = [&](int code) {
    close_held(held);
    close_held(pending);
    if (link >= 0) close(link);
    close(sig_fd);
    return code;
  };

  auto fork_worker = [&]() -> bool {
    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) return false;
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);  // nothing buffered is written twice
    const pid_t keeper = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
      close(sp[0]);
      close(sp[1]);
      return false;
    }
    if (pid == 0) {
      close(sp[0]);
      close(sig_fd);
      close_held(pending);
      prctl(PR_SET_NAME, "ferry");
      // The keeper gone (killed), the worker stops as on SIGTERM: a new keeper starts a
      // new one, which must find the data dir free.
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != keeper) kill(getpid(), SIGTERM);
      pthread_sigmask(SIG_SETMASK, &worker_mask, nullptr);
      Handover kept = held;  // this process's copies of the keeper's descriptors
      held = Handover{};
      std::exit(o.worker(std::move(kept), sp[1], restarts));
    }
    close(sp[1]);
    if (link >= 0) close(link);
    link = sp[0];
    worker = pid;
    started = KeeperClock::now();
    ++restarts;
    return true;
  };

  // The frames the worker sent (also those sent just before it ended, which may come with
  // its SIGCHLD). A frame begun is read whole (up to 2 s); a broken one ends the link.
  auto take_frames = [&] {
    while (link >= 0) {
      pollfd p{link, POLLIN, 0};
      if (poll(&p, 1, 0) != 1) return;
      std::vector<int> fds;
      auto frame = recv_frame(link, 2000, &fds);
      if (!frame.ok()) {
        close_fds(fds);
        close(std::exchange(link, -1));  // the worker closed its end: its SIGCHLD follows
        close_held(pending);
        return;
      }
      if (frame->is_object() && frame->value("op", "") == "handing_over" && fds.empty()) {
        handing_over = true;
      } else if (Status s = take_kept_frame(*frame, std::move(fds), &pending, &held); !s.ok()) {
        if (o.log) o.log->warn(s.message(), {});
      } else if (flag(*frame, "last")) {
        served_ever = true;
        handing_over = false;  // the handoff failed: it serves on
      }
    }
  };

  // What to do once the worker ended: a number to exit with, or nothing (restart).
  auto worker_ended = [&](int status) -> std::optional<int> {
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    worker = 0;
    take_frames();
    if (link >= 0) close(std::exchange(link, -1));
    close_held(pending);
    if (code == 0 || stopping) return code;
    if (handing_over) {
      if (o.log)
        o.log->error("the agent process ended while handing over; its successor goes on",
                     {{"exit_code", code}});
      return code;
    }
    if (!served_ever) {
      if (o.log) o.log->error("the agent failed to start", {{"exit_code", code}});
      return code;
    }
    if (KeeperClock::now() - started >= std::chrono::milliseconds(o.stable_ms)) deaths = 0;
    if (++deaths > o.give_up_after) {
      if (o.log)
        o.log->error("the agent keeps dying; the keeper gives up",
                     {{"deaths_in_a_row", deaths - 1}, {"exit_code", code}});
      return code;
    }
    const int delay =
        deaths == 1 ? 0 : std::min(o.backoff_max_ms, o.backoff_min_ms << std::min(deaths - 2, 20));
    if (o.log)
      o.log->warn("the agent process ended; the keeper starts it again",
                  {{"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0},
                   {"exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : 0},
                   {"delay_ms", delay},
                   {"deaths_in_a_row", deaths},
                   {"kept_sockets", held.listeners.size()}});
    restart_at = KeeperClock::now() + std::chrono::milliseconds(delay);
    return std::nullopt;
  };

  if (!fork_worker()) {
    std::cerr << "error: the agent's keeper cannot start the agent process\n";
    return done(2);
  }
  for (;;) {
    if (restart_at && ms_until(*restart_at) == 0) {
      restart_at.reset();
      if (!fork_worker()) {
        if (o.log) o.log->error("the keeper cannot start the agent process", {});
        return done(2);
      }
    }
    pollfd p[2] = {{sig_fd, POLLIN, 0}, {link, POLLIN, 0}};
    const int n = poll(p, link >= 0 ? 2 : 1, restart_at ? ms_until(*restart_at) : -1);
    if (n < 0 && errno != EINTR) return done(2);
    if (link >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) take_frames();
    signalfd_siginfo si{};
    while (read(sig_fd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      const int sig = static_cast<int>(si.ssi_signo);
      if (sig == SIGCHLD) {
        int status = 0;
        if (worker > 0 && waitpid(worker, &status, WNOHANG) == worker)
          if (auto code = worker_ended(status)) return done(*code);
      } else if (sig == SIGHUP) {
        if (worker > 0) kill(worker, SIGHUP);  // the worker starts a planned restart
      } else {
        stopping = true;
        if (worker <= 0) return done(0);
        kill(worker, sig);
      }
    }
  }
}

}  // namespace ferry
