#include "agent/handoff.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

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

bool same_user(int conn) {
  ucred cred{};
  socklen_t len = sizeof cred;
  return getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == geteuid();
}

}  // namespace

void close_all(std::vector<HandedListener>& listeners) {
  for (auto& l : listeners)
    if (l.fd >= 0) {
      close(l.fd);
      l.fd = -1;
    }
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
    if (same_user(conn)) serve(conn);
    close(conn);
  }
}

void HandoffServer::serve(int conn) {
  // A peer that sends anything but a takeover request changes nothing.
  auto req = recv_frame(conn, kRequestTimeoutMs);
  if (!req.ok() || req->value("op", "") != "takeover" || req->value("version", 0) != 1) {
    (void)send_frame(conn, Json{{"error", "expected {\"op\":\"takeover\",\"version\":1}"}});
    return;
  }
  auto listeners = hooks_.begin();
  if (!listeners.ok()) {
    (void)send_frame(conn, Json{{"error", listeners.status().message()}});
    return;
  }
  Status sent = Status::Ok();
  size_t i = 0;
  do {
    Json frame{{"listeners", Json::array()}};
    std::vector<int> fds;
    for (; i < listeners->size() && fds.size() < kFdsPerFrame; ++i) {
      const HandedListener& l = (*listeners)[i];
      Json jl{{"app", l.app}, {"host", l.host}, {"port", l.port}};
      jl["stats"] = l.stats;
      frame["listeners"].push_back(std::move(jl));
      fds.push_back(l.fd);
    }
    frame["fds"] = fds.size();
    frame["last"] = i >= listeners->size();
    sent = send_frame(conn, frame, fds);
  } while (sent.ok() && i < listeners->size());
  close_all(*listeners);  // the successor holds them now (or nobody needs them)
  auto ready = sent.ok() ? recv_frame(conn, ready_timeout_ms_) : Result<Json>(sent);
  if (ready.ok() && ready->value("op", "") == "ready") {
    handed_over_ = true;
    hooks_.done();
    return;
  }
  hooks_.abort(ready.ok() ? "the successor answered " + ready->dump().substr(0, 200)
                          : ready.status().message());
}

// ---- the successor's side ----

HandoffClient::HandoffClient(HandoffClient&& o) noexcept
    : sock_(std::exchange(o.sock_, -1)), listeners_(std::move(o.listeners_)) {
  o.listeners_.clear();
}

HandoffClient::~HandoffClient() {
  close_all(listeners_);
  if (sock_ >= 0) close(sock_);
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
  if (Status s = send_frame(c.sock_, Json{{"op", "takeover"}, {"version", 1}}); !s.ok()) return s;
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
      if (!ls.is_array() || frame->at("fds").get<size_t>() != fds.size() ||
          ls.size() != fds.size() || c.listeners_.size() + fds.size() > kMaxHandoffListeners)
        throw std::runtime_error("count");
      std::vector<HandedListener> got;
      for (size_t i = 0; i < fds.size(); ++i) {
        HandedListener l;
        l.app = ls[i].at("app").get<std::string>();
        l.host = ls[i].at("host").get<std::string>();
        l.port = ls[i].at("port").get<uint16_t>();
        if (ls[i].contains("stats")) l.stats = ls[i]["stats"].get<std::vector<ReleaseStats>>();
        got.push_back(std::move(l));
      }
      last = frame->value("last", false);
      for (size_t i = 0; i < fds.size(); ++i) {
        got[i].fd = fds[i];
        c.listeners_.push_back(std::move(got[i]));
      }
    } catch (const std::exception&) {
      give_back();
      return invalid_argument("handoff frame from " + path +
                              " is malformed (listeners, fds, last)");
    }
    if (last) break;
  }
  return c;
}

Status HandoffClient::ready() {
  if (sock_ < 0) return failed_precondition("no handoff in progress");
  Status s = send_frame(sock_, Json{{"op", "ready"}});
  close(sock_);
  sock_ = -1;
  return s;
}

}  // namespace ferry
