// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/session.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>

#include "router/exchange.h"
#include "router/fault.h"
#include "router/h2_connection.h"
#include "router/tls_challenges.h"

namespace ferry::routing {

namespace asio = boost::asio;
using asio::redirect_error;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kUpstreamHeadLimit = 64 * 1024;
constexpr size_t kHeadReserve = 1024;
constexpr size_t kMaxIdlePerBackend = 256;  // per io thread
// Backends often close idle keep-alive connections after a few seconds (gunicorn 2 s,
// Node 5 s); older pooled connections are not trusted.
constexpr auto kMaxIdleAge = std::chrono::seconds(4);

}  // namespace

Session::Session(Worker& worker, Socket client, Listener listener, const tcp::endpoint& peer)
    : w_(worker),
      client_(std::move(client)),
      tls_(std::move(listener.tls)),
      redirect_(listener.redirect),
      client_ip_(peer.address().to_string()),
      cbuf_(worker.buffers, worker.opts.max_header_bytes + 4096),
      ubuf_(worker.buffers, kUpstreamHeadLimit + 4096) {
  w_.connections.fetch_add(1, std::memory_order_relaxed);
  w_.sessions.insert(this);
  error_code ec;
  client_.socket().set_option(tcp::no_delay(true), ec);
  if (tls_) client_.use_tls(tls_->initial());
  req_head_.reserve(kHeadReserve);
  resp_head_.reserve(kHeadReserve);
}

Session::Session(Worker& worker, std::shared_ptr<H2Stream> stream, std::string client_ip)
    : w_(worker),
      client_(std::move(stream)),
      client_ip_(std::move(client_ip)),
      cbuf_(worker.buffers, worker.opts.max_header_bytes + 4096),
      ubuf_(worker.buffers, kUpstreamHeadLimit + 4096) {
  w_.h2_streams.fetch_add(1, std::memory_order_relaxed);
  w_.sessions.insert(this);
  // The heads are built by appending: room for a usual one at once rather than doubling
  // from nothing (a connection's session keeps its strings from request to request).
  req_head_.reserve(kHeadReserve);
  resp_head_.reserve(kHeadReserve);
}

Session::~Session() {
  w_.sessions.erase(this);
  h2_.reset();  // before the counts: its streams report to it
  if (client_.is_h2())
    w_.h2_streams.fetch_sub(1, std::memory_order_relaxed);
  else
    w_.connections.fetch_sub(1, std::memory_order_relaxed);
}

void Session::drain() {
  if (h2_) h2_->drain();
}

void Session::abort() {
  if (h2_) h2_->abort();
  closed_ = true;
  if (fault_wait_) fault_wait_->cancel();
  error_code ec;
  client_.close(ec);
  // A tunnel's two relays end on their own once both sockets are closed (tunnel_done_ is
  // left alone: the relay still reading from up_ must finish before up_ goes).
  if (up_) up_->close(ec);
}

void Session::start() {
  auto self = shared_from_this();
  if (client_.is_tls())
    set_deadline(Phase::kHandshake, w_.opts.tls_handshake_timeout_ms);
  else
    set_deadline(Phase::kIdle, w_.opts.idle_timeout_ms);
  asio::co_spawn(w_.ioc.get_executor(), run(self), asio::detached);
}

void Session::set_deadline(Phase phase, int ms) {
  phase_ = phase;
  timed_out_ = false;
  const SteadyTime now = Clock::now();
  deadline_ = now + std::chrono::milliseconds(ms);
  deadline_due(w_, deadline_);
  if (phase == Phase::kIdle && !client_.is_h2() && trim_at_ == SteadyTime::max()) {
    trim_at_ = now + std::chrono::milliseconds(kTrimAfterMs);
    deadline_due(w_, trim_at_);
  }
}

void Session::deadline_due(Worker& w, SteadyTime at) {
  const auto slack = std::chrono::milliseconds(kDeadlineSlackMs);
  // A wake-up due by then finds the deadline, or arms the timer for it.
  if (w.deadline_tick <= at + slack || w.stopping) return;
  if (!w.deadline_timer) w.deadline_timer.emplace(w.ioc);
  w.deadline_tick = at + slack;
  // Re-arming ends the pending wait (its handler sees operation_aborted and does nothing).
  w.deadline_timer->expires_at(w.deadline_tick);
  w.deadline_waits.fetch_add(1, std::memory_order_relaxed);
  w.deadline_timer->async_wait([&w](error_code ec) {
    if (!ec) on_deadline_tick(w);
    // The last touch of the worker: Router::stop waits for this count to reach 0.
    w.deadline_waits.fetch_sub(1, std::memory_order_release);
  });
}

void Session::on_deadline_tick(Worker& w) {
  w.deadline_tick = SteadyTime::max();
  if (w.stopping) return;
  const SteadyTime now = Clock::now();
  SteadyTime next = SteadyTime::max();
  // on_timeout() closes sockets and streams; their handlers run later, so no session ends
  // (nor leaves the set) during this loop.
  for (Session* s : w.sessions) {
    if (s->closed_) continue;
    if (s->trim_at_ <= now) {
      s->trim_at_ = SteadyTime::max();
      if (s->phase_ == Phase::kIdle) s->trim();
    } else if (s->trim_at_ < next) {
      next = s->trim_at_;
    }
    if (s->deadline_ == SteadyTime::max()) continue;
    if (s->deadline_ <= now) {
      s->deadline_ = SteadyTime::max();
      s->on_timeout();
    } else if (s->deadline_ < next) {
      next = s->deadline_;
    }
  }
  if (next != SteadyTime::max()) deadline_due(w, next);
}

void Session::trim() {
  // Nothing from the backend is waiting while the client connection is idle.
  ubuf_.release();
  if (client_.is_tls()) client_.tls().release_buffers();
  if (idle_read_) {
    idle_read_cut_ = true;
    error_code ec;
    client_.cancel(ec);  // the only operation pending on an idle HTTP/1.1 connection
  }
  w_.idle_trims.fetch_add(1, std::memory_order_relaxed);
}

void Session::on_timeout() {
  timed_out_ = true;
  error_code ec;
  if (phase_ == Phase::kBody) {
    // The client still gets its 408: only the pending reads and writes stop.
    client_.cancel(ec);
    if (up_) up_->cancel(ec);
    return;
  }
  if (phase_ != Phase::kConnect && phase_ != Phase::kWaitResponse) client_.close(ec);
  if (up_) up_->close(ec);
}

awaitable<void> Session::run(std::shared_ptr<Session> /*self*/) {
  try {
    if (client_.is_h2()) {
      co_await serve();  // a stream carries one request
    } else if (!client_.is_tls() || co_await handshake()) {
      if (client_.is_tls() && alpn_h2()) {
        h2_ = std::make_unique<H2Connection>(*this, w_, client_, client_ip_);
        co_await h2_->run(shared_from_this());
      } else {
        while (co_await serve()) {
        }
      }
      if (client_.is_tls()) co_await close_tls();
    }
  } catch (const std::exception&) {
    // Allocation failure or a bug: drop this connection, keep the router serving.
  }
  closed_ = true;
  error_code ec;
  client_.close(ec);
  if (up_) up_->close(ec);
}

awaitable<bool> Session::handshake() {
  error_code ec;
  co_await client_.tls().async_handshake(redirect_error(kAwait, ec));
  co_return !ec && !timed_out_;
}

bool Session::alpn_h2() {
  const unsigned char* proto = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(client_.tls().native_handle(), &proto, &len);
  return len == 2 && proto[0] == 'h' && proto[1] == '2';
}

awaitable<void> Session::close_tls() {
  if (closed_ || timed_out_) co_return;
  // close_notify goes out at once. When nothing more has come from the client (none left in
  // our buffer or OpenSSL's, none waiting in the socket), the connection then closes
  // without waiting for the client's own close_notify, which TLS does not require of the
  // side that closes first. Otherwise the client's bytes are read (and dropped) until its
  // close_notify, briefly: closing a socket with unread bytes resets the connection, and a
  // reset can destroy the end of the answer before the client has read it.
  SSL* ssl = client_.tls().native_handle();
  if (cbuf_.empty() && SSL_has_pending(ssl) == 0) {
    char byte;
    ssize_t n = ::recv(client_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
      SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  }
  set_deadline(Phase::kClosing, 1000);
  error_code ec;
  co_await client_.tls().async_shutdown(redirect_error(kAwait, ec));
}

awaitable<bool> Session::respond(int status, std::string_view body, std::string_view release,
                                 bool close) {
  std::string_view id = req_ ? std::string_view(req_->info().request_id) : std::string_view();
  std::string msg = router_response(status, body, release, id, close);
  log_status_ = status;
  log_bytes_ += msg.size();
  error_code ec;
  co_await write(client_, ec, msg);
  co_return !ec && !close;
}

awaitable<bool> Session::read_request_head(size_t* head_len) {
  req_.reset();
  // The parser is made when the request's first bytes are there, with the app's router
  // settings as of then (who is trusted, which affinity field): an idle kept-alive
  // connection sees a new table for its next request.
  auto parser = [&]() -> RequestParser& {
    if (req_) return *req_;
    policy_ = w_.table()->policy;
    parse_opts_.pin_header = w_.opts.pin_header;
    parse_opts_.trusted = in_ranges(client_ip_, policy_->trusted_proxies);
    parse_opts_.affinity_cookie = policy_->affinity == Policy::Affinity::kCookie;
    parse_opts_.affinity_header = policy_->affinity_header;
    parse_opts_.slo_exclude =
        policy_->slo_exclude_paths.empty() ? nullptr : &policy_->slo_exclude_paths;
    parse_opts_.forwarded_proto = client_.secure() ? "https" : "";
    parse_opts_.keep_target = redirect_ || w_.access_log != nullptr ||
                              (w_.opts.acme_challenges != nullptr && !client_.secure());
    RequestParser& p = req_.emplace(req_head_, client_ip_, parse_opts_, w_.ids);
    p.header_limit(static_cast<std::uint32_t>(w_.opts.max_header_bytes));
    p.body_limit(w_.opts.max_body_bytes);
    return p;
  };
  // Head bytes the parser has taken: Beast consumes the request line and each complete
  // field as it goes, even when it needs more for the rest, and must not see them again.
  size_t parsed = 0;
  for (;;) {
    if (cbuf_.size() > parsed) {
      RequestParser& p = parser();
      error_code ec;
      parsed += p.feed(cbuf_.data() + parsed, cbuf_.size() - parsed, ec);
      if (ec == http::error::header_limit) {
        co_return co_await respond(431, "request header fields too large\n", {}, true);
      }
      if (ec == http::error::body_limit) {
        co_return co_await respond(413, "request body too large\n", {}, true);
      }
      if (ec && ec != http::error::need_more) {
        if (!p.info().refused.empty()) {
          std::string why = "refused: " + p.info().refused + "\n";
          co_return co_await respond(400, why, {}, true);
        }
        co_return co_await respond(400, "malformed request\n", {}, true);
      }
      if (p.is_header_done()) {
        *head_len = parsed;
        co_return true;
      }
    }
    size_t room = 0;
    char* at = cbuf_.prepare(&room);
    if (at == nullptr)
      co_return co_await respond(431, "request header fields too large\n", {}, true);
    error_code ec;
    idle_read_ = cbuf_.empty() && phase_ == Phase::kIdle && !client_.is_h2();
    size_t n = co_await client_.async_read_some(asio::buffer(at, room), redirect_error(kAwait, ec));
    idle_read_ = false;
    if (idle_read_cut_) {
      idle_read_cut_ = false;
      if (ec == asio::error::operation_aborted && !timed_out_ && !closed_) {
        // trim() cut the idle read short: the buffer goes back to the pool until the
        // client sends something.
        cbuf_.release();
        co_await client_.async_wait_readable(redirect_error(kAwait, ec));
        if (ec) co_return false;
        continue;
      }
    }
    if (ec) co_return false;  // closed, reset or idle: nothing to answer
    cbuf_.commit(n);
    if (phase_ == Phase::kIdle) set_deadline(Phase::kClient, w_.opts.idle_timeout_ms);
  }
}

awaitable<bool> Session::serve() {
  if (cbuf_.empty())
    set_deadline(Phase::kIdle, w_.opts.idle_timeout_ms);
  else
    set_deadline(Phase::kClient, w_.opts.idle_timeout_ms);
  Exchange ex;
  log_status_ = 0;
  log_bytes_ = 0;
  if (!co_await read_request_head(&ex.head_len)) co_return false;
  ex.start = Clock::now();
  ex.slo_excluded = req_->info().slo_excluded;
  // Every request whose head was read gets its line, whichever way it ends.
  struct LogOnExit {
    Session& s;
    const Exchange& ex;
    ~LogOnExit() { s.log_request(ex); }
  } log_on_exit{*this, ex};
  if (w_.access_log != nullptr)
    ex.start_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  RequestParser& p = *req_;
  const RequestInfo& info = p.info();
  if (info.version != 10 && info.version != 11)
    co_return co_await respond(505, "only HTTP/1.0 and HTTP/1.1 are served\n", {}, true);
  if (info.method == http::verb::connect)
    co_return co_await respond(405, "CONNECT is not served\n", {}, true);
  if (info.bad_transfer_encoding)
    co_return co_await respond(400, "unsupported transfer-encoding\n", {}, true);

  // Parse the body bytes already read, without sending them yet: a request that is
  // complete in the buffer can be sent again to another backend.
  ex.staged = ex.head_len;
  p.eager(true);
  while (!p.is_done() && ex.staged < cbuf_.size() && !p.must_wait(cbuf_.size() - ex.staged)) {
    error_code ec;
    ex.staged += p.feed(cbuf_.data() + ex.staged, cbuf_.size() - ex.staged, ec);
    if (ec == http::error::need_more) break;
    if (ec == http::error::body_limit)
      co_return co_await respond(413, "request body too large\n", {}, true);
    if (ec) co_return co_await respond(400, "malformed request body\n", {}, true);
  }
  ex.close_client = !p.keep_alive() || info.upgrade || w_.draining.load(std::memory_order_relaxed);
  if (w_.opts.acme_challenges != nullptr && !client_.secure() && info.method == http::verb::get &&
      std::string_view(info.target).starts_with(kAcmeChallengePrefix)) {
    // The CA's HTTP-01 validation (tls.acme), before any redirect or proxying. The answer
    // closes the connection: a body the request may carry is never read.
    std::string_view path(info.target);
    path = path.substr(0, path.find('?'));
    auto answer = w_.opts.acme_challenges->answer(path);
    if (answer) co_return co_await respond(200, *answer, {}, true);
    co_return co_await respond(404, "no such ACME challenge\n", {}, true);
  }
  if (redirect_) co_return co_await redirect_to_https(ex);

  ex.snap = w_.table();
  int rel = -1;
  std::string pin = allowed_pin(info.pin);
  if (!pin.empty()) {
    ex.pinned = true;
    rel = ex.snap->find(pin);
    if (rel < 0 || ex.snap->releases[rel].backends.empty()) {
      bool close = ex.close_client || !p.is_done();
      bool keep = co_await respond(503, "no ready backend for the pinned release\n", {}, close);
      cbuf_.consume(ex.staged);
      co_return keep;
    }
  } else {
    rel = affinity_release(ex);
    if (rel < 0) rel = w_.picker.pick_release(*ex.snap);
    if (rel < 0) {
      bool close = ex.close_client || !p.is_done();
      bool keep = co_await respond(503, "no ready backend\n", {}, close);
      cbuf_.consume(ex.staged);
      co_return keep;
    }
    // A client without a good cookie for the release it got is given one: new users,
    // forged cookies and releases that left the split all end here.
    if (policy_->affinity == Policy::Affinity::kCookie && !ex.affinity_kept)
      ex.set_cookie = make_affinity_value(w_.opts.key, w_.opts.app, ex.snap->releases[rel].name);
  }
  ex.choose(rel, w_.picker.pick_backend(*ex.snap, rel));
  if (w_.opts.faults && !ex.pinned) {
    bool answered_keep = false;
    if (!co_await pass_faults(ex, &answered_keep)) co_return answered_keep;
  }
  bool keep = co_await proxy(ex);
  cbuf_.consume(ex.staged);
  co_return keep && !ex.close_client;
}

awaitable<bool> Session::pass_faults(Exchange& ex, bool* keep) {
  FaultInjector::Action act = w_.opts.faults->decide();
  if (act.error_status > 0) {
    bool close = ex.close_client || !req_->is_done();
    *keep = co_await respond(act.error_status, "fault injected by ferry chaos\n", {}, close);
    cbuf_.consume(ex.staged);
    co_return false;
  }
  if (act.delay_ms > 0) {
    error_code ec;
    if (!fault_wait_) fault_wait_.emplace(w_.ioc);
    fault_wait_->expires_after(std::chrono::milliseconds(act.delay_ms));
    co_await fault_wait_->async_wait(redirect_error(kAwait, ec));
    if (closed_) {
      *keep = false;
      co_return false;
    }
    // The release's latency leaves the injected delay out: it is counted apart.
    ex.start = Clock::now();
  }
  co_return true;
}

awaitable<bool> Session::redirect_to_https(Exchange& ex) {
  const RequestInfo& info = req_->info();
  std::string_view host = info.host;
  // The host part of Host: "[v6]:port", "name:port" or without the port.
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  // A request with a body not read yet cannot leave the connection usable.
  bool close = ex.close_client || !req_->is_done();
  if (!valid_redirect_host(host))
    co_return co_await respond(400, "a redirect to https needs a valid Host\n", {}, true);
  std::string location = "https://";
  location.append(host);
  if (w_.tls_port != 443) location.append(":").append(std::to_string(w_.tls_port));
  // Only an origin-form target is kept ("*" and absolute forms go to the root).
  location.append(!info.target.empty() && info.target.front() == '/' ? info.target : "/");
  std::string msg = "HTTP/1.1 308 Permanent Redirect\r\nLocation: " + location +
                    "\r\nContent-Length: 0\r\nX-Request-Id: " + info.request_id + "\r\n";
  if (close) msg.append("Connection: close\r\n");
  msg.append("\r\n");
  log_status_ = 308;
  log_bytes_ += msg.size();
  error_code ec;
  co_await write(client_, ec, msg);
  cbuf_.consume(ex.staged);
  co_return !ec && !close;
}

void Session::log_request(const Exchange& ex) {
  if (w_.access_log == nullptr || !req_) return;
  const RequestInfo& info = req_->info();
  AccessRecord r;
  r.time_ms = ex.start_unix_ms;
  r.client = client_ip_;
  r.method = http::to_string(info.method);
  r.path = info.target;
  r.status = log_status_;
  r.bytes = log_bytes_;
  r.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - ex.start).count();
  if (ex.release >= 0) r.release = ex.route().name;
  if (ex.backend != nullptr) r.instance = ex.backend->spec.id;
  r.request_id = info.request_id;
  r.retried = ex.retried;
  r.shielded = ex.shielded;
  r.tls = client_.secure();
  r.http2 = client_.is_h2();
  w_.access_log->record(access_log_line(r));
}

std::string Session::allowed_pin(const std::string& value) const {
  const Policy& pol = *policy_;
  if (value.empty() || !pol.pinning()) return {};
  if (pol.pin_tokens && value.rfind("pin1.", 0) == 0) {
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return verify_pin_token(w_.opts.key, w_.opts.app, value, now);
  }
  if (in_ranges(client_ip_, pol.pin_from)) return value;
  return {};
}

int Session::affinity_release(Exchange& ex) const {
  const RequestInfo& info = req_->info();
  if (info.affinity.empty()) return -1;
  const Snapshot& s = *ex.snap;
  switch (policy_->affinity) {
    case Policy::Affinity::kCookie: {
      std::string name = verify_affinity_value(w_.opts.key, w_.opts.app, info.affinity);
      int i = name.empty() ? -1 : s.find(name);
      if (!s.routable(i)) return -1;  // forged, or no longer weighted: back to the split
      ex.affinity_kept = true;
      return i;
    }
    case Policy::Affinity::kHeader:
      return Picker::pick_by_hash(s, info.affinity);
    case Policy::Affinity::kNone:
      break;
  }
  return -1;
}

bool Session::take_pooled(BackendState& b) {
  up_.reset();
  if (w_.stopping || closed_) return false;
  auto& pool = b.pools[w_.index].conns;
  auto now = Clock::now();
  while (!pool.empty()) {
    PooledConnection c = std::move(pool.back());
    pool.pop_back();
    if (now - c.idle_since > kMaxIdleAge) continue;
    // A connection the backend closed (or wrote to) while idle is not reused.
    char probe;
    ssize_t r = ::recv(c.socket.native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      up_.emplace(std::move(c.socket));
      up_reused_ = true;
      return true;
    }
  }
  return false;
}

awaitable<error_code> Session::connect_upstream(BackendState& b) {
  // A stopping router opens nothing new, nor does an aborted session (a reset HTTP/2
  // stream): a retry after abort() must not reach a backend.
  if (w_.stopping || closed_) {
    up_.reset();
    co_return asio::error::operation_aborted;
  }
  up_.emplace(w_.ioc);
  up_reused_ = false;
  set_deadline(Phase::kConnect, w_.opts.connect_timeout_ms);
  error_code ec;
  co_await up_->async_connect(b.endpoint, redirect_error(kAwait, ec));
  if (timed_out_) ec = asio::error::timed_out;
  if (!ec) up_->set_option(tcp::no_delay(true), ec);
  if (ec) up_.reset();
  co_return ec;
}

void Session::release_upstream(BackendState& b, bool reusable) {
  if (!up_) return;
  auto& pool = b.pools[w_.index].conns;
  if (reusable && !b.removed.load(std::memory_order_relaxed) && pool.size() < kMaxIdlePerBackend) {
    auto now = Clock::now();
    while (!pool.empty() && now - pool.front().idle_since > kMaxIdleAge) pool.pop_front();
    pool.push_back(PooledConnection{std::move(*up_), now});
  }
  up_.reset();
}

}  // namespace ferry::routing
