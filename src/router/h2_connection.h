// HTTP/2 on a router client connection whose TLS handshake chose "h2" by ALPN (libnghttp2
// frames, HPACK and flow control). Each request stream becomes an H2Stream served by a
// Session of its own (router/h2_stream.h), so it goes through the HTTP/1.1 pipeline:
// routing, weights, affinity, pinning, shield, counters, access log, limits; backends are
// still spoken to over HTTP/1.1.
//
// What a hostile client meets (docs/router.md, "HTTP/2"):
//   - SETTINGS_MAX_CONCURRENT_STREAMS (tls.http2_max_streams), and at most twice that many
//     streams whose sessions have not finished (reset ones included): more are refused
//     (REFUSED_STREAM);
//   - SETTINGS_MAX_HEADER_LIST_SIZE = the router's header limit: larger requests get 431;
//     at most 8 CONTINUATION frames per header block (the library's limit);
//   - a 64 KiB window per stream and 1 MiB per connection, reopened as sessions read;
//   - streams the client resets before their answer are counted (rapid reset,
//     CVE-2023-44487): beyond kResetBurst at kResetRate per second, or — however slowly it
//     comes, so that a loaded router reading slowly still sees it — once kResetBurst resets
//     outnumber the answered streams kResetRatio to one, the connection ends with GOAWAY
//     ENHANCE_YOUR_CALM, and the reset streams' sessions are aborted at once, so backends
//     stop working for them;
//   - SETTINGS, PING, PRIORITY and empty DATA frames share a budget of the same kind
//     (SETTINGS and PING floods); beyond it, GOAWAY ENHANCE_YOUR_CALM;
//   - malformed frames end the connection with the GOAWAY code the library chooses
//     (PROTOCOL_ERROR, FRAME_SIZE_ERROR, COMPRESSION_ERROR, FLOW_CONTROL_ERROR).
// Each connection cut off is counted once by reason (Router::h2_abuse). A connection with
// no stream open is closed after the idle timeout. A draining router sends GOAWAY NO_ERROR
// at once (drain()) so the client opens its next streams on a new connection.
//
// Runs on the owning Session's io thread; every callback is on that thread.
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "router/session.h"

namespace ferry::routing {

class H2Stream;

// A token bucket: `burst` tokens, refilled at `rate` per second.
class RateBudget {
 public:
  RateBudget(double burst, double rate) : burst_(burst), rate_(rate), tokens_(burst) {}
  // Takes one token; false when none is left.
  bool take(std::chrono::steady_clock::time_point now);

 private:
  double burst_;
  double rate_;
  double tokens_;
  std::chrono::steady_clock::time_point last_{};
};

class H2Connection {
 public:
  // Client resets of unanswered streams and control frames a connection may send.
  static constexpr double kResetBurst = 200;
  static constexpr double kResetRate = 100;   // per second
  static constexpr uint64_t kResetRatio = 4;  // resets per answered stream, past the burst
  static constexpr double kControlBurst = 1000;
  static constexpr double kControlRate = 100;  // per second

  H2Connection(Session& owner, Worker& w, ClientStream& client, std::string client_ip);
  ~H2Connection();
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Serves the connection until it ends (client gone, GOAWAY sent, idle, abort()).
  awaitable<void> run(std::shared_ptr<Session> owner);
  // The router is stopping: the writer ends (the owner closes the socket).
  void abort();
  // The router is draining (Worker::draining set): GOAWAY NO_ERROR goes out now.
  void drain() { kick(); }

  // ---- for H2Stream
  void stream_alive(H2Stream* s);
  void stream_gone(H2Stream* s);
  void consume(int32_t id, size_t n);
  void response_head(H2Stream& s);
  void response_body(H2Stream& s);
  void reset(int32_t id, uint32_t code);

 private:
  struct Request;
  struct Entry;

  awaitable<void> reader();
  awaitable<void> writer();
  awaitable<void> linger();
  void kick();
  enum class Abuse { kRapidReset, kFlood, kProtocolError };
  // Counts this connection as cut off for `why` (once, whatever comes next).
  void count_abuse(Abuse why);
  // Ends the connection for abuse: GOAWAY ENHANCE_YOUR_CALM, no more reading.
  void calm_down(Abuse why);
  void start_request(int32_t id, Entry& e, bool end_stream);
  // Answers a stream from the router itself (431, 405) through the same decoding path.
  void local_response(int32_t id, Entry& e, int status, std::string_view body);
  void arm_idle();

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user);
  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t flags,
                       void* user);
  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user);
  static int on_data_chunk(nghttp2_session*, uint8_t flags, int32_t id, const uint8_t* data,
                           size_t len, void* user);
  static int on_stream_close(nghttp2_session*, int32_t id, uint32_t error_code, void* user);
  static ssize_t read_body(nghttp2_session*, int32_t id, uint8_t* buf, size_t length,
                           uint32_t* flags, nghttp2_data_source* source, void* user);

  Session& owner_;
  Worker& w_;
  ClientStream& client_;
  std::string client_ip_;
  nghttp2_session* ng_ = nullptr;
  std::unordered_map<int32_t, std::unique_ptr<Entry>> streams_;  // open streams
  std::unordered_set<H2Stream*> live_;  // streams whose sessions still hold them
  size_t max_live_;
  RateBudget resets_{kResetBurst, kResetRate};
  uint64_t peer_resets_ = 0;  // streams the client reset before their answer
  uint64_t answered_ = 0;     // streams that ended with their whole answer sent
  RateBudget control_{kControlBurst, kControlRate};
  bool calm_ = false;  // cut off for abuse: nothing more is read
  bool abuse_counted_ = false;
  bool goaway_ = false;  // GOAWAY (any) submitted
  bool fatal_ = false;   // the library failed: nothing more can be sent
  bool aborted_ = false;
  bool reading_ = true;
  bool client_gone_ = false;  // the client closed (or the socket failed)
  std::string wbuf_;
  Timer wake_;  // the writer waits on it for something to send
  bool kicked_ = false;
  Timer done_;  // run() waits on it for the writer to end
  bool writer_done_ = false;
};

}  // namespace ferry::routing
