// Session's relay of one routed request: upstream connection, request body, response
// head (with the retry rules), response body and upgrade tunnels.
// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <limits>

#include "router/exchange.h"
#include "router/session.h"

namespace ferry::routing {

namespace asio = boost::asio;
using asio::redirect_error;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint32_t kResponseHeadLimit = 64 * 1024;

}  // namespace

void Session::finish(Exchange& ex, int status, bool upstream_error) {
  if (closed_ && upstream_error) {
    // Aborted from outside (the client reset its HTTP/2 stream, the router stops): the
    // failed upstream read is ours, not the release's answer, so nothing is counted (a
    // client could otherwise raise a good canary's error rate with resets).
    ex.active.set(nullptr);
    return;
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - ex.start).count();
  if (ex.pinned)
    ex.route().counters->record_pinned(status);
  else
    ex.route().counters->record(status, upstream_error, ms, !ex.slo_excluded);
  ex.active.set(nullptr);
}

void Session::record_late_upstream_error(Exchange& ex) {
  if (!ex.pinned && !closed_) ex.route().counters->record_upstream_error();
}

bool Session::shield(Exchange& ex, int status, bool upstream_error) {
  const Snapshot& s = *ex.snap;
  if (ex.pinned || ex.release == s.stable || !s.routable(s.stable)) return false;
  // The analysis must see the failure: it counts for the release that failed, and as
  // shielded, before the stable release answers in its place.
  finish(ex, status, upstream_error);
  ex.route().counters->record_shielded();
  ex.shielded = true;
  BackendState* b = w_.snap.get() == ex.snap.get() ? w_.picker.pick_backend(s, s.stable)
                                                   : s.releases[s.stable].backends.front().get();
  ex.choose(s.stable, b);
  ex.start = Clock::now();
  return true;
}

bool Session::alternative(Exchange& ex) {
  const Snapshot& s = *ex.snap;
  // The picker's state belongs to the worker's current snapshot; a request that started
  // on an older one picks its retry by a plain scan instead.
  bool current = w_.snap.get() == ex.snap.get();
  auto other_in = [&](int rel) -> BackendState* {
    if (current) return w_.picker.pick_backend(s, rel, ex.backend);
    for (const auto& b : s.releases[rel].backends)
      if (b.get() != ex.backend) return b.get();
    return nullptr;
  };
  if (BackendState* b = other_in(ex.release)) {
    ex.choose(ex.release, b);
    return true;
  }
  if (ex.pinned) return false;
  int rel = -1;
  if (current) {
    rel = w_.picker.pick_release(s, ex.release);
  } else {
    for (int i : s.weighted)
      if (i != ex.release) rel = i;
  }
  if (rel < 0) return false;
  if (BackendState* b = other_in(rel)) {
    ex.choose(rel, b);
    return true;
  }
  return false;
}

awaitable<bool> Session::proxy(Exchange& ex) {
  RequestParser& p = *req_;
  const RequestInfo& info = p.info();
  req_head_.append("\r\n");
  bool replayable = p.is_done();  // the whole request is still in cbuf_
  bool retried = false;           // the one retry on another backend
  bool fresh = false;             // a retry on a new connection after a stale pooled one
  auto retry_elsewhere = [&] {
    if (closed_ || !info.idempotent || !replayable || retried || !alternative(ex)) return false;
    retried = true;
    ex.retried = true;
    fresh = false;
    return true;
  };
  // The canary shield: a failure of a release other than the stable one is answered by
  // the stable release, once, when the request may be sent again.
  const bool shielding = ex.snap->policy->shield && info.idempotent;
  auto retry_on_stable = [&](int status, bool upstream_error) {
    if (closed_ || !shielding || !replayable || retried || !shield(ex, status, upstream_error))
      return false;
    retried = true;
    ex.retried = true;
    fresh = false;
    return true;
  };
  for (;;) {
    BackendState& b = *ex.backend;
    ubuf_.clear();
    error_code ec;
    if (fresh || !take_pooled(b)) ec = co_await connect_upstream(b);
    if (ec) {
      if (retry_on_stable(502, true) || retry_elsewhere()) continue;
      finish(ex, 502, true);
      co_return co_await respond(502, "upstream connection failed\n", ex.route().name,
                                 ex.close_client || !p.is_done());
    }
    set_deadline(Phase::kClient, w_.opts.idle_timeout_ms);
    co_await write(*up_, ec, req_head_, cbuf_.view(ex.head_len).substr(0, ex.staged - ex.head_len));
    if (ec) {
      up_.reset();
      if (up_reused_ && !fresh) {
        fresh = true;  // the pooled connection was stale; nothing reached the backend
        continue;
      }
      if (retry_on_stable(502, true) || retry_elsewhere()) continue;
      finish(ex, 502, true);
      co_return co_await respond(502, "upstream connection failed\n", ex.route().name,
                                 ex.close_client || !p.is_done());
    }
    if (!p.is_done()) {
      replayable = false;
      BodyResult r = co_await stream_request_body(ex);
      if (r == BodyResult::kClientGone) co_return false;
      if (r != BodyResult::kOk) {
        up_.reset();
        int status = r == BodyResult::kTooLarge  ? 413
                     : r == BodyResult::kBad     ? 400
                     : r == BodyResult::kTimeout ? 408
                                                 : 502;
        finish(ex, status, r == BodyResult::kUpstreamFailed);
        co_return co_await respond(status,
                                   status == 413   ? "request body too large\n"
                                   : status == 400 ? "malformed request body\n"
                                   : status == 408 ? "request body took too long\n"
                                                   : "upstream connection failed\n",
                                   ex.route().name, true);
      }
    }

    set_deadline(Phase::kWaitResponse, w_.opts.response_timeout_ms);
    new_response_parser(ex);
    size_t head_len = 0;
    HeadResult hr = co_await read_response_head(ex, &head_len);
    if (hr == HeadResult::kTimeout) {
      up_.reset();
      finish(ex, 504, false);
      co_return co_await respond(504, "upstream response timed out\n", ex.route().name,
                                 ex.close_client);
    }
    if (hr != HeadResult::kOk) {
      up_.reset();
      // A pooled connection the backend closed just as it was reused answers nothing.
      if (hr == HeadResult::kClosedEarly && up_reused_ && !fresh && replayable && info.idempotent) {
        fresh = true;
        continue;
      }
      if (retry_on_stable(502, true) || retry_elsewhere()) continue;
      finish(ex, 502, true);
      co_return co_await respond(502, "upstream connection failed\n", ex.route().name,
                                 ex.close_client);
    }
    int status = resp_->status();
    if (status >= 500 && retry_on_stable(status, false)) {
      up_.reset();  // the failed answer is not read further
      continue;
    }
    if ((status == 502 || status == 503) && retry_elsewhere()) {
      up_.reset();
      continue;
    }
    co_return co_await relay_response(ex, head_len);
  }
}

awaitable<Session::BodyResult> Session::stream_request_body(Exchange& ex) {
  RequestParser& p = *req_;
  // Head and staged bytes went out already.
  cbuf_.consume(ex.staged);
  ex.staged = 0;
  // A total deadline for the body, not only one per read: a client dripping a byte now
  // and then cannot hold a backend connection for longer than this.
  const SteadyTime body_deadline =
      ex.start + std::chrono::milliseconds(policy_->request_body_timeout_ms);
  auto arm = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(body_deadline - Clock::now());
    set_deadline(Phase::kBody,
                 static_cast<int>(std::clamp<int64_t>(left.count(), 0, w_.opts.idle_timeout_ms)));
  };
  if (p.info().expect_continue && p.info().version == 11) {
    arm();
    error_code ec;
    co_await write(client_, ec, "HTTP/1.1 100 Continue\r\n\r\n");
    if (timed_out_) co_return BodyResult::kTimeout;
    if (ec) co_return BodyResult::kClientGone;
  }
  while (!p.is_done()) {
    size_t pos = 0;
    while (!p.is_done() && pos < cbuf_.size() && !p.must_wait(cbuf_.size() - pos)) {
      error_code ec;
      pos += p.feed(cbuf_.data() + pos, cbuf_.size() - pos, ec);
      if (ec == http::error::need_more) break;
      if (ec == http::error::body_limit) co_return BodyResult::kTooLarge;
      if (ec) co_return BodyResult::kBad;
    }
    if (pos > 0) {
      arm();
      error_code ec;
      co_await write(*up_, ec, cbuf_.view().substr(0, pos));
      if (timed_out_) co_return BodyResult::kTimeout;
      if (ec) co_return BodyResult::kUpstreamFailed;
      cbuf_.consume(pos);
      continue;
    }
    size_t room = 0;
    char* at = cbuf_.prepare(&room);
    if (at == nullptr) co_return BodyResult::kBad;
    error_code ec;
    arm();
    size_t n = co_await client_.async_read_some(asio::buffer(at, room), redirect_error(kAwait, ec));
    if (timed_out_) co_return BodyResult::kTimeout;
    if (ec) co_return BodyResult::kClientGone;
    cbuf_.commit(n);
  }
  co_return BodyResult::kOk;
}

void Session::new_response_parser(Exchange& ex) {
  const RequestInfo& info = req_->info();
  // An HTTP/1.0 client cannot read chunks: such a body is decoded and the connection
  // closed at its end.
  ResponseParser& sp = resp_.emplace(resp_head_, ex.route().name, info.version == 10, &decoded_);
  sp.header_limit(kResponseHeadLimit);
  // Beast 1.74 compares Content-Length against an empty optional as if it were a limit:
  // "no limit" must be spelled as the largest one.
  sp.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (info.method == http::verb::head) sp.skip(true);
}

awaitable<Session::HeadResult> Session::read_response_head(Exchange& ex, size_t* head_len) {
  bool got_bytes = false;
  size_t parsed = 0;  // head bytes the parser has taken (see read_request_head)
  for (;;) {
    if (ubuf_.size() > parsed) {
      error_code ec;
      parsed += resp_->feed(ubuf_.data() + parsed, ubuf_.size() - parsed, ec);
      if (ec && ec != http::error::need_more) co_return HeadResult::kBad;
      if (resp_->is_header_done()) {
        int s = resp_->status();
        if (s == 101 || s >= 200) {
          *head_len = parsed;
          co_return HeadResult::kOk;
        }
        // An interim answer (103 Early Hints): pass it on, then wait for the final one.
        ubuf_.consume(parsed);
        parsed = 0;
        if (req_->info().version == 11) {
          resp_head_.append("\r\n");
          co_await write(client_, ec, resp_head_);
          if (ec) co_return HeadResult::kBad;
        }
        new_response_parser(ex);
        continue;
      }
    }
    size_t room = 0;
    char* at = ubuf_.prepare(&room);
    if (at == nullptr) co_return HeadResult::kBad;
    error_code ec;
    size_t n = co_await up_->async_read_some(asio::buffer(at, room), redirect_error(kAwait, ec));
    if (ec) {
      if (timed_out_) co_return HeadResult::kTimeout;
      co_return got_bytes ? HeadResult::kBad : HeadResult::kClosedEarly;
    }
    got_bytes = true;
    ubuf_.commit(n);
  }
}

awaitable<bool> Session::relay_response(Exchange& ex, size_t head_len) {
  const RequestInfo& info = req_->info();
  ResponseParser& sp = *resp_;
  BackendState& b = *ex.backend;
  int status = sp.status();
  if (status == 101 && !info.upgrade) {
    up_.reset();
    finish(ex, 502, true);
    co_return co_await respond(502, "upstream switched protocols unasked\n", ex.route().name, true);
  }
  bool dechunk = info.version == 10 && sp.chunked();
  bool close = ex.close_client || sp.need_eof() || dechunk;
  ex.close_client = close;
  if (!sp.has_request_id()) {
    resp_head_.append("X-Request-Id: ");
    resp_head_.append(info.request_id);
    resp_head_.append("\r\n");
  }
  if (!ex.set_cookie.empty() && status != 101) {
    resp_head_.append("Set-Cookie: ");
    resp_head_.append(kAffinityCookieName);
    resp_head_.push_back('=');
    resp_head_.append(ex.set_cookie);
    resp_head_.append("; Path=/; HttpOnly; SameSite=Lax\r\n");
  }
  if (!w_.hsts.empty() && client_.secure() && status != 101) resp_head_.append(w_.hsts);
  if (status != 101) {
    if (close)
      resp_head_.append("Connection: close\r\n");
    else if (info.version == 10)
      resp_head_.append("Connection: keep-alive\r\n");
  }
  resp_head_.append("\r\n");
  ubuf_.consume(head_len);

  log_status_ = status;
  if (status == 101) {
    error_code ec;
    log_bytes_ += resp_head_.size() + ubuf_.size();
    co_await write(client_, ec, resp_head_, ubuf_.view());
    ubuf_.clear();
    finish(ex, 101, false);
    if (!ec) co_await tunnel(shared_from_this(), ex);
    up_.reset();
    co_return false;
  }

  sp.eager(true);
  set_deadline(Phase::kStreaming, w_.opts.response_timeout_ms);
  bool first = true;
  for (;;) {
    size_t pos = 0;
    decoded_.clear();
    while (!sp.is_done() && pos < ubuf_.size() && !sp.must_wait(ubuf_.size() - pos)) {
      error_code ec;
      pos += sp.feed(ubuf_.data() + pos, ubuf_.size() - pos, ec);
      if (ec == http::error::need_more) break;
      if (ec) {
        up_.reset();
        if (first) {
          finish(ex, 502, true);
          co_return co_await respond(502, "malformed upstream response\n", ex.route().name, true);
        }
        finish(ex, status, false);
        record_late_upstream_error(ex);
        co_return false;
      }
    }
    std::string_view body = dechunk ? std::string_view(decoded_) : ubuf_.view().substr(0, pos);
    // Counted before the last write, so a client that has its answer sees it counted.
    bool done = sp.is_done();
    if (done) {
      finish(ex, status, false);
      ex.in_flight.set(nullptr);  // the backend's part is over
    }
    if (first || !body.empty()) {
      error_code ec;
      log_bytes_ += (first ? resp_head_.size() : 0) + body.size();
      if (first)
        co_await write(client_, ec, resp_head_, body);
      else
        co_await write(client_, ec, body);
      first = false;
      if (ec) {  // the client went away
        up_.reset();
        if (!done) finish(ex, status, false);
        co_return false;
      }
    }
    ubuf_.consume(pos);
    if (done) break;
    size_t room = 0;
    char* at = ubuf_.prepare(&room);
    error_code ec;
    size_t n = 0;
    if (at == nullptr) {
      ec = asio::error::no_buffer_space;
    } else {
      n = co_await up_->async_read_some(asio::buffer(at, room), redirect_error(kAwait, ec));
    }
    if (ec == asio::error::eof && sp.need_eof()) {
      error_code ignored;
      sp.put_eof(ignored);
      finish(ex, status, false);
      ex.in_flight.set(nullptr);
      break;
    }
    if (ec) {  // upstream failed mid-body: the client sees the connection close
      up_.reset();
      finish(ex, status, false);
      record_late_upstream_error(ex);
      co_return false;
    }
    ubuf_.commit(n);
    set_deadline(Phase::kStreaming, w_.opts.response_timeout_ms);
  }
  release_upstream(b, sp.keep_alive() && !sp.need_eof() && ubuf_.empty());
  co_return !close;
}

awaitable<void> Session::tunnel(std::shared_ptr<Session> self, Exchange& ex) {
  set_deadline(Phase::kTunnel, w_.opts.idle_timeout_ms);
  // Bytes the client sent after the upgrade request belong to the new protocol.
  cbuf_.consume(ex.staged);
  ex.staged = 0;
  if (!cbuf_.empty()) {
    error_code ec;
    co_await write(*up_, ec, cbuf_.view());
    if (ec) co_return;
    cbuf_.clear();
  }
  tunnel_other_finished_ = false;
  if (!tunnel_done_) tunnel_done_.emplace(w_.ioc);
  tunnel_done_->expires_at(SteadyTime::max());
  asio::co_spawn(w_.ioc.get_executor(), relay(*up_, client_, ubuf_), [self](std::exception_ptr) {
    self->tunnel_other_finished_ = true;
    self->tunnel_done_->cancel();
  });
  co_await relay(client_, *up_, cbuf_);
  if (!tunnel_other_finished_) {
    error_code ec;
    co_await tunnel_done_->async_wait(redirect_error(kAwait, ec));
  }
}

namespace {

void relay_finish_sending(Socket& s, error_code& ec) {
  s.shutdown(Socket::shutdown_send, ec);
}
void relay_finish_sending(ClientStream& s, error_code& ec) {
  s.finish_sending(ec);
}

}  // namespace

template <typename From, typename To>
awaitable<void> Session::relay(From& from, To& to, IoBuffer& buf) {
  error_code ec;
  for (;;) {
    buf.clear();
    size_t room = 0;
    char* at = buf.prepare(&room);
    size_t n = co_await from.async_read_some(asio::buffer(at, room), redirect_error(kAwait, ec));
    if (ec) break;
    set_deadline(Phase::kTunnel, w_.opts.idle_timeout_ms);
    co_await asio::async_write(to, asio::buffer(at, n), redirect_error(kAwait, ec));
    if (ec) break;
  }
  error_code ignored;
  if (ec == asio::error::eof) {
    relay_finish_sending(to, ignored);
  } else {
    client_.close(ignored);
    if (up_) up_->close(ignored);
  }
}

}  // namespace ferry::routing
