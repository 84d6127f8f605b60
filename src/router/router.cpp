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
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "common/crypto.h"
#include "router/access_log.h"
#include "router/io_pool.h"
#include "router/session.h"
#include "router/tls.h"
#include "router/worker.h"

namespace ferry {

namespace asio = boost::asio;
using routing::awaitable;
using routing::tcp;

struct Router::Impl {
  explicit Impl(RouterOptions o)
      : opts(std::move(o)),
        registry(opts.io_pool ? opts.io_pool->size()
                              : static_cast<size_t>(std::clamp(opts.threads, 1, 64))) {
    opts.threads = std::clamp(opts.threads, 1, 64);
    MutexLock lock(tables.mu);
    tables.current = registry.build(RouteTable{}, 0, nullptr);
  }

  // Accepts on the app's port, or (`http`) on the plain port beside a TLS one.
  awaitable<void> accept_loop(bool http = false);
  // Checks the certificate files every tls_reload_interval_ms and loads a changed set.
  awaitable<void> reload_loop();
  // Binds the plain port (home thread). Adopted listeners are handed over while the
  // previous process still holds that port, so then it is tried again until it is free.
  boost::system::error_code bind_http();
  awaitable<void> bind_http_loop();
  routing::Listener listener(bool http) {
    if (http) return routing::Listener{nullptr, opts.tls.redirect};
    return routing::Listener{tls, false};
  }
  routing::Worker& home() { return *workers[home_index]; }
  // Runs `fn` on worker `w`'s io thread and waits for it.
  template <typename Fn>
  void run_on(routing::Worker& w, Fn fn) {
    std::promise<void> done;
    asio::post(w.ioc, [&fn, &done] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  }
  void spawn_accept_loop() {
    accept_loops.fetch_add(1, std::memory_order_acq_rel);
    asio::co_spawn(home().ioc.get_executor(), accept_loop(), asio::detached);
  }
  // Any coroutine of the router on the home thread; stop() waits for it to end.
  template <typename Fn>
  void spawn_home(Fn fn) {
    accept_loops.fetch_add(1, std::memory_order_acq_rel);
    asio::co_spawn(home().ioc.get_executor(), fn(), asio::detached);
  }

  RouterOptions opts;
  // The io threads: options.io_pool, or a pool of this router's own (made by start()).
  std::shared_ptr<RouterIoPool> pool;
  // One per pool thread. Declared before everything that may own one of their sockets
  // (acceptor, tables, pooled connections), so those are destroyed first.
  std::vector<std::unique_ptr<routing::Worker>> workers;
  size_t home_index = 0;  // the worker whose thread runs the accept loop
  std::optional<asio::basic_socket_acceptor<tcp, routing::Executor>> acceptor;
  // The plain port beside a TLS one (home thread only), and whether it is accepting.
  std::optional<asio::basic_socket_acceptor<tcp, routing::Executor>> http_acceptor;
  bool http_accepting = false;
  std::atomic<uint16_t> http_port{0};
  // The certificate set new connections get (home thread only), the files' stamp it was
  // loaded at, and the reload timer.
  std::shared_ptr<routing::TlsContexts> tls;
  std::string tls_stamp;
  std::optional<routing::Timer> reload_timer;
  std::atomic<uint64_t> tls_reloads{0};
  std::atomic<uint64_t> tls_reload_failures{0};
  std::string failed_stamp;  // home thread only
  mutable Mutex tls_error_mu;
  std::string tls_error FERRY_GUARDED_BY(tls_error_mu);
  // Destroyed after the workers' sessions (stop() waits for them).
  std::unique_ptr<routing::AccessLog> access_log;
  routing::TableSource tables;
  mutable Mutex registry_mu;  // taken before tables.mu
  routing::Registry registry FERRY_GUARDED_BY(registry_mu);
  uint64_t next_version FERRY_GUARDED_BY(registry_mu) = 1;
  std::atomic<uint16_t> port{0};
  bool started = false;
  bool stopped = false;
  bool adopted = false;
  bool release_port = false;  // stop() lets the port go for good (release_port())
  // Accept loop control, on the home worker's thread only.
  bool accepting = false;
  // Accept loops spawned and not yet finished (stop() waits for 0).
  std::atomic<int> accept_loops{0};
  // A handed-over socket may hold clients in its backlog: it is accepted from only once a
  // table is set (set_table), so none of them is answered from the empty initial table.
  std::atomic<bool> has_table{false};
  bool waiting_for_table = false;  // home worker's thread only
  bool stopping_home = false;      // home worker's thread only: stop() has begun
};

namespace {

// Starts a session for an accepted client on `w`'s thread, unless the router is stopping
// by then (the socket is closed with the lambda). On that thread already (one io thread,
// or the accept loop's own worker's turn) it starts at once (dispatch): no trip through
// the queue.
void start_session(routing::Worker& w, routing::Socket socket, routing::Listener l,
                   const tcp::endpoint& peer) {
  asio::dispatch(w.ioc, [&w, s = std::move(socket), l = std::move(l), peer]() mutable {
    if (!w.stopping) routing::make_session(w, std::move(s), std::move(l), peer)->start();
  });
}

}  // namespace

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

struct LoopDone {
  std::atomic<int>& n;
  ~LoopDone() { n.fetch_sub(1, std::memory_order_acq_rel); }
};

awaitable<void> Router::Impl::accept_loop(bool http) {
  LoopDone done{accept_loops};
  if (!http && adopted && !has_table.load(std::memory_order_acquire)) {
    waiting_for_table = true;  // set_table starts the loop
    co_return;
  }
  auto& acc = http ? *http_acceptor : *acceptor;
  bool& on = http ? http_accepting : accepting;
  size_t next = home_index;
  for (;;) {
    routing::Worker& target = *workers[next++ % workers.size()];
    boost::system::error_code ec;
    tcp::endpoint peer;  // from accept itself: no getpeername per connection
    routing::Socket socket =
        co_await acc.async_accept(target.ioc, peer, asio::redirect_error(routing::kAwait, ec));
    if (!on) {
      // Paused for a hot restart: a connection accepted as the pause came is still served.
      if (!ec) start_session(target, std::move(socket), listener(http), peer);
      co_return;
    }
    if (ec) {
      if (ec == asio::error::operation_aborted || !acc.is_open()) co_return;
      // Out of descriptors or a transient error: back off instead of spinning.
      routing::Timer pause(home().ioc.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(asio::redirect_error(routing::kAwait, ec));
      if (!on) co_return;
      continue;
    }
    int open = 0;
    for (const auto& w : workers) open += w->connections.load(std::memory_order_relaxed);
    if (open >= opts.max_connections) {
      socket.close(ec);  // over the limit: refuse rather than degrade everyone
      continue;
    }
    start_session(target, std::move(socket), listener(http), peer);
  }
}

awaitable<void> Router::Impl::reload_loop() {
  LoopDone done{accept_loops};
  while (!stopping_home) {
    reload_timer->expires_after(std::chrono::milliseconds(opts.tls_reload_interval_ms));
    boost::system::error_code ec;
    co_await reload_timer->async_wait(asio::redirect_error(routing::kAwait, ec));
    if (ec || stopping_home) co_return;
    std::string stamp = routing::tls_files_stamp(opts.tls);
    if (stamp == tls_stamp) continue;
    auto loaded = routing::TlsContexts::load(opts.tls, opts.tls_session_tickets);
    // A half-written pair (certificate replaced, key not yet) fails here and is tried again
    // at the next tick: the stamp is only taken once a set loads.
    MutexLock lock(tls_error_mu);
    if (!loaded.ok()) {
      tls_error = loaded.status().message();
      // Counted once per set of files, though retried at every tick.
      if (stamp != failed_stamp) tls_reload_failures.fetch_add(1, std::memory_order_relaxed);
      failed_stamp = std::move(stamp);
      continue;
    }
    tls_error.clear();
    tls = std::move(*loaded);
    tls_stamp = std::move(stamp);
    tls_reloads.fetch_add(1, std::memory_order_relaxed);
  }
}

boost::system::error_code Router::Impl::bind_http() {
  boost::system::error_code ec;
  tcp::endpoint ep(acceptor->local_endpoint().address(), opts.tls.http_port);
  http_acceptor.emplace(home().ioc);
  http_acceptor->open(ep.protocol(), ec);
  if (!ec) http_acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) http_acceptor->bind(ep, ec);
  if (!ec) http_acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    http_acceptor.reset();
    return ec;
  }
  fcntl(http_acceptor->native_handle(), F_SETFD, FD_CLOEXEC);
  http_port = http_acceptor->local_endpoint().port();
  http_accepting = true;
  accept_loops.fetch_add(1, std::memory_order_acq_rel);
  asio::co_spawn(home().ioc.get_executor(), accept_loop(true), asio::detached);
  return ec;
}

awaitable<void> Router::Impl::bind_http_loop() {
  LoopDone done{accept_loops};
  routing::Timer pause(home().ioc.get_executor());
  while (!stopping_home && accepting && !http_acceptor) {
    if (!bind_http()) co_return;
    pause.expires_after(std::chrono::milliseconds(100));
    boost::system::error_code ec;
    co_await pause.async_wait(asio::redirect_error(routing::kAwait, ec));
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
  if (m.opts.tls.enabled()) {
    auto loaded = routing::TlsContexts::load(m.opts.tls, m.opts.tls_session_tickets);
    if (!loaded.ok()) return loaded.status();
    m.tls = std::move(*loaded);
    m.tls_stamp = routing::tls_files_stamp(m.opts.tls);
  }
  if (!m.opts.access_log.path.empty()) {
    auto log = routing::AccessLog::open(m.opts.access_log, m.opts.access_log_queue_lines);
    if (!log.ok()) return log.status();
    m.access_log = std::move(*log);
  }
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(m.opts.host, ec);
  if (ec) return invalid_argument("router listen host '" + m.opts.host + "' is not an IP address");
  tcp::endpoint ep(addr, m.opts.port);
  m.pool = m.opts.io_pool ? m.opts.io_pool : std::make_shared<RouterIoPool>(m.opts.threads);
  for (size_t i = 0; i < m.pool->size(); ++i)
    m.workers.push_back(std::make_unique<routing::Worker>(i, m.pool->context(i), m.opts, m.tables));
  m.home_index = m.pool->next_home();
  m.acceptor.emplace(m.home().ioc);
  if (const int fd = std::exchange(m.opts.listen_fd, -1); fd >= 0) {
    // A socket handed over by the previous process: connections already queued in its
    // backlog are served here, none is refused.
    if (m.opts.port != 0 && listens_on(fd, ep)) {
      m.acceptor->assign(ep.protocol(), fd, ec);
      m.adopted = !ec;
    }
    if (!m.adopted) {
      close(fd);
      m.acceptor.emplace(m.home().ioc);
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
    m.workers.clear();
    m.pool.reset();
    return unavailable("router cannot listen on " + where + ": " + ec.message());
  }
  m.port = m.acceptor->local_endpoint().port();
  for (auto& w : m.workers) {
    w->tls_port = m.port;
    w->access_log = m.access_log.get();
  }
  if (m.tls && m.opts.tls.http_port != 0 && !m.adopted) {
    // Bound now, so a port in use is an error of start() (an adopted listener's previous
    // process still holds it: that one is bound once free, below).
    boost::system::error_code hec;
    m.run_on(m.home(), [&m, &hec] { hec = m.bind_http(); });
    if (hec) {
      m.acceptor.reset();
      m.workers.clear();
      m.pool.reset();
      return unavailable("router cannot listen on " + m.opts.host + ":" +
                         std::to_string(m.opts.tls.http_port) +
                         " (tls.http_port): " + hec.message());
    }
  }
  m.started = true;
  m.run_on(m.home(), [&m] { m.accepting = true; });
  m.spawn_accept_loop();
  if (m.tls) {
    m.run_on(m.home(), [&m] { m.reload_timer.emplace(m.home().ioc.get_executor()); });
    m.spawn_home([&m] { return m.reload_loop(); });
    if (m.opts.tls.http_port != 0 && m.adopted) m.spawn_home([&m] { return m.bind_http_loop(); });
  }
  return Status::Ok();
}

void Router::release_port() {
  impl_->release_port = true;
  stop();
}

void Router::stop() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.stopped = true;
  // The io threads are shared with other routers and keep running: this router's part of
  // them is wound down instead. No new connection (the acceptor closes, the accept loop
  // ends), no new session or upstream connection, every open one closed...
  m.run_on(m.home(), [&m] {
    m.accepting = false;
    m.http_accepting = false;
    m.stopping_home = true;
    m.waiting_for_table = false;
    boost::system::error_code ec;
    if (m.release_port && m.acceptor && m.acceptor->is_open())
      ::shutdown(m.acceptor->native_handle(), SHUT_RDWR);
    if (m.acceptor) m.acceptor->close(ec);
    if (m.http_acceptor) m.http_acceptor->close(ec);
    if (m.reload_timer) m.reload_timer->cancel();
  });
  for (auto& w : m.workers)
    m.run_on(*w, [&w] {
      w->stopping = true;
      // abort() may end a session (and erase it from the set) only later, on this thread.
      for (routing::Session* s : w->sessions) s->abort();
      if (w->deadline_timer) w->deadline_timer->cancel();
    });
  // ... then wait until every coroutine that uses the router has finished.
  auto busy = [&m] {
    if (m.accept_loops.load(std::memory_order_acquire) > 0) return true;
    for (const auto& w : m.workers)
      if (w->connections.load(std::memory_order_acquire) > 0 ||
          w->h2_streams.load(std::memory_order_acquire) > 0 ||
          w->deadline_waits.load(std::memory_order_acquire) > 0)
        return true;
    return false;
  };
  while (busy()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Handlers already queued for this router (a session start, a table's first accept) run
  // before these, and find it stopping.
  for (auto& w : m.workers) m.run_on(*w, [] {});
  m.acceptor.reset();
  m.http_acceptor.reset();
  m.reload_timer.reset();
  m.tls.reset();
  {
    MutexLock lock(m.registry_mu);
    m.registry.clear_pools();
  }
  m.workers.clear();
  m.pool.reset();        // a pool of its own: its threads are joined here
  m.access_log.reset();  // writes what is queued
}

uint16_t Router::port() const {
  return impl_->port.load();
}

uint16_t Router::http_port() const {
  return impl_->http_port.load();
}

uint64_t Router::tls_reloads() const {
  return impl_->tls_reloads.load();
}

uint64_t Router::tls_reload_failures() const {
  return impl_->tls_reload_failures.load();
}

std::string Router::tls_error() const {
  MutexLock lock(impl_->tls_error_mu);
  return impl_->tls_error;
}

uint64_t Router::access_log_written() const {
  return impl_->access_log ? impl_->access_log->written() : 0;
}

uint64_t Router::access_log_dropped() const {
  return impl_->access_log ? impl_->access_log->dropped() : 0;
}

bool Router::adopted_listener() const {
  return impl_->adopted;
}

void Router::pause_accepting() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.run_on(m.home(), [&m] {
    m.accepting = false;
    boost::system::error_code ec;
    if (m.acceptor) m.acceptor->cancel(ec);
    // The plain port is closed, not paused: the next process binds it anew.
    m.http_accepting = false;
    if (m.http_acceptor) m.http_acceptor->close(ec);
    m.http_acceptor.reset();
    m.http_port = 0;
  });
}

void Router::resume_accepting() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  m.run_on(m.home(), [&m] {
    if (!m.accepting && m.acceptor && m.acceptor->is_open()) {
      m.accepting = true;
      m.spawn_accept_loop();
      if (m.tls && m.opts.tls.http_port != 0) m.spawn_home([&m] { return m.bind_http_loop(); });
    }
  });
}

int Router::duplicate_listener() const {
  Impl& m = *impl_;
  if (!m.started || m.stopped || !m.acceptor) return -1;
  return fcntl(m.acceptor->native_handle(), F_DUPFD_CLOEXEC, 0);
}

void Router::drain() {
  Impl& m = *impl_;
  for (auto& w : m.workers) w->draining.store(true, std::memory_order_relaxed);
  if (!m.started || m.stopped) return;
  // HTTP/1.1 connections close after their next answer; an HTTP/2 client may send nothing
  // for a while, so its connection is told now (GOAWAY NO_ERROR): its open streams finish,
  // its next ones go to a new connection. Not waited for (the caller may be any thread);
  // stop() runs whatever is queued on the workers before it returns.
  for (auto& w : m.workers)
    asio::post(w->ioc, [wp = w.get()] {
      if (wp->stopping) return;
      for (routing::Session* s : wp->sessions) s->drain();
    });
}

Router::H2Abuse Router::h2_abuse() const {
  H2Abuse out;
  for (const auto& w : impl_->workers) {
    out.rapid_reset += w->h2_rapid_reset.load(std::memory_order_relaxed);
    out.flood += w->h2_flood.load(std::memory_order_relaxed);
    out.protocol_error += w->h2_protocol_error.load(std::memory_order_relaxed);
  }
  return out;
}

uint64_t Router::idle_trims() const {
  uint64_t n = 0;
  for (const auto& w : impl_->workers) n += w->idle_trims.load(std::memory_order_relaxed);
  return n;
}

int Router::connections() const {
  int n = 0;
  for (const auto& w : impl_->workers) n += w->connections.load(std::memory_order_relaxed);
  return n;
}

void Router::seed_stats(const std::vector<ReleaseStats>& stats) {
  MutexLock lock(impl_->registry_mu);
  impl_->registry.seed(stats);
}

void Router::set_table(RouteTable table) {
  Impl& m = *impl_;
  MutexLock lock(m.registry_mu);
  auto snap = m.registry.build(std::move(table), m.next_version++, nullptr);
  MutexLock tables_lock(m.tables.mu);
  m.tables.current = std::move(snap);
  m.tables.version.store(m.tables.current->version, std::memory_order_release);
  if (m.has_table.exchange(true, std::memory_order_acq_rel) || !m.started || m.stopped) return;
  // A handed-over socket waited for this table before accepting: accept now.
  asio::post(m.home().ioc, [&m] {
    if (m.waiting_for_table && m.accepting && m.acceptor && m.acceptor->is_open()) {
      m.waiting_for_table = false;
      m.spawn_accept_loop();
    }
  });
}

RouteTable Router::table() const {
  MutexLock lock(impl_->tables.mu);
  return impl_->tables.current->table;
}

int Router::in_flight(const std::string& backend_id) const {
  MutexLock lock(impl_->registry_mu);
  return impl_->registry.in_flight(backend_id);
}

std::vector<ReleaseStats> Router::stats() const {
  MutexLock lock(impl_->registry_mu);
  return impl_->registry.stats();
}

size_t Router::retain_stats(const std::set<std::string>& keep) {
  MutexLock lock(impl_->registry_mu);
  return impl_->registry.retain(keep);
}

}  // namespace ferry
