#include "agent/handoff.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <utility>

#include "agent/process.h"

namespace ferry {

namespace {

// Descriptors per frame: well under the kernel's SCM_MAX_FD (253).
constexpr size_t kFdsPerFrame = 64;
constexpr int kRequestTimeoutMs = 5'000;

using SteadyClock = std::chrono::steady_clock;

int ms_left(SteadyClock::time_point until) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Reads exactly `len` bytes by `until`, collecting any descriptors that come with them.
Status read_exact(int sock, char* out, size_t len, SteadyClock::time_point until,
                  std::vector<int>* fds) {
  size_t got = 0;
  while (got < len) {
    pollfd p{sock, POLLIN, 0};
    const int r = poll(&p, 1, ms_left(until));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return deadline_exceeded("handoff peer sent nothing in time");
    iovec iov{out + got, len - got};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerFrame)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return unavailable(std::string("handoff read failed: ") + std::strerror(errno));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (fds)
          fds->push_back(fd);
        else
          close(fd);
      }
    }
    if (n == 0) return unavailable("handoff peer closed the connection");
    if (msg.msg_flags & MSG_CTRUNC)
      return invalid_argument("handoff frame carried too many descriptors");
    got += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status write_all(int sock, const std::string& data, const std::vector<int>& fds) {
  size_t sent = 0;
  bool fds_sent = fds.empty();
  while (sent < data.size()) {
    iovec iov{const_cast<char*>(data.data()) + sent, data.size() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kFdsPerFrame)];
    if (!fds_sent) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return unavailable(std::string("handoff write failed: ") + std::strerror(errno));
    fds_sent = true;
    sent += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// The peer's pid when it runs as our user, else 0.
int same_user_pid(int conn) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || cred.uid != geteuid())
    return 0;
  return cred.pid > 0 ? cred.pid : 0;
}

// Whether `pid` still runs (a zombie, waiting to be reaped, does not).
bool handoff_peer_alive(int pid) {
  if (pid <= 0) return false;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  const std::vector<std::string> f = proc_stat_fields(pid);
  return !f.empty() && f[0] != "Z";
}

Json listener_json(const HandedListener& l) {
  Json jl{{"app", l.app}, {"host", l.host}, {"port", l.port}};
  jl["stats"] = l.stats;
  return jl;
}

HandedListener listener_from_json(const Json& j) {
  HandedListener l;
  l.app = j.at("app").get<std::string>();
  l.host = j.at("host").get<std::string>();
  l.port = j.at("port").get<uint16_t>();
  if (j.contains("stats")) l.stats = j["stats"].get<std::vector<ReleaseStats>>();
  return l;
}

bool has_feature(const Json& req, const char* name) {
  const auto it = req.find("features");
  if (it == req.end() || !it->is_array()) return false;
  for (const auto& f : *it)
    if (f.is_string() && f.get<std::string>() == name) return true;
  return false;
}

// `after` minus `before`, field by field; never below zero.
ReleaseStats stats_minus(const ReleaseStats& after, const ReleaseStats& before) {
  auto sub = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  ReleaseStats d;
  d.release = after.release;
  d.requests = sub(after.requests, before.requests);
  d.status_1xx = sub(after.status_1xx, before.status_1xx);
  d.status_2xx = sub(after.status_2xx, before.status_2xx);
  d.status_3xx = sub(after.status_3xx, before.status_3xx);
  d.status_4xx = sub(after.status_4xx, before.status_4xx);
  d.status_5xx = sub(after.status_5xx, before.status_5xx);
  d.upstream_errors = sub(after.upstream_errors, before.upstream_errors);
  d.shielded = sub(after.shielded, before.shielded);
  d.pinned_requests = sub(after.pinned_requests, before.pinned_requests);
  d.pinned_5xx = sub(after.pinned_5xx, before.pinned_5xx);
  d.slo_requests = sub(after.slo_requests, before.slo_requests);
  d.slo_5xx = sub(after.slo_5xx, before.slo_5xx);
  d.latency_counts.resize(after.latency_counts.size());
  const bool same_buckets = before.latency_counts.size() == after.latency_counts.size();
  for (size_t i = 0; i < after.latency_counts.size(); ++i)
    d.latency_counts[i] = sub(after.latency_counts[i], same_buckets ? before.latency_counts[i] : 0);
  d.latency_sum_ms =
      std::max(0.0, after.latency_sum_ms - (same_buckets ? before.latency_sum_ms : 0));
  const uint64_t new_samples = sub(after.sample_seq, before.sample_seq);
  const size_t keep =
      static_cast<size_t>(std::min<uint64_t>(new_samples, after.recent_latencies_ms.size()));
  d.recent_latencies_ms.assign(after.recent_latencies_ms.end() - static_cast<std::ptrdiff_t>(keep),
                               after.recent_latencies_ms.end());
  d.sample_seq = new_samples;
  return d;
}

}  // namespace

void close_all(std::vector<HandedListener>& listeners) {
  for (auto& l : listeners)
    if (l.fd >= 0) {
      close(l.fd);
      l.fd = -1;
    }
}

std::vector<ReleaseStats> stats_since(const std::vector<ReleaseStats>& before,
                                      const std::vector<ReleaseStats>& after) {
  std::vector<ReleaseStats> out;
  for (const auto& a : after) {
    const auto b = std::find_if(before.begin(), before.end(),
                                [&](const ReleaseStats& x) { return x.release == a.release; });
    ReleaseStats d = b == before.end() ? stats_minus(a, ReleaseStats{}) : stats_minus(a, *b);
    if (d.requests > 0 || d.pinned_requests > 0 || d.upstream_errors > 0 || d.sample_seq > 0)
      out.push_back(std::move(d));
  }
  return out;
}

Status send_final_counts(const std::string& path, const std::vector<HandedListener>& counts,
                         int timeout_ms) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path)
    return invalid_argument("handoff socket path " + path + " is too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  const int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return internal_error("cannot make a Unix socket");
  if (connect(sock, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const std::string why = std::strerror(errno);
    close(sock);
    return unavailable("no agent answers on " + path + ": " + why);
  }
  Json frame{{"op", "counts"}, {"listeners", Json::array()}};
  for (const auto& l : counts) frame["listeners"].push_back(listener_json(l));
  Status s = send_frame(sock, frame);
  if (s.ok()) {
    auto answer = recv_frame(sock, timeout_ms);
    if (!answer.ok())
      s = answer.status();
    else if (answer->contains("error"))
      s = unavailable("the next agent refused the counts: " + answer->value("error", ""));
  }
  close(sock);
  return s.with_context("sending the last counts to " + path);
}

Status send_frame(int sock, const Json& body, const std::vector<int>& fds) {
  if (fds.size() > kFdsPerFrame) return invalid_argument("too many descriptors for one frame");
  const std::string text = body.dump();
  if (text.size() > kMaxFrameBytes)
    return invalid_argument("handoff frame of " + std::to_string(text.size()) +
                            " bytes is over the limit");
  std::string data(4, '\0');
  const auto n = static_cast<uint32_t>(text.size());
  data[0] = static_cast<char>(n >> 24);
  data[1] = static_cast<char>(n >> 16);
  data[2] = static_cast<char>(n >> 8);
  data[3] = static_cast<char>(n);
  data += text;
  return write_all(sock, data, fds);
}

Result<Json> recv_frame(int sock, int timeout_ms, std::vector<int>* fds) {
  const auto until = SteadyClock::now() + std::chrono::milliseconds(timeout_ms);
  unsigned char head[4];
  if (Status s = read_exact(sock, reinterpret_cast<char*>(head), 4, until, fds); !s.ok()) return s;
  const size_t n =
      (size_t{head[0]} << 24) | (size_t{head[1]} << 16) | (size_t{head[2]} << 8) | size_t{head[3]};
  if (n == 0 || n > kMaxFrameBytes)
    return invalid_argument("handoff frame length " + std::to_string(n) + " is not 1-" +
                            std::to_string(kMaxFrameBytes));
  std::string body(n, '\0');
  if (Status s = read_exact(sock, body.data(), n, until, fds); !s.ok()) return s;
  auto j = parse_json(body);
  if (!j.ok() || !j->is_object()) return invalid_argument("handoff frame is not a JSON object");
  return *j;
}

// ---- the running agent's side ----

HandoffServer::HandoffServer(std::string path, Hooks hooks, int ready_timeout_ms)
    : path_(std::move(path)), hooks_(std::move(hooks)), ready_timeout_ms_(ready_timeout_ms) {}

HandoffServer::~HandoffServer() {
  stop();
}

Status HandoffServer::start() {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path_.size() >= sizeof a.sun_path)
    return invalid_argument("handoff socket path " + path_ + " is too long");
  std::memcpy(a.sun_path, path_.c_str(), path_.size() + 1);
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return internal_error("cannot make the handoff socket");
  unlink(path_.c_str());  // a stale one from a crashed agent (we hold the data-dir lock)
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      chmod(path_.c_str(), 0600) != 0 || listen(listen_fd_, 4) != 0) {
    const std::string why = std::strerror(errno);
    close(listen_fd_);
    listen_fd_ = -1;
    return unavailable("cannot listen on handoff socket " + path_ + ": " + why);
  }
  if (pipe2(wake_, O_CLOEXEC) != 0) return internal_error("pipe failed");
  thread_ = std::thread([this] { loop(); });
  return Status::Ok();
}

void HandoffServer::stop() {
  if (wake_[1] >= 0) (void)!write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int& fd : wake_)
    if (fd >= 0) {
      close(fd);
      fd = -1;
    }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    // The successor binds its own socket at this path: only remove the file if it is ours.
    if (!handed_over_) unlink(path_.c_str());
  }
}

void HandoffServer::loop() {
  while (!handed_over_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents) return;
    if (!(p[0].revents & POLLIN)) continue;
    const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    if (const int pid = same_user_pid(conn); pid > 0) serve(conn, pid);
    close(conn);
  }
}

void HandoffServer::serve_counts(int conn, int pid, const Json& req) {
  std::vector<HandedListener> counts;
  try {
    const Json& ls = req.at("listeners");
    if (!ls.is_array() || ls.size() > kMaxHandoffListeners) throw std::runtime_error("count");
    for (const auto& j : ls) counts.push_back(listener_from_json(j));
  } catch (const std::exception&) {
    (void)send_frame(conn, Json{{"error", "counts frame is malformed (listeners)"}});
    return;
  }
  Status s = hooks_.counts ? hooks_.counts(pid, std::move(counts))
                           : failed_precondition("counts are not taken here");
  (void)send_frame(conn, s.ok() ? Json{{"op", "ok"}} : Json{{"error", s.message()}});
}

void HandoffServer::serve(int conn, int pid) {
  // A peer that sends anything but a takeover request changes nothing.
  auto req = recv_frame(conn, kRequestTimeoutMs);
  if (req.ok() && req->value("op", "") == "counts") return serve_counts(conn, pid, *req);
  if (!req.ok() || req->value("op", "") != "takeover" || req->value("version", 0) != 1) {
    (void)send_frame(conn, Json{{"error", "expected {\"op\":\"takeover\",\"version\":1}"}});
    return;
  }
  // A successor that knows the features takes the lock file and decides nothing alone.
  const bool commit = has_feature(*req, "lock") && has_feature(*req, "commit");
  const bool api = commit && has_feature(*req, "api");
  auto handover = hooks_.begin(commit);
  if (!handover.ok()) {
    (void)send_frame(conn, Json{{"error", handover.status().message()}});
    return;
  }
  std::vector<HandedListener>& listeners = handover->listeners;
  auto close_extras = [&] {
    for (int* fd : {&handover->lock_fd, &handover->api_fd})
      if (*fd >= 0) close(std::exchange(*fd, -1));
  };
  if (!api && handover->api_fd >= 0) close(std::exchange(handover->api_fd, -1));
  Status sent = Status::Ok();
  size_t i = 0;
  do {
    Json frame{{"listeners", Json::array()}};
    std::vector<int> fds;
    for (; i < listeners.size() && fds.size() + 2 < kFdsPerFrame; ++i) {
      frame["listeners"].push_back(listener_json(listeners[i]));
      fds.push_back(listeners[i].fd);
    }
    const bool last = i >= listeners.size();
    frame["last"] = last;
    if (last && commit) {
      Json extras = Json::array();
      if (handover->lock_fd >= 0) {
        extras.push_back("lock");
        fds.push_back(handover->lock_fd);
      }
      if (handover->api_fd >= 0) {
        extras.push_back("api");
        fds.push_back(handover->api_fd);
      }
      frame["extras"] = std::move(extras);
      frame["commit"] = true;
      frame["pid"] = static_cast<int>(getpid());
    }
    frame["fds"] = fds.size();
    sent = send_frame(conn, frame, fds);
  } while (sent.ok() && i < listeners.size());
  close_all(listeners);  // the successor holds them now (or nobody needs them)
  close_extras();
  auto ready = sent.ok() ? recv_frame(conn, ready_timeout_ms_) : Result<Json>(sent);
  if (ready.ok() && ready->value("op", "") == "ready") {
    if (hooks_.before_commit) hooks_.before_commit();
    // The decision: once "commit" is in the successor's queue, it is the agent. A successor
    // that withdrew (its deadline passed, shutdown(SHUT_RD)) makes this send fail: abort.
    Status committed = commit ? send_frame(conn, Json{{"op", "commit"}}) : Status::Ok();
    if (committed.ok()) {
      handed_over_ = true;
      hooks_.done();
      return;
    }
    ready = committed;
  }
  if (commit) (void)send_frame(conn, Json{{"op", "abort"}});
  hooks_.abort(ready.ok() ? "the successor answered " + ready->dump().substr(0, 200)
                          : ready.status().message());
}

// ---- the successor's side ----

HandoffClient::HandoffClient(HandoffClient&& o) noexcept
    : sock_(std::exchange(o.sock_, -1)),
      lock_fd_(std::exchange(o.lock_fd_, -1)),
      api_fd_(std::exchange(o.api_fd_, -1)),
      pid_(o.pid_),
      commit_(o.commit_),
      listeners_(std::move(o.listeners_)),
      decision_hooks_(std::move(o.decision_hooks_)) {
  o.listeners_.clear();
}

HandoffClient::~HandoffClient() {
  close_all(listeners_);
  for (int fd : {sock_, lock_fd_, api_fd_})
    if (fd >= 0) close(fd);
}

Result<HandoffClient> HandoffClient::take_over(const std::string& path, int timeout_ms) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  if (path.size() >= sizeof a.sun_path)
    return invalid_argument("handoff socket path " + path + " is too long");
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  HandoffClient c;
  c.sock_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c.sock_ < 0) return internal_error("cannot make a Unix socket");
  if (connect(c.sock_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    const std::string why = "no running agent answers on " + path + ": " + std::strerror(e);
    return e == ENOENT || e == ECONNREFUSED ? not_found(why) : unavailable(why);
  }
  const Json hello{{"op", "takeover"}, {"version", 1}, {"features", {"lock", "commit", "api"}}};
  if (Status s = send_frame(c.sock_, hello); !s.ok()) return s;
  for (;;) {
    std::vector<int> fds;
    auto frame = recv_frame(c.sock_, timeout_ms, &fds);
    auto give_back = [&] {
      for (int fd : fds) close(fd);
    };
    if (!frame.ok()) {
      give_back();
      return frame.status().with_context("taking over from the agent on " + path);
    }
    if (frame->contains("error")) {
      give_back();
      return unavailable("the running agent refused the handoff: " +
                         frame->value("error", std::string()));
    }
    bool last = false;
    try {
      const Json& ls = frame->at("listeners");
      std::vector<std::string> extras;
      if (frame->contains("extras")) extras = frame->at("extras").get<std::vector<std::string>>();
      if (!ls.is_array() || frame->at("fds").get<size_t>() != fds.size() ||
          ls.size() + extras.size() != fds.size() || extras.size() > 2 ||
          c.listeners_.size() + ls.size() > kMaxHandoffListeners)
        throw std::runtime_error("count");
      std::vector<HandedListener> got;
      for (const auto& j : ls) got.push_back(listener_from_json(j));
      last = frame->value("last", false);
      int lock_fd = -1, api_fd = -1;
      for (size_t k = 0; k < extras.size(); ++k) {
        int& slot = extras[k] == "lock" ? lock_fd : extras[k] == "api" ? api_fd : lock_fd;
        if ((extras[k] != "lock" && extras[k] != "api") || slot >= 0 || !last)
          throw std::runtime_error("extras");
        slot = fds[ls.size() + k];
      }
      c.commit_ = last && frame->value("commit", false);
      c.pid_ = last ? frame->value("pid", 0) : 0;
      for (size_t k = 0; k < got.size(); ++k) {
        got[k].fd = fds[k];
        c.listeners_.push_back(std::move(got[k]));
      }
      c.lock_fd_ = lock_fd;
      c.api_fd_ = api_fd;
    } catch (const std::exception&) {
      give_back();
      return invalid_argument("handoff frame from " + path +
                              " is malformed (listeners, fds, extras, last)");
    }
    if (last) break;
  }
  return c;
}

Status HandoffClient::ready(int timeout_ms) {
  if (sock_ < 0) return failed_precondition("no handoff in progress");
  Status s = send_frame(sock_, Json{{"op", "ready"}});
  if (commit_) {
    // Even when it closed before our "ready" got through, its "abort" may be waiting here.
    Result<Json> answer = recv_frame(sock_, s.ok() ? timeout_ms : 100);
    if (!answer.ok()) answer = withdraw(answer.status());
    const std::string op = answer.ok() ? answer->value("op", "") : "";
    if (op == "commit") {
      s = Status::Ok();
    } else if (op == "abort") {
      s = failed_precondition("the running agent gave up waiting for us and serves on");
    } else if (answer.ok()) {
      s = invalid_argument("the running agent answered " + answer->dump().substr(0, 200));
    } else {
      // No decision: if its process is gone (it crashed), we hold its lock and sockets.
      s = handoff_peer_alive(pid_) ? answer.status() : Status::Ok();
    }
  }
  close(sock_);
  sock_ = -1;
  return s;
}

Result<Json> HandoffClient::withdraw(Status why) {
  if (decision_hooks_.deadline_passed) decision_hooks_.deadline_passed();
  // From here the kernel refuses the running agent's frames (EPIPE: its "commit" fails and
  // it serves on); what it sent before stays queued for us. Both sides take this socket's
  // lock in the kernel, so its send and our shutdown are ordered: exactly one of "commit
  // sent" and "withdrawn first" happened.
  shutdown(sock_, SHUT_RD);
  if (decision_hooks_.withdrawn) decision_hooks_.withdrawn();
  auto late = recv_frame(sock_, 0);
  return late.ok() ? late : Result<Json>(std::move(why));
}

}  // namespace ferry
