#include "agent/agent_connections.h"

#include <poll.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include "common/http_read_limited.h"
#include "common/tls.h"

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

struct AgentConnections::Conn {
  asio::io_context ioc;
  std::shared_ptr<TlsContext> ctx;  // before the stream: the stream uses its SSL_CTX
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  std::string peer_serial;  // the agent's certificate (TLS only)
  SteadyClock::time_point idle_since;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  // Runs the io_context until the operation started just before ends (or the deadline set
  // on the stream fires, which cancels it).
  void run() {
    ioc.restart();
    ioc.run();
  }
};

namespace {

bool idempotent(std::string_view method) {
  return method == "GET" || method == "PUT" || method == "DELETE" || method == "HEAD";
}

// Whether the peer closed the socket or sent something nobody asked for: either way the
// connection must not carry another call.
bool peer_spoke(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) != 0;
}

}  // namespace

AgentConnections::AgentConnections(Endpoint endpoint, AgentConnectionOptions options)
    : ep_(std::move(endpoint)), opts_(options) {}

AgentConnections::~AgentConnections() {
  close_idle();
}

AgentConnections::Counts AgentConnections::counts() const {
  MutexLock l(mu_);
  Counts c = counts_;
  c.open = open_;
  return c;
}

void AgentConnections::close_idle() {
  std::vector<std::unique_ptr<Conn>> gone;
  {
    MutexLock l(mu_);
    gone.swap(idle_);
    open_ -= gone.size();
  }
  cv_.notify_all();
}

bool AgentConnections::usable(Conn& c, const std::shared_ptr<TlsContext>& tls) const {
  if (c.ctx != tls) return false;  // made with another context (new certificate, enrollment)
  if (SteadyClock::now() - c.idle_since >= std::chrono::milliseconds(opts_.max_idle_ms))
    return false;
  if (peer_spoke(c.lowest().socket().native_handle())) return false;
  // The agent's certificate revoked since the handshake: not one more byte to it.
  if (c.ctx && c.ctx->revoked(c.peer_serial)) return false;
  return true;
}

Result<std::unique_ptr<AgentConnections::Conn>> AgentConnections::acquire(
    const std::shared_ptr<TlsContext>& tls, Deadline deadline, bool fresh, bool* reused) {
  *reused = false;
  std::vector<std::unique_ptr<Conn>> stale;  // closed outside the lock
  {
    MutexLock l(mu_);
    for (;;) {
      while (!fresh && !idle_.empty()) {
        std::unique_ptr<Conn> c = std::move(idle_.back());
        idle_.pop_back();
        if (usable(*c, tls)) {
          ++counts_.reused;
          *reused = true;
          return c;
        }
        --open_;
        stale.push_back(std::move(c));
      }
      if (fresh && open_ >= opts_.max_connections && !idle_.empty()) {
        stale.push_back(std::move(idle_.back()));  // room for the fresh one
        idle_.pop_back();
        --open_;
      }
      if (open_ < opts_.max_connections) {
        ++open_;
        break;
      }
      if (l.wait_until(cv_, deadline) == std::cv_status::timeout && idle_.empty() &&
          open_ >= opts_.max_connections)
        return deadline_exceeded("all " + std::to_string(opts_.max_connections) +
                                 " connections to " + ep_.to_string() + " stayed busy for " +
                                 std::to_string(opts_.timeout_ms) + " ms");
    }
  }
  stale.clear();
  auto c = open(tls, deadline);
  MutexLock l(mu_);
  if (!c.ok()) {
    --open_;
    cv_.notify_one();
  } else {
    ++counts_.opened;
  }
  return c;
}

Result<std::unique_ptr<AgentConnections::Conn>> AgentConnections::open(
    const std::shared_ptr<TlsContext>& tls, Deadline deadline) {
  auto c = std::make_unique<Conn>();
  c->ctx = tls;
  c->plain.emplace(c->ioc);
  const std::string where = ep_.to_string();
  beast::error_code ec;
  tcp::resolver resolver(c->ioc);
  auto results =
      resolver.resolve(ep_.host, std::to_string(ep_.port), tcp::resolver::numeric_service, ec);
  if (ec) return unavailable("cannot resolve " + where + ": " + ec.message());
  c->plain->expires_at(deadline);
  c->plain->async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  c->run();
  if (ec) {
    if (ec == beast::error::timeout)
      return deadline_exceeded("connecting to " + where + " timed out");
    return unavailable("cannot connect to " + where + ": " + ec.message());
  }
  c->plain->socket().set_option(tcp::no_delay(true), ec);
  if (!tls) return c;
  c->tls.emplace(std::move(*c->plain), tls->native());
  c->plain.reset();
  c->lowest().expires_at(deadline);
  c->tls->async_handshake(asio::ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
  c->run();
  if (ec) {
    if (ec == beast::error::timeout)
      return deadline_exceeded("TLS handshake with " + where + " timed out");
    std::string why = ec.message();
    const long v = SSL_get_verify_result(c->tls->native_handle());
    if (v != X509_V_OK) why = X509_verify_cert_error_string(v);
    return unavailable("TLS handshake with " + where + " failed: " + why);
  }
  c->peer_serial = TlsContext::peer_serial(c->tls->native_handle());
  return c;
}

void AgentConnections::release(std::unique_ptr<Conn> c, bool keep) {
  {
    MutexLock l(mu_);
    if (keep && idle_.size() < opts_.max_connections) {
      c->idle_since = SteadyClock::now();
      idle_.push_back(std::move(c));
    } else {
      --open_;
    }
  }
  cv_.notify_one();
  // `c`, when not kept, is closed here, outside the lock.
}

Result<HttpResponse> AgentConnections::exchange(Conn& c, std::string_view method,
                                                std::string_view target, const Headers& headers,
                                                std::string_view body, Deadline deadline,
                                                bool* keep) {
  *keep = false;
  beast::error_code ec;
  const std::string where = ep_.to_string();
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  req.set(http::field::host, ep_.host);
  req.set(http::field::user_agent, "ferry");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.keep_alive(true);
  req.prepare_payload();
  const auto timed_out = [&] {
    return deadline_exceeded(std::string(method) + " " + std::string(target) + " to " + where +
                             " timed out after " + std::to_string(opts_.timeout_ms) + " ms");
  };
  c.lowest().expires_at(deadline);
  if (c.tls)
    http::async_write(*c.tls, req, [&](beast::error_code e, size_t) { ec = e; });
  else
    http::async_write(*c.plain, req, [&](beast::error_code e, size_t) { ec = e; });
  c.run();
  if (ec == beast::error::timeout) return timed_out();
  if (ec) return unavailable("sending to " + where + " failed: " + ec.message());

  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  c.lowest().expires_at(deadline);
  const auto run = [&] { c.run(); };
  const LimitedRead read =
      c.tls ? read_limited_response(*c.tls, buf, parser, opts_.max_response_bytes, run, &ec)
            : read_limited_response(*c.plain, buf, parser, opts_.max_response_bytes, run, &ec);
  if (read == LimitedRead::kTooLarge) return answer_over_limit(where, opts_.max_response_bytes);
  if (ec == beast::error::timeout) return timed_out();
  if (ec) return unavailable("reading from " + where + " failed: " + ec.message());
  auto& msg = parser.get();
  // Bytes after the answer were never asked for: the connection is not used again.
  *keep =
      msg.keep_alive() && buf.size() == 0 && (!c.tls || SSL_pending(c.tls->native_handle()) == 0);
  HttpResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.content_type = std::string(msg[http::field::content_type]);
  for (const auto& f : msg)
    out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
  out.body = std::move(msg.body());
  return out;
}

Result<HttpResponse> AgentConnections::request(const std::shared_ptr<TlsContext>& tls,
                                               std::string_view method, std::string_view target,
                                               const Headers& headers, std::string_view body) {
  const Deadline deadline = SteadyClock::now() + std::chrono::milliseconds(opts_.timeout_ms);
  for (int attempt = 0;; ++attempt) {
    bool reused = false;
    auto c = acquire(tls, deadline, /*fresh=*/attempt > 0, &reused);
    if (!c.ok()) return c.status();
    bool keep = false;
    auto r = exchange(**c, method, target, headers, body, deadline, &keep);
    release(std::move(*c), r.ok() && keep);
    if (r.ok()) return r;
    // A kept connection the agent closed meanwhile (restart, idle timeout): sent again once
    // on a fresh one when sending twice cannot do anything twice.
    const bool again = reused && attempt == 0 && idempotent(method) &&
                       r.status().code() == Code::kUnavailable && SteadyClock::now() < deadline;
    if (!again) return r.status();
    MutexLock l(mu_);
    ++counts_.retried;
  }
}

}  // namespace ferry
