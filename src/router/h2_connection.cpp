// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include "router/h2_connection.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/write.hpp>
#include <climits>
#include <cstdio>
#include <vector>

#include "router/h2_stream.h"

namespace ferry::routing {

namespace asio = boost::asio;
using asio::redirect_error;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadBuffer = 16 * 1024;
constexpr size_t kWriteBatch = 64 * 1024;
constexpr int32_t kConnectionWindow = 1 << 20;
// How long a connection that stopped reading (GOAWAY sent) may take to receive it.
constexpr int kGoawayFlushMs = 5'000;
// How long the bytes of a client cut off are read and dropped before the socket closes.
constexpr int kLingerMs = 2'000;

std::string_view as_view(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace

bool RateBudget::take(Clock::time_point now) {
  if (last_ != Clock::time_point{}) {
    double secs = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + secs * rate_);
  }
  last_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

// A request stream's head as its HEADERS arrive.
struct H2Connection::Request {
  std::string method, path, authority, host, fields, cookie;
  size_t list_bytes = 0;
  bool too_large = false;
  bool has_length = false;
};

struct H2Connection::Entry {
  Request req;
  std::shared_ptr<H2Stream> stream;  // once the head is complete
  std::weak_ptr<Session> session;
  bool chunked = false;        // the request body goes out in chunks (no content-length)
  bool reset_by_peer = false;  // the client sent RST_STREAM
};

H2Connection::H2Connection(Session& owner, Worker& w, ClientStream& client, std::string client_ip)
    : owner_(owner),
      w_(w),
      client_(client),
      client_ip_(std::move(client_ip)),
      max_live_(2 * static_cast<size_t>(std::clamp(w.opts.tls.http2_max_streams, 1, 1000))),
      wake_(w.ioc),
      done_(w.ioc) {}

H2Connection::~H2Connection() {
  for (H2Stream* s : live_) s->detach();
  if (ng_ != nullptr) nghttp2_session_del(ng_);
}

void H2Connection::abort() {
  aborted_ = true;
  kick();
}

void H2Connection::kick() {
  kicked_ = true;
  wake_.cancel();
}

void H2Connection::arm_idle() {
  if (live_.empty() && reading_)
    owner_.set_deadline(Session::Phase::kIdle, w_.opts.idle_timeout_ms);
}

void H2Connection::stream_alive(H2Stream* s) {
  live_.insert(s);
  // Streams have their own deadlines (their sessions'); the connection has none meanwhile.
  if (reading_) owner_.set_deadline(Session::Phase::kStreaming, INT_MAX);
}

void H2Connection::stream_gone(H2Stream* s) {
  live_.erase(s);
  arm_idle();
}

void H2Connection::consume(int32_t id, size_t n) {
  if (ng_ == nullptr || fatal_) return;
  nghttp2_session_consume(ng_, id, n);
  kick();
}

void H2Connection::reset(int32_t id, uint32_t code) {
  if (ng_ == nullptr || fatal_) return;
  nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, code);
  kick();
}

void H2Connection::response_head(H2Stream& s) {
  if (ng_ == nullptr || fatal_) return;
  std::string status = std::to_string(s.status());
  std::vector<nghttp2_nv> nva;
  nva.reserve(s.fields().size() + 1);
  auto nv = [](std::string_view n, std::string_view v) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                      NGHTTP2_NV_FLAG_NONE};
  };
  nva.push_back(nv(":status", status));
  for (const auto& [name, value] : s.fields()) nva.push_back(nv(name, value));
  nghttp2_data_provider body{};
  body.source.ptr = &s;
  body.read_callback = &H2Connection::read_body;
  // Nothing after the head (HEAD, 204, 304, a 0 length): END_STREAM on the HEADERS.
  bool empty = s.response_done() && !s.body_pending();
  nghttp2_submit_response(ng_, s.id(), nva.data(), nva.size(), empty ? nullptr : &body);
  kick();
}

void H2Connection::response_body(H2Stream& s) {
  if (ng_ == nullptr || fatal_) return;
  if (s.deferred) {
    s.deferred = false;
    nghttp2_session_resume_data(ng_, s.id());
  }
  kick();
}

ssize_t H2Connection::read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<H2Stream*>(source->ptr);
  bool eof = false;
  size_t n = s->take_body(buf, length, &eof);
  if (eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

void H2Connection::count_abuse(Abuse why) {
  if (abuse_counted_) return;
  abuse_counted_ = true;
  std::atomic<uint64_t>& n = why == Abuse::kRapidReset ? w_.h2_rapid_reset
                             : why == Abuse::kFlood    ? w_.h2_flood
                                                       : w_.h2_protocol_error;
  n.fetch_add(1, std::memory_order_relaxed);
}

void H2Connection::calm_down(Abuse why) {
  if (calm_) return;
  count_abuse(why);
  calm_ = true;
  reading_ = false;
  // GOAWAY with `code`; once it is sent the library wants neither to read nor to write.
  goaway_ = true;
  nghttp2_session_terminate_session(ng_, NGHTTP2_ENHANCE_YOUR_CALM);
  // The streams' sessions stop now: no backend keeps working for this client.
  for (auto& [id, e] : streams_)
    if (auto s = e->session.lock()) s->abort();
  owner_.set_deadline(Session::Phase::kClosing, kGoawayFlushMs);
  kick();
}

int H2Connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
  auto* self = static_cast<H2Connection*>(user);
  if (self->calm_) return 0;
  bool control = false;
  switch (hd->type) {
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
      control = (hd->flags & NGHTTP2_FLAG_ACK) == 0;
      break;
    case NGHTTP2_PRIORITY:
      control = true;
      break;
    case NGHTTP2_DATA:
      control = hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0;
      break;
    default:
      break;
  }
  if (control && !self->control_.take(Clock::now())) self->calm_down(Abuse::kFlood);
  return 0;
}

int H2Connection::on_begin_headers(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  int32_t id = frame->hd.stream_id;
  if (self->calm_ || self->live_.size() >= self->max_live_) {
    // Too many sessions still finishing (the client resets streams faster than they end).
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  self->streams_[id] = std::make_unique<Entry>();
  return 0;
}

int H2Connection::on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                            size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                            void* user) {
  auto* self = static_cast<H2Connection*>(user);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  Request& r = it->second->req;
  // The size SETTINGS_MAX_HEADER_LIST_SIZE counts (RFC 9113 section 6.5.2).
  r.list_bytes += namelen + valuelen + 32;
  if (r.list_bytes > self->w_.opts.max_header_bytes) r.too_large = true;
  if (r.too_large) return 0;
  std::string_view n = as_view(name, namelen);
  std::string_view v = as_view(value, valuelen);
  if (!n.empty() && n.front() == ':') {
    if (n == ":method")
      r.method = v;
    else if (n == ":path")
      r.path = v;
    else if (n == ":authority")
      r.authority = v;
    return 0;  // :scheme: the router's own X-Forwarded-Proto says it
  }
  if (n == "cookie") {
    // HTTP/2 may split the cookie field; HTTP/1.1 needs it whole (RFC 9113 8.2.3).
    if (!r.cookie.empty()) r.cookie.append("; ");
    r.cookie.append(v);
    return 0;
  }
  if (n == "host") {
    r.host = v;
    return 0;
  }
  if (n == "te") return 0;  // "trailers" only (the library checks): hop-by-hop
  if (n == "content-length") r.has_length = true;
  r.fields.append(n).append(": ").append(v).append("\r\n");
  return 0;
}

void H2Connection::local_response(int32_t id, Entry& e, int status, std::string_view body) {
  e.stream = std::make_shared<H2Stream>(this, id, w_.ioc.get_executor(), false);
  std::string msg = router_response(status, body, {}, {}, false);
  e.stream->async_write_some(asio::buffer(msg), [](error_code, size_t) {});
  e.stream->close();
}

void H2Connection::start_request(int32_t id, Entry& e, bool end_stream) {
  Request& r = e.req;
  if (r.too_large) return local_response(id, e, 431, "request header fields too large\n");
  if (r.method == "CONNECT" || r.path.empty())
    return local_response(id, e, 405, "CONNECT is not served over HTTP/2\n");
  std::string head;
  head.reserve(r.method.size() + r.path.size() + r.fields.size() + r.cookie.size() + 64);
  head.append(r.method).append(" ").append(r.path).append(" HTTP/1.1\r\n");
  const std::string& host = r.authority.empty() ? r.host : r.authority;
  if (!host.empty()) head.append("host: ").append(host).append("\r\n");
  if (!r.cookie.empty()) head.append("cookie: ").append(r.cookie).append("\r\n");
  head.append(r.fields);
  // A body of unknown length goes to the backend in chunks.
  e.chunked = !end_stream && !r.has_length;
  if (e.chunked) head.append("transfer-encoding: chunked\r\n");
  head.append("\r\n");
  e.stream = std::make_shared<H2Stream>(this, id, w_.ioc.get_executor(), r.method == "HEAD");
  e.stream->push_head(std::move(head));
  if (end_stream) e.stream->end_request();
  r = Request{};
  auto session = make_session(w_, e.stream, client_ip_);
  e.session = session;
  session->start();
}

int H2Connection::on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2Connection*>(user);
  auto it = self->streams_.find(frame->hd.stream_id);
  if (it == self->streams_.end()) return 0;
  Entry& e = *it->second;
  bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        if (!self->calm_) self->start_request(frame->hd.stream_id, e, end_stream);
      } else if (end_stream && e.stream) {  // trailers: not forwarded
        if (e.chunked) e.stream->push_request("0\r\n\r\n", 0);
        e.stream->end_request();
      }
      break;
    case NGHTTP2_DATA:
      if (end_stream && e.stream) {
        if (e.chunked) e.stream->push_request("0\r\n\r\n", 0);
        e.stream->end_request();
      }
      break;
    case NGHTTP2_RST_STREAM:
      e.reset_by_peer = true;
      break;
    default:
      break;
  }
  return 0;
}

int H2Connection::on_frame_send(nghttp2_session* ng, const nghttp2_frame* frame, void* user) {
  // A GOAWAY with an error the library chose: the client broke the protocol (ours, for
  // abuse, was counted when it was decided; a drain's is NO_ERROR).
  if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR) {
    auto* self = static_cast<H2Connection*>(user);
    self->count_abuse(frame->goaway.error_code == NGHTTP2_ENHANCE_YOUR_CALM
                          ? Abuse::kFlood
                          : Abuse::kProtocolError);
    return 0;
  }
  // The whole answer went out while the client is still sending a body nobody will read:
  // the stream ends now (RFC 9113 section 8.1).
  if ((frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 &&
      nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id) == 0)
    nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
  return 0;
}

int H2Connection::on_data_chunk(nghttp2_session* ng, uint8_t, int32_t id, const uint8_t* data,
                                size_t len, void* user) {
  auto* self = static_cast<H2Connection*>(user);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end() || !it->second->stream) {
    nghttp2_session_consume(ng, id, len);  // nobody reads it: the window reopens at once
    return 0;
  }
  Entry& e = *it->second;
  if (e.chunked) {
    char size[24];
    int k = std::snprintf(size, sizeof size, "%zx\r\n", len);
    std::string chunk(size, static_cast<size_t>(k));
    chunk.append(as_view(data, len)).append("\r\n");
    e.stream->push_request(chunk, len);
  } else {
    e.stream->push_request(as_view(data, len), len);
  }
  return 0;
}

int H2Connection::on_stream_close(nghttp2_session* ng, int32_t id, uint32_t, void* user) {
  auto* self = static_cast<H2Connection*>(user);
  auto it = self->streams_.find(id);
  if (it == self->streams_.end()) return 0;
  std::unique_ptr<Entry> e = std::move(it->second);
  self->streams_.erase(it);
  bool unanswered = !e->stream || !e->stream->response_done();
  if (e->stream) {
    size_t credit = e->stream->stream_closed();
    if (credit > 0) nghttp2_session_consume_connection(ng, credit);
  }
  if (!unanswered) ++self->answered_;
  if (unanswered) {
    // Cancelled before its answer: the session (and its backend request) stops now.
    if (auto s = e->session.lock()) s->abort();
    if (e->reset_by_peer) {
      ++self->peer_resets_;
      const bool too_fast = !self->resets_.take(Clock::now());
      const bool mostly_resets = self->peer_resets_ >= static_cast<uint64_t>(kResetBurst) &&
                                 self->peer_resets_ > kResetRatio * self->answered_;
      if (too_fast || mostly_resets) self->calm_down(Abuse::kRapidReset);
    }
  }
  return 0;
}

awaitable<void> H2Connection::run(std::shared_ptr<Session> /*owner*/) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
    if (cbs != nullptr) nghttp2_session_callbacks_del(cbs);
    co_return;
  }
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame_recv);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &on_frame_send);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_stream_close);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, 8);
  int rv = nghttp2_session_server_new2(&ng_, cbs, this, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) {
    ng_ = nullptr;
    co_return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS,
       static_cast<uint32_t>(std::clamp(w_.opts.tls.http2_max_streams, 1, 1000))},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<uint32_t>(w_.opts.max_header_bytes)},
  };
  nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(ng_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  arm_idle();

  auto self_done = [this](std::exception_ptr) {
    writer_done_ = true;
    done_.cancel();
  };
  done_.expires_at(SteadyTime::max());
  asio::co_spawn(w_.ioc.get_executor(), writer(), self_done);
  co_await reader();
  reading_ = false;
  kick();
  if (!writer_done_) {
    error_code ec;
    co_await done_.async_wait(redirect_error(kAwait, ec));
  }
  if (!client_gone_ && !aborted_) co_await linger();
  // Whatever is still open has lost its client.
  for (auto& [id, e] : streams_) {
    if (e->stream) e->stream->stream_closed();
    if (auto s = e->session.lock()) s->abort();
  }
  streams_.clear();
}

awaitable<void> H2Connection::reader() {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kReadBuffer]);
  for (;;) {
    error_code ec;
    size_t n = co_await client_.async_read_some(asio::buffer(buf.get(), kReadBuffer),
                                                redirect_error(kAwait, ec));
    if (ec || aborted_ || writer_done_) {
      // The client is gone: so is anything left to send it.
      error_code ignored;
      client_.close(ignored);
      client_gone_ = true;
      co_return;
    }
    ssize_t rv = nghttp2_session_mem_recv(ng_, buf.get(), n);
    if (rv < 0) {
      // Not HTTP/2, a flood the library caught (too many queued answers) or a callback
      // failure: whatever GOAWAY the library queued is still sent.
      count_abuse(rv == NGHTTP2_ERR_FLOODED ? Abuse::kFlood : Abuse::kProtocolError);
      owner_.set_deadline(Session::Phase::kClosing, kGoawayFlushMs);
      co_return;
    }
    kick();
    if (calm_ || nghttp2_session_want_read(ng_) == 0) {
      owner_.set_deadline(Session::Phase::kClosing, kGoawayFlushMs);
      co_return;
    }
  }
}

awaitable<void> H2Connection::linger() {
  // The router stopped reading (GOAWAY) while the client may still be sending: closing at
  // once would answer its bytes with a TCP reset, which can destroy the GOAWAY before the
  // client reads it. Its bytes are read and dropped until it closes, for a short while.
  owner_.set_deadline(Session::Phase::kClosing, kLingerMs);
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kReadBuffer]);
  for (;;) {
    error_code ec;
    co_await client_.async_read_some(asio::buffer(buf.get(), kReadBuffer),
                                     redirect_error(kAwait, ec));
    if (ec || aborted_) break;
  }
  client_gone_ = true;
}

awaitable<void> H2Connection::writer() {
  for (;;) {
    if (aborted_ || fatal_) break;
    if (w_.draining.load(std::memory_order_relaxed) && !goaway_) {
      // A draining router: the client finishes the streams it has and opens its next ones
      // on a new connection.
      goaway_ = true;
      nghttp2_submit_goaway(ng_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(ng_),
                            NGHTTP2_NO_ERROR, nullptr, 0);
    }
    wbuf_.clear();
    while (wbuf_.size() < kWriteBatch) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(ng_, &data);
      if (n < 0) {
        fatal_ = true;
        break;
      }
      if (n == 0) break;
      wbuf_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (!wbuf_.empty()) {
      error_code ec;
      co_await asio::async_write(client_, asio::buffer(wbuf_), redirect_error(kAwait, ec));
      if (ec) break;
      continue;
    }
    if (fatal_) break;
    bool want = nghttp2_session_want_read(ng_) != 0 || nghttp2_session_want_write(ng_) != 0;
    if (!want || (!reading_ && nghttp2_session_want_write(ng_) == 0)) break;
    if (!kicked_) {
      wake_.expires_at(SteadyTime::max());
      error_code ec;
      co_await wake_.async_wait(redirect_error(kAwait, ec));
    }
    kicked_ = false;
  }
  // Nothing more goes out (the session is over, or the client cannot be written to): the
  // reader must not wait for a client that waits for us.
  error_code ignored;
  client_.cancel(ignored);
}

}  // namespace ferry::routing
