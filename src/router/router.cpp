// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/router.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>

#include "common/crypto.h"
#include "router/session.h"
#include "router/worker.h"

namespace ferry {

namespace asio = boost::asio;
using routing::awaitable;
using routing::tcp;

struct Router::Impl {
  explicit Impl(RouterOptions o)
      : opts(std::move(o)), registry(static_cast<size_t>(std::clamp(opts.threads, 1, 64))) {
    opts.threads = std::clamp(opts.threads, 1, 64);
    for (int i = 0; i < opts.threads; ++i)
      workers.push_back(std::make_unique<routing::Worker>(i, opts, tables));
    std::lock_guard<std::mutex> lock(tables.mu);
    tables.current = registry.build(RouteTable{}, 0, nullptr);
  }

  awaitable<void> accept_loop();

  RouterOptions opts;
  // Workers are declared before everything that may own one of their sockets (acceptor,
  // tables, pooled connections), so those are destroyed while the io_contexts still exist.
  std::vector<std::unique_ptr<routing::Worker>> workers;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  std::optional<asio::basic_socket_acceptor<tcp, routing::Executor>> acceptor;
  routing::TableSource tables;
  mutable std::mutex registry_mu;  // guards registry and next_version; taken before tables.mu
  routing::Registry registry;
  uint64_t next_version = 1;
  std::atomic<uint16_t> port{0};
  bool started = false;
  bool stopped = false;
  bool adopted = false;
  // Accept loop control, on workers[0]'s thread only.
  bool accepting = false;
  // A handed-over socket may hold clients in its backlog: it is accepted from only once a
  // table is set (set_table), so none of them is answered from the empty initial table.
  std::atomic<bool> has_table{false};
  bool waiting_for_table = false;  // workers[0]'s thread only
};

namespace {

// Whether `fd` is a listening TCP socket bound to exactly `ep` (a handed-over socket is
// only trusted for the address it is meant for).
bool listens_on(int fd, const tcp::endpoint& ep) {
  int v = 0;
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) != 0 || v != 1) return false;
  len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM) return false;
  sockaddr_storage got{};
  len = sizeof got;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&got), &len) != 0) return false;
  const sockaddr* want = ep.data();
  if (got.ss_family != want->sa_family) return false;
  if (got.ss_family == AF_INET) {
    const auto& a = reinterpret_cast<const sockaddr_in&>(got);
    const auto& b = *reinterpret_cast<const sockaddr_in*>(want);
    return a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr;
  }
  if (got.ss_family == AF_INET6) {
    const auto& a = reinterpret_cast<const sockaddr_in6&>(got);
    const auto& b = *reinterpret_cast<const sockaddr_in6*>(want);
    return a.sin6_port == b.sin6_port &&
           std::memcmp(&a.sin6_addr, &b.sin6_addr, sizeof a.sin6_addr) == 0;
  }
  return false;
}

}  // namespace

awaitable<void> Router::Impl::accept_loop() {
  if (adopted && !has_table.load(std::memory_order_acquire)) {
    waiting_for_table = true;  // set_table starts the loop
    co_return;
  }
  size_t next = 0;
  for (;;) {
    routing::Worker& target = *workers[next++ % workers.size()];
    boost::system::error_code ec;
    routing::Socket socket =
        co_await acceptor->async_accept(target.ioc, asio::redirect_error(routing::kAwait, ec));
    if (!accepting) {
      // Paused for a hot restart: a connection accepted as the pause came is still served.
      if (!ec)
        asio::post(target.ioc, [&target, s = std::move(socket)]() mutable {
          std::make_shared<routing::Session>(target, std::move(s))->start();
        });
      co_return;
    }
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      // Out of descriptors or a transient error: back off instead of spinning.
      routing::Timer pause(workers[0]->ioc.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(routing::kAwait, ec));
      continue;
    }
    int open = 0;
    for (const auto& w : workers) open += w->connections.load(std::memory_order_relaxed);
    if (open >= opts.max_connections) {
      socket.close(ec);  // over the limit: refuse rather than degrade everyone
      continue;
    }
    asio::post(target.ioc, [&target, s = std::move(socket)]() mutable {
      std::make_shared<routing::Session>(target, std::move(s))->start();
    });
  }
}

Router::Router(RouterOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Router::~Router() {
  stop();
  if (impl_->opts.listen_fd >= 0) close(impl_->opts.listen_fd);  // never started
}

Status Router::start() {
  Impl& m = *impl_;
  if (m.started) return failed_precondition("router already started");
  if (m.opts.key.empty()) {
    if (!m.opts.key_file.empty()) {
      auto key = routing::load_router_key(m.opts.key_file);
      if (!key.ok()) return key.status();
      m.opts.key = std::move(*key);
    } else {
      m.opts.key = random_bytes(32);
    }
  }
  std::string where = m.opts.host + ":" + std::to_string(m.opts.port);
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(m.opts.host, ec);
  if (ec) return invalid_argument("router listen host '" + m.opts.host + "' is not an IP address");
  tcp::endpoint ep(addr, m.opts.port);
  m.acceptor.emplace(m.workers[0]->ioc);
  if (const int fd = std::exchange(m.opts.listen_fd, -1); fd >= 0) {
    // A socket handed over by the previous process: connections already queued in its
    // backlog are served here, none is refused.
    if (m.opts.port != 0 && listens_on(fd, ep)) {
      m.acceptor->assign(ep.protocol(), fd, ec);
      m.adopted = !ec;
    }
    if (!m.adopted) {
      close(fd);
      m.acceptor.emplace(m.workers[0]->ioc);
      ec.clear();
    }
  }
  if (m.adopted) {
    m.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  } else {
    m.acceptor->open(ep.protocol(), ec);
    if (!ec) m.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) m.acceptor->bind(ep, ec);
    if (!ec) m.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (!ec) fcntl(m.acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  if (ec) {
    m.acceptor.reset();
    return unavailable("router cannot listen on " + where + ": " + ec.message());
  }
  m.port = m.acceptor->local_endpoint().port();
  m.started = true;
  m.accepting = true;
  asio::co_spawn(m.workers[0]->ioc.get_executor(), m.accept_loop(), asio::detached);
  for (auto& w : m.workers) {
    m.guards.push_back(asio::make_work_guard(w->ioc));
    routing::Worker* wp = w.get();
    wp->thread = std::thread([wp] { wp->ioc.run(); });
  }
  return Status::Ok();
}

void Router::stop() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.stopped = true;
  for (auto& w : m.workers) w->ioc.stop();
  for (auto& w : m.workers)
    if (w->thread.joinable()) w->thread.join();
  // No io thread runs now: drop what holds sockets while the io_contexts still exist,
  // then the workers. Destroying an io_context destroys the suspended sessions, which
  // closes every client and upstream connection.
  boost::system::error_code ec;
  if (m.acceptor) m.acceptor->close(ec);
  m.acceptor.reset();
  m.guards.clear();
  std::lock_guard<std::mutex> lock(m.registry_mu);
  m.registry.clear_pools();
  m.workers.clear();
}

uint16_t Router::port() const {
  return impl_->port.load();
}

bool Router::adopted_listener() const {
  return impl_->adopted;
}

void Router::pause_accepting() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  std::promise<void> done;
  asio::post(m.workers[0]->ioc, [&m, &done] {
    m.accepting = false;
    boost::system::error_code ec;
    if (m.acceptor) m.acceptor->cancel(ec);
    done.set_value();
  });
  done.get_future().wait();
}

void Router::resume_accepting() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  std::promise<void> done;
  asio::post(m.workers[0]->ioc, [&m, &done] {
    if (!m.accepting && m.acceptor && m.acceptor->is_open()) {
      m.accepting = true;
      asio::co_spawn(m.workers[0]->ioc.get_executor(), m.accept_loop(), asio::detached);
    }
    done.set_value();
  });
  done.get_future().wait();
}

int Router::duplicate_listener() const {
  Impl& m = *impl_;
  if (!m.started || m.stopped || !m.acceptor) return -1;
  return fcntl(m.acceptor->native_handle(), F_DUPFD_CLOEXEC, 0);
}

void Router::drain() {
  for (auto& w : impl_->workers) w->draining.store(true, std::memory_order_relaxed);
}

int Router::connections() const {
  int n = 0;
  for (const auto& w : impl_->workers) n += w->connections.load(std::memory_order_relaxed);
  return n;
}

void Router::seed_stats(const std::vector<ReleaseStats>& stats) {
  std::lock_guard<std::mutex> lock(impl_->registry_mu);
  impl_->registry.seed(stats);
}

void Router::set_table(RouteTable table) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.registry_mu);
  auto snap = m.registry.build(std::move(table), m.next_version++, nullptr);
  std::lock_guard<std::mutex> tables_lock(m.tables.mu);
  m.tables.current = std::move(snap);
  m.tables.version.store(m.tables.current->version, std::memory_order_release);
  if (m.has_table.exchange(true, std::memory_order_acq_rel) || !m.started || m.stopped) return;
  // A handed-over socket waited for this table before accepting: accept now.
  asio::post(m.workers[0]->ioc, [&m] {
    if (m.waiting_for_table && m.accepting && m.acceptor && m.acceptor->is_open()) {
      m.waiting_for_table = false;
      asio::co_spawn(m.workers[0]->ioc.get_executor(), m.accept_loop(), asio::detached);
    }
  });
}

RouteTable Router::table() const {
  std::lock_guard<std::mutex> lock(impl_->tables.mu);
  return impl_->tables.current->table;
}

int Router::in_flight(const std::string& backend_id) const {
  std::lock_guard<std::mutex> lock(impl_->registry_mu);
  return impl_->registry.in_flight(backend_id);
}

std::vector<ReleaseStats> Router::stats() const {
  std::lock_guard<std::mutex> lock(impl_->registry_mu);
  return impl_->registry.stats();
}

}  // namespace ferry
