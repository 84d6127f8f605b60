// router_bench: the processes of the router benchmarks (bench/router/run.sh, shield.sh).
//   router_bench backend PORT [--status N]
//       A minimal keep-alive HTTP/1.1 server (one thread, epoll) answering every request
//       with a 13-byte body (status 200, or N: a bad release); the same upstream for
//       ferry, nginx and haproxy.
//   router_bench router PORT BACKEND_PORT [BACKEND_PORT...] [--threads N] [--tls CERT KEY]
//                [--tls-tickets N] [--canary PORT --canary-weight W] [--no-shield] [--slo-reads MS]
//                [--slo-exclude N]
//       ferry's Router on 127.0.0.1:PORT with release "v1" (stable) over those backends,
//       and with --canary a release "v2" at weight W% on that backend. With --slo-reads a
//       thread reads the router's counters every MS ms and computes what is new since its
//       last read, as the SLO collector does (server/slo_service.h; it reads every 10 s),
//       and prints how many reads it made (bench/router/slo.sh). With --slo-exclude the
//       router leaves N paths out of its SLO counter set (prefixes no request matches: every
//       request is compared with all N, the most a router does; RouterSpec::slo_exclude_paths)
//       and the reader reads that set. On exit it prints each
//       release's counters (requests, 5xx, shielded) to stderr.
// Both run until SIGINT or SIGTERM.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>

#include "router/router.h"
#include "slo/slo.h"

namespace {

void wait_for_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  int sig = 0;
  sigwait(&set, &sig);
}

int run_backend(int port, int status) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(lfd, 1024) != 0) {
    perror("backend: bind/listen");
    return 1;
  }
  int ep = epoll_create1(0);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  const std::string response = "HTTP/1.1 " + std::to_string(status) +
                               " X\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
                               "Hello, world\n";
  std::unordered_map<int, std::string> pending;  // partial request bytes per connection
  epoll_event events[256];
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK)) >= 0) {
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event cev{};
          cev.events = EPOLLIN;
          cev.data.fd = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        pending.erase(fd);
        close(fd);
        continue;
      }
      std::string& p = pending[fd];
      p.append(buf, static_cast<size_t>(r));
      // Requests of this benchmark have no body: each head ends a request.
      std::string out;
      size_t at = 0, end;
      while ((end = p.find("\r\n\r\n", at)) != std::string::npos) {
        out.append(response);
        at = end + 4;
      }
      p.erase(0, at);
      if (!out.empty() && write(fd, out.data(), out.size()) < 0) {
        pending.erase(fd);
        close(fd);
      }
    }
  }
}

int run_router(int argc, char** argv) {
  ferry::RouterOptions opts;
  opts.port = static_cast<uint16_t>(std::stoi(argv[2]));
  ferry::RouteTable table;
  table.stable = "v1";
  int canary_weight = 0;
  int slo_read_ms = 0;
  for (int i = 3; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
      opts.threads = std::stoi(argv[++i]);
      continue;
    }
    if (std::strcmp(argv[i], "--canary") == 0 && i + 1 < argc) {
      table.backends.push_back(
          {"canary", "v2", "127.0.0.1", static_cast<uint16_t>(std::stoi(argv[++i]))});
      continue;
    }
    if (std::strcmp(argv[i], "--canary-weight") == 0 && i + 1 < argc) {
      canary_weight = std::stoi(argv[++i]);
      continue;
    }
    if (std::strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {  // CERT KEY (bench/router/tls.sh)
      opts.tls.certificates.push_back({argv[i + 1], argv[i + 2]});
      i += 2;
      continue;
    }
    if (std::strcmp(argv[i], "--tls-tickets") == 0 && i + 1 < argc) {  // N (tls.sh TICKETS)
      opts.tls_session_tickets = std::stoi(argv[++i]);
      continue;
    }
    if (std::strcmp(argv[i], "--no-shield") == 0) {
      table.policy.shield = false;
      continue;
    }
    if (std::strcmp(argv[i], "--slo-reads") == 0 && i + 1 < argc) {
      slo_read_ms = std::stoi(argv[++i]);
      continue;
    }
    if (std::strcmp(argv[i], "--slo-exclude") == 0 && i + 1 < argc) {
      const int n = std::stoi(argv[++i]);
      for (int k = 0; k < n; ++k)
        table.policy.slo_exclude_paths.push_back("/excluded/path-" + std::to_string(k) + "/*");
      continue;
    }
    char id[24];
    std::snprintf(id, sizeof id, "b%zu", table.backends.size());
    table.backends.push_back({id, "v1", "127.0.0.1", static_cast<uint16_t>(std::stoi(argv[i]))});
  }
  // Block the signals before the io threads start so they inherit the mask.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  table.weights["v1"] = 100 - canary_weight;
  if (canary_weight > 0) table.weights["v2"] = canary_weight;
  ferry::Router router(opts);
  router.set_table(table);
  ferry::Status st = router.start();
  if (!st.ok()) {
    std::fprintf(stderr, "router: %s\n", st.to_string().c_str());
    return 1;
  }
  // The SLO collector's side: read the counters, count what is new since the last read.
  std::atomic<bool> done{false};
  uint64_t reads = 0, counted = 0;
  std::thread reader;
  if (slo_read_ms > 0)
    reader = std::thread([&] {
      std::unordered_map<std::string, ferry::ReleaseStats> last;
      while (!done) {
        for (const auto& r : router.stats()) {
          auto it = last.find(r.release);
          counted += ferry::slo::counts_between(it == last.end() ? nullptr : &it->second, r,
                                                !table.policy.slo_exclude_paths.empty())
                         .requests;
          last[r.release] = r;
        }
        ++reads;
        std::this_thread::sleep_for(std::chrono::milliseconds(slo_read_ms));
      }
    });
  wait_for_signal();
  done = true;
  if (reader.joinable()) reader.join();
  if (slo_read_ms > 0)
    std::fprintf(stderr, "slo reads=%llu counted=%llu\n", static_cast<unsigned long long>(reads),
                 static_cast<unsigned long long>(counted));
  for (const auto& r : router.stats())
    std::fprintf(stderr,
                 "release %s requests=%llu slo_requests=%llu status_5xx=%llu upstream_errors=%llu "
                 "shielded=%llu\n",
                 r.release.c_str(), static_cast<unsigned long long>(r.requests),
                 static_cast<unsigned long long>(r.slo_requests),
                 static_cast<unsigned long long>(r.status_5xx),
                 static_cast<unsigned long long>(r.upstream_errors),
                 static_cast<unsigned long long>(r.shielded));
  router.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc >= 3 && std::strcmp(argv[1], "backend") == 0) {
    int status = 200;
    if (argc >= 5 && std::strcmp(argv[3], "--status") == 0) status = std::stoi(argv[4]);
    return run_backend(std::stoi(argv[2]), status);
  }
  if (argc >= 4 && std::strcmp(argv[1], "router") == 0) return run_router(argc, argv);
  std::fprintf(stderr,
               "usage: router_bench backend PORT [--status N]\n"
               "       router_bench router PORT BACKEND_PORT... [--threads N]\n"
               "                    [--tls CERT KEY [--tls-tickets N]]\n"
               "                    [--canary PORT --canary-weight W] [--no-shield]\n"
               "                    [--slo-reads MS] [--slo-exclude N]\n");
  return 2;
}
