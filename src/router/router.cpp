// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/router.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
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
};

awaitable<void> Router::Impl::accept_loop() {
  size_t next = 0;
  for (;;) {
    routing::Worker& target = *workers[next++ % workers.size()];
    boost::system::error_code ec;
    routing::Socket socket =
        co_await acceptor->async_accept(target.ioc, asio::redirect_error(routing::kAwait, ec));
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
  m.acceptor->open(ep.protocol(), ec);
  if (!ec) m.acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor->bind(ep, ec);
  if (!ec) m.acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    m.acceptor.reset();
    return unavailable("router cannot listen on " + where + ": " + ec.message());
  }
  m.port = m.acceptor->local_endpoint().port();
  m.started = true;
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

void Router::set_table(RouteTable table) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.registry_mu);
  auto snap = m.registry.build(std::move(table), m.next_version++, nullptr);
  std::lock_guard<std::mutex> tables_lock(m.tables.mu);
  m.tables.current = std::move(snap);
  m.tables.version.store(m.tables.current->version, std::memory_order_release);
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
