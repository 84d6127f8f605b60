#include "agent/prober.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <sstream>

#include "agent/process.h"

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One probe role: its timer and, for HTTP, its kept-alive connection.
struct Prober::Loop {
  Loop(asio::strand<asio::io_context::executor_type> ex, ProbeRole r, ProbeSpec s)
      : role(r), spec(std::move(s)), timer(ex), stream(ex) {}
  ProbeRole role;
  ProbeSpec spec;
  asio::steady_timer timer;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::string request;  // an HTTP probe's request, serialised on first use
  bool connected = false;
  int ok_streak = 0;  // successes in a row, up to success_threshold
  std::atomic<bool> stopped{false};
};

namespace {

auto ec_token(beast::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

std::string where(const ProbeSpec& p, uint16_t port) {
  if (p.kind == ProbeSpec::Kind::kHttp) return "GET " + (p.path.empty() ? "/" : p.path);
  return "tcp connect to port " + std::to_string(port);
}

asio::awaitable<std::pair<bool, std::string>> http_once(Prober::Loop& l, const tcp::endpoint& ep) {
  const ProbeSpec& p = l.spec;
  const std::string path = p.path.empty() ? "/" : p.path;
  // A kept connection the instance closed meanwhile fails on first use: one retry on a new one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = l.connected;
    beast::error_code ec;
    l.stream.expires_after(std::chrono::milliseconds(std::max(1, p.timeout_ms)));
    if (!l.connected) {
      l.buffer.clear();
      co_await l.stream.async_connect(ep, ec_token(ec));
      if (ec) {
        l.stream.close();
        co_return std::pair{false, where(p, ep.port()) + ": " +
                                       (ec == beast::error::timeout ? "timed out" : ec.message())};
      }
      l.connected = true;
    }
    if (l.request.empty()) {  // the same bytes every time: serialised once
      http::request<http::empty_body> req{http::verb::get, path, 11};
      req.set(http::field::host, ep.address().to_string() + ":" + std::to_string(ep.port()));
      req.set(http::field::user_agent, "ferry-probe");
      req.keep_alive(true);
      std::ostringstream out;
      out << req;
      l.request = out.str();
    }
    co_await asio::async_write(l.stream, asio::buffer(l.request), ec_token(ec));
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);
    if (!ec) co_await http::async_read(l.stream, l.buffer, parser, ec_token(ec));
    if (ec) {
      l.stream.close();
      l.connected = false;
      if (reused && ec != beast::error::timeout) continue;
      co_return std::pair{false, where(p, ep.port()) + ": " +
                                     (ec == beast::error::timeout ? "timed out" : ec.message())};
    }
    const auto& res = parser.get();
    if (!res.keep_alive()) {
      l.stream.close();
      l.connected = false;
    }
    const int s = static_cast<int>(res.result_int());
    const bool ok = p.expect_status == 0 ? (s >= 200 && s < 300) : s == p.expect_status;
    co_return std::pair{ok, ok ? "" : where(p, ep.port()) + " answered " + std::to_string(s)};
  }
  co_return std::pair{false, where(p, ep.port()) + ": connection closed"};
}

asio::awaitable<std::pair<bool, std::string>> tcp_once(Prober::Loop& l, const tcp::endpoint& ep) {
  beast::error_code ec;
  l.stream.expires_after(std::chrono::milliseconds(std::max(1, l.spec.timeout_ms)));
  co_await l.stream.async_connect(ep, ec_token(ec));
  if (!ec) {
    // Close with a reset: the probing side keeps no TIME_WAIT socket per probe.
    beast::error_code ignored;
    l.stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  }
  l.stream.close();
  if (ec)
    co_return std::pair{false, where(l.spec, ep.port()) + ": " +
                                   (ec == beast::error::timeout ? "timed out" : ec.message())};
  co_return std::pair{true, std::string()};
}

asio::awaitable<std::pair<bool, std::string>> command_once(
    Prober::Loop& l, const std::map<std::string, std::string>& env) {
  const ProbeSpec& p = l.spec;
  if (p.command.empty()) co_return std::pair{false, std::string("probe command is empty")};
  ProcessLaunch launch;
  launch.argv = p.command;
  launch.env = env;
  launch.log_path = "/dev/null";
  launch.app_code = true;  // the app's command: clean environment, not the agent's user as root
  auto h = start_process(launch);
  if (!h.ok()) co_return std::pair{false, h.status().message()};
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max(1, p.timeout_ms));
  int code = 0;
  asio::steady_timer poll(l.timer.get_executor());
  while (!reap_child(h->pid, &code)) {
    if (std::chrono::steady_clock::now() > deadline || l.stopped) {
      signal_group(*h, SIGKILL);
      int status;
      waitpid(h->pid, &status, 0);
      co_return std::pair{false,
                          "probe command timed out after " + std::to_string(p.timeout_ms) + " ms"};
    }
    poll.expires_after(std::chrono::milliseconds(10));
    beast::error_code ec;
    co_await poll.async_wait(ec_token(ec));
  }
  if (code == 0) co_return std::pair{true, std::string()};
  co_return std::pair{false, "probe command exited with " + std::to_string(code)};
}

asio::awaitable<void> run_loop(std::shared_ptr<Prober> self, std::shared_ptr<Prober::Loop> l,
                               tcp::endpoint ep, std::map<std::string, std::string> env,
                               int64_t delay_ms, Prober::Report report) {
  beast::error_code ec;
  l->timer.expires_after(std::chrono::milliseconds(std::max<int64_t>(0, delay_ms)));
  co_await l->timer.async_wait(ec_token(ec));
  while (!l->stopped) {
    std::pair<bool, std::string> r;
    switch (l->spec.kind) {
      case ProbeSpec::Kind::kHttp:
        r = co_await http_once(*l, ep);
        break;
      case ProbeSpec::Kind::kTcp:
        r = co_await tcp_once(*l, ep);
        break;
      case ProbeSpec::Kind::kCommand:
        r = co_await command_once(*l, env);
        break;
      case ProbeSpec::Kind::kNone:
        co_return;
    }
    if (l->stopped) break;
    report(l->role, r.first, r.second);
    l->timer.expires_after(
        std::chrono::milliseconds(probe_wait_ms(l->spec, l->ok_streak, r.first)));
    co_await l->timer.async_wait(ec_token(ec));
  }
  l->stream.close();
  (void)self;
}

}  // namespace

int probe_wait_ms(const ProbeSpec& spec, int& ok_streak, bool ok) {
  const int need = std::max(1, spec.success_threshold);
  ok_streak = ok ? std::min(ok_streak + 1, need) : 0;
  const int fast = std::max(10, spec.interval_ms);
  if (spec.steady_interval_ms <= 0 || ok_streak < need) return fast;
  return std::max(fast, std::min(spec.steady_interval_ms, 3'600'000));
}

Prober::Prober(Strand strand, const ChecksSpec& checks, ProbeTarget target, Report report)
    : strand_(std::move(strand)),
      checks_(checks),
      target_(std::move(target)),
      report_(std::move(report)) {}

std::shared_ptr<Prober> Prober::create(Strand strand, const ChecksSpec& checks, ProbeTarget target,
                                       int64_t started_mono_ms, int64_t now_mono_ms,
                                       Report report) {
  std::shared_ptr<Prober> p(
      new Prober(std::move(strand), checks, std::move(target), std::move(report)));
  const int64_t since = now_mono_ms - started_mono_ms;
  p->ready_delay_ms_ = checks.readiness.initial_delay_ms - since;
  p->live_delay_ms_ = std::max(checks.startup_grace_ms, checks.liveness.initial_delay_ms) - since;
  return p;
}

void Prober::start() {
  beast::error_code ec;
  const auto addr = asio::ip::make_address(target_.host, ec);
  const tcp::endpoint ep(ec ? asio::ip::make_address("127.0.0.1") : addr, target_.port);
  auto self = shared_from_this();
  asio::dispatch(strand_, [this, self, ep] {
    if (checks_.readiness.kind != ProbeSpec::Kind::kNone) {
      ready_ = std::make_shared<Loop>(strand_, ProbeRole::kReadiness, checks_.readiness);
      asio::co_spawn(strand_, run_loop(self, ready_, ep, target_.env, ready_delay_ms_, report_),
                     asio::detached);
    }
    if (checks_.liveness.kind != ProbeSpec::Kind::kNone) {
      live_ = std::make_shared<Loop>(strand_, ProbeRole::kLiveness, checks_.liveness);
      asio::co_spawn(strand_, run_loop(self, live_, ep, target_.env, live_delay_ms_, report_),
                     asio::detached);
    }
  });
}

void Prober::stop() {
  auto self = shared_from_this();
  asio::dispatch(strand_, [this, self] {
    for (auto* l : {&ready_, &live_})
      if (*l) {
        (*l)->stopped = true;
        (*l)->timer.cancel();
        (*l)->stream.cancel();
      }
  });
}

}  // namespace ferry
