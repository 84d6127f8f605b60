// One client connection of the router: reads requests (keep-alive, pipelining), picks a
// backend from the current table, relays the request to a pooled or new upstream
// connection and the response back, streaming bodies in both directions, retrying
// idempotent requests once elsewhere, tunnelling upgrades, and recording per-release
// counters. Runs as C++20 coroutines on its worker's single io thread, so none of its
// state needs a lock. The worker's one deadline timer (Worker::deadline_timer) enforces the
// idle, request body, connect and response timeouts of all its sessions.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>
#include <string>

#include "router/client_stream.h"
#include "router/http_messages.h"
#include "router/io_buffer.h"
#include "router/tls.h"
#include "router/worker.h"

namespace ferry::routing {

template <typename T>
using awaitable = boost::asio::awaitable<T, Executor>;
using Timer = boost::asio::basic_waitable_timer<
    std::chrono::steady_clock, boost::asio::wait_traits<std::chrono::steady_clock>, Executor>;
// Completion token for awaiting an operation in these coroutines.
inline constexpr boost::asio::use_awaitable_t<Executor> kAwait{};

class H2Connection;

class Session : public std::enable_shared_from_this<Session> {
 public:
  // How late a deadline may fire: deadlines this close share one timer wake-up.
  static constexpr int kDeadlineSlackMs = 20;
  // A client connection idle this long gives back its memory for bytes in flight (trim()):
  // an idle connection then holds none, a busy one keeps it.
  static constexpr int kTrimAfterMs = 1000;

  // `listener`: TLS (with the certificate set to hand-shake with) or plain, and whether
  // to answer every request with a redirect to HTTPS; `peer`: the client's address as
  // accept gave it. A TLS connection whose handshake chose "h2" is served by an
  // H2Connection, which makes a Session per stream.
  Session(Worker& worker, Socket client, Listener listener, const tcp::endpoint& peer);
  // One HTTP/2 stream's request (router/h2_stream.h) from `client_ip`: served once, then
  // the session ends.
  Session(Worker& worker, std::shared_ptr<H2Stream> stream, std::string client_ip);
  ~Session();
  // Starts serving; call on the worker's thread.
  void start();
  // The router is stopping (worker's thread): closes the client and upstream connections
  // and stops the watchdog, so every coroutine of the session ends soon.
  void abort();
  // The router is draining (worker's thread): an HTTP/2 connection sends GOAWAY NO_ERROR
  // now rather than at its next frame. HTTP/1.1 ones close after their next answer anyway.
  void drain();

 private:
  friend class H2Connection;  // sets the connection's deadlines
  // What a timeout closes depends on what the session is waiting for.
  enum class Phase {
    kHandshake,
    kIdle,
    kClient,
    kBody,
    kConnect,
    kWaitResponse,
    kStreaming,
    kTunnel,
    kClosing
  };
  enum class HeadResult { kOk, kTimeout, kClosedEarly, kBad };
  enum class BodyResult { kOk, kClientGone, kUpstreamFailed, kTooLarge, kBad, kTimeout };
  struct Exchange;

  awaitable<void> run(std::shared_ptr<Session> self);
  // What times out at `ms` from now if the session is still in `phase` (or a later phase
  // with no deadline of its own) then; at most kDeadlineSlackMs late.
  void set_deadline(Phase phase, int ms);
  void on_timeout();
  // Idle for kTrimAfterMs (worker's thread): the upstream buffer's block goes back to the
  // worker's pool, a TLS connection frees OpenSSL's record buffers, and an HTTP/1.1
  // connection's pending read is cut short so that the client buffer goes back too (the
  // connection then waits for bytes without one); what the next request needs is taken
  // again when it comes.
  void trim();
  // The worker's deadline timer fires no later than `at` plus the slack.
  static void deadline_due(Worker& w, SteadyTime at);
  // The timer fired: times out every session whose deadline passed, and arms it for the
  // next one.
  static void on_deadline_tick(Worker& w);

  // The TLS handshake within its timeout; false when it failed.
  awaitable<bool> handshake();
  // Whether the handshake chose HTTP/2 by ALPN.
  bool alpn_h2();
  // Sends TLS close_notify (bounded by a short deadline) before the connection closes, so
  // a client reading to the end of a close-delimited body can tell it was not cut.
  awaitable<void> close_tls();
  // One request; false when the client connection must close.
  awaitable<bool> serve();
  // A 308 to the same host and target over https (the plain port of a TLS app).
  awaitable<bool> redirect_to_https(Exchange& ex);
  // Writes `ex`'s line to the access log (when the app has one).
  void log_request(const Exchange& ex);
  awaitable<bool> read_request_head(size_t* head_len);
  // The release a pin header value may pin to under the app's policy (an allowlisted
  // client's release name, or a good pin token's), or empty: the value is ignored.
  std::string allowed_pin(const std::string& value) const;
  // The release affinity keeps this request on, or -1 for the weighted split.
  int affinity_release(Exchange& ex) const;
  // Routes and relays a parsed request; false when the client connection must close.
  awaitable<bool> proxy(Exchange& ex);
  // An idle pooled connection to `b` that the backend has not closed, into up_.
  bool take_pooled(BackendState& b);
  // A new connection to `b` into up_, within the connect timeout.
  awaitable<error_code> connect_upstream(BackendState& b);
  void release_upstream(BackendState& b, bool reusable);
  awaitable<BodyResult> stream_request_body(Exchange& ex);
  awaitable<HeadResult> read_response_head(Exchange& ex, size_t* head_len);
  void new_response_parser(Exchange& ex);
  // Moves `ex` to another backend for its one retry: another instance of the same release
  // first, else (unless pinned) another weighted release. False when there is none.
  bool alternative(Exchange& ex);
  // Records a finished request in its release's counters (pinned ones apart).
  void finish(Exchange& ex, int status, bool upstream_error);
  void record_late_upstream_error(Exchange& ex);
  // Records `ex`'s failure (status, or no answer) against its release, counts it as
  // shielded and moves `ex` to the stable release. False, changing nothing, when `ex` is
  // pinned, already on the stable release, or the stable release has no backend.
  bool shield(Exchange& ex, int status, bool upstream_error);
  awaitable<bool> relay_response(Exchange& ex, size_t head_len);
  awaitable<void> tunnel(std::shared_ptr<Session> self, Exchange& ex);
  template <typename From, typename To>
  awaitable<void> relay(From& from, To& to, IoBuffer& buf);
  // Writes a then b. Not a coroutine: it returns the write operation itself, so awaiting
  // it allocates no coroutine frame of its own. `ec` must outlive the await.
  template <typename Stream>
  awaitable<std::size_t> write(Stream& s, error_code& ec, std::string_view a,
                               std::string_view b = {}) {
    write_bufs_ = {boost::asio::buffer(a.data(), a.size()),
                   boost::asio::buffer(b.data(), b.size())};
    return boost::asio::async_write(s, write_bufs_, boost::asio::redirect_error(kAwait, ec));
  }
  // Sends a response the router makes itself; false when the connection must close.
  awaitable<bool> respond(int status, std::string_view body, std::string_view release, bool close);
  // A game day's fault for this request (router/fault.h): waits out an injected delay, or
  // answers an injected 5xx. False when the request was answered (and `*keep` says whether
  // the connection stays open).
  awaitable<bool> pass_faults(Exchange& ex, bool* keep);

  Worker& w_;
  ClientStream client_;
  std::unique_ptr<H2Connection> h2_;  // the connection speaks HTTP/2 (ALPN h2)
  std::shared_ptr<TlsContexts> tls_;  // the certificate set of a TLS connection
  bool redirect_ = false;
  // What the access log reports of the current request: its answer's status and the
  // bytes written for it.
  int log_status_ = 0;
  uint64_t log_bytes_ = 0;
  std::optional<Socket> up_;
  bool up_reused_ = false;
  std::string client_ip_;
  IoBuffer cbuf_;  // bytes from the client
  IoBuffer ubuf_;  // bytes from the upstream
  std::string req_head_;
  std::string resp_head_;
  std::string decoded_;
  std::shared_ptr<const Policy> policy_;  // the app's router settings for this request
  ParseOptions parse_opts_;
  std::optional<RequestParser> req_;
  std::optional<ResponseParser> resp_;
  std::array<boost::asio::const_buffer, 2> write_bufs_;

  SteadyTime deadline_ = SteadyTime::max();
  // When an idle connection trims itself, if still idle then.
  SteadyTime trim_at_ = SteadyTime::max();
  // The read for the next request is pending on an empty client buffer (HTTP/1.1), so
  // trim() may cut it short to give the buffer back; and it did.
  bool idle_read_ = false;
  bool idle_read_cut_ = false;
  Phase phase_ = Phase::kIdle;
  bool timed_out_ = false;
  bool closed_ = false;

  // Made when first needed (a tunnel, an injected delay): most sessions never do.
  std::optional<Timer> tunnel_done_;
  bool tunnel_other_finished_ = false;
  std::optional<Timer> fault_wait_;  // an injected delay; abort() cancels it
};

// A new session in memory from the worker's pool (Worker::session_blocks). Call on the
// worker's thread.
template <typename... Args>
std::shared_ptr<Session> make_session(Worker& w, Args&&... args) {
  return std::allocate_shared<Session>(PoolAllocator<Session>(w.session_blocks), w,
                                       std::forward<Args>(args)...);
}

}  // namespace ferry::routing
