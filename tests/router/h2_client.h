// An HTTP/2 client for the router tests: libnghttp2's client session over a blocking
// OpenSSL connection that asks for "h2" by ALPN. It sends ordinary requests, and it can
// misbehave as an attacker would: open streams and reset them at once (rapid reset), or
// (raw mode) send any bytes after the connection preface. Every wait is bounded: a stuck
// router fails the test, never hangs it.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace ferry::testing_router {

class H2TestClient {
 public:
  struct Response {
    int status = 0;
    std::multimap<std::string, std::string> headers;
    std::string body;
    bool closed = false;    // the stream ended (answered or reset)
    uint32_t rst_code = 0;  // the stream's error code when it was reset
    std::string header(const std::string& name) const {
      auto it = headers.find(name);
      return it == headers.end() ? std::string() : it->second;
    }
  };
  // A frame as read in raw mode.
  struct Frame {
    uint8_t type = 0;
    uint8_t flags = 0;
    uint32_t stream = 0;
    std::string payload;
  };

  // `raw`: no HTTP/2 session; the caller sends bytes with send_raw() and reads frames.
  // `preface`: raw mode sends the connection preface and an empty SETTINGS first.
  H2TestClient(uint16_t port, const std::string& ca_file, const std::string& sni, bool raw = false,
               bool preface = true)
      : raw_(raw) {
    // A write to a connection the router closed must fail, not kill the test (SIGPIPE).
    signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_client_method());
    static const unsigned char kAlpn[] = "\x02h2\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx_, kAlpn, sizeof kAlpn - 1);
    if (!ca_file.empty()) {
      SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    timeval tv{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    ssl_ = SSL_new(ctx_);
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) return;
    const unsigned char* p = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    alpn_.assign(reinterpret_cast<const char*>(p), len);
    connected_ = true;
    if (raw_) {
      if (!preface) return;
      send_raw(std::string(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN));
      send_raw(frame(NGHTTP2_SETTINGS, 0, 0, ""));
      return;
    }
    nghttp2_session_callbacks* cbs = nullptr;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, &on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &on_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &on_frame);
    nghttp2_session_client_new(&ng_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(ng_, NGHTTP2_FLAG_NONE, nullptr, 0);
    flush();
  }
  ~H2TestClient() {
    if (ng_ != nullptr) nghttp2_session_del(ng_);
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  H2TestClient(const H2TestClient&) = delete;
  H2TestClient& operator=(const H2TestClient&) = delete;

  bool connected() const { return connected_; }
  const std::string& alpn() const { return alpn_; }
  bool closed() const { return closed_; }
  bool goaway() const { return goaway_; }
  uint32_t goaway_code() const { return goaway_code_; }
  int32_t goaway_last_stream() const { return goaway_last_stream_; }
  // Whether stream `id` had ended when the GOAWAY arrived (false when none arrived).
  bool closed_before_goaway(int32_t id) const { return closed_at_goaway_.count(id) > 0; }

  // Submits a request without waiting; returns its stream id (negative on failure).
  int32_t submit(const std::string& method, const std::string& path,
                 const std::vector<std::pair<std::string, std::string>>& headers = {},
                 const std::string* body = nullptr) {
    std::vector<std::pair<std::string, std::string>> all = {
        {":method", method}, {":scheme", "https"}, {":authority", "a.test"}, {":path", path}};
    all.insert(all.end(), headers.begin(), headers.end());
    std::vector<nghttp2_nv> nva;
    for (auto& [n, v] : all)
      nva.push_back({reinterpret_cast<uint8_t*>(n.data()), reinterpret_cast<uint8_t*>(v.data()),
                     n.size(), v.size(), NGHTTP2_NV_FLAG_NONE});
    nghttp2_data_provider prov{};
    if (body != nullptr) {
      body_ = *body;
      body_pos_ = 0;
      prov.source.ptr = this;
      prov.read_callback = &read_body;
    }
    int32_t id = nghttp2_submit_request(ng_, nullptr, nva.data(), nva.size(),
                                        body != nullptr ? &prov : nullptr, nullptr);
    if (id > 0) responses_[id];
    flush();
    return id;
  }
  // Submits a request whose body (`body`) is held back until release_body(): the stream
  // stays open with nothing more sent, so the router has no activity from this client.
  int32_t submit_held(const std::string& method, const std::string& path, const std::string& body) {
    hold_body_ = true;
    return submit(method, path, {}, &body);
  }
  void release_body(int32_t id) {
    hold_body_ = false;
    nghttp2_session_resume_data(ng_, id);
    flush();
  }
  // Sends a request and waits (up to 20 s) for its response.
  Response request(const std::string& method, const std::string& path,
                   const std::vector<std::pair<std::string, std::string>>& headers = {},
                   const std::string* body = nullptr) {
    int32_t id = submit(method, path, headers, body);
    if (id <= 0) return {};
    run_until([&] { return responses_[id].closed; }, 20'000);
    return responses_[id];
  }
  Response& response(int32_t id) { return responses_[id]; }

  // Resets stream `id` (CANCEL), as a client that gives up waiting does.
  void reset(int32_t id) {
    nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    flush();
  }
  // Opens `n` streams and resets each at once (CANCEL), as the rapid reset attack does.
  // Returns how many went out before the router ended the connection.
  int rapid_reset(int n, const std::string& path) {
    int sent = 0;
    for (; sent < n && !closed_ && !goaway_; ++sent) {
      int32_t id = submit("GET", path);
      if (id <= 0) break;
      nghttp2_submit_rst_stream(ng_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      flush();
      pump(0);
    }
    return sent;
  }

  // Reads and handles what the router sends until `done()` or the connection ends, at
  // most `ms` milliseconds. Returns done().
  bool run_until(const std::function<bool()>& done, int ms) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!done() && !closed_ && std::chrono::steady_clock::now() < end) pump(50);
    return done();
  }

  // Raw mode: bytes straight into the TLS connection.
  void send_raw(const std::string& bytes) {
    if (SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) closed_ = true;
  }
  static std::string frame(uint8_t type, uint8_t flags, uint32_t stream,
                           const std::string& payload) {
    std::string f;
    uint32_t len = static_cast<uint32_t>(payload.size());
    f.push_back(static_cast<char>(len >> 16));
    f.push_back(static_cast<char>(len >> 8));
    f.push_back(static_cast<char>(len));
    f.push_back(static_cast<char>(type));
    f.push_back(static_cast<char>(flags));
    for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<char>((stream >> s) & 0xff));
    return f + payload;
  }
  // Raw mode: every frame the router sends until it closes the connection (at most `ms`).
  std::vector<Frame> read_frames_until_close(int ms) {
    std::string in;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!closed_ && std::chrono::steady_clock::now() < end) {
      std::string got;
      if (!read_some(50, &got)) break;
      in += got;
    }
    std::vector<Frame> out;
    size_t pos = 0;
    while (in.size() - pos >= 9) {
      auto b = [&](size_t i) { return static_cast<uint8_t>(in[pos + i]); };
      uint32_t len = (b(0) << 16) | (b(1) << 8) | b(2);
      if (in.size() - pos < 9 + len) break;
      Frame f;
      f.type = b(3);
      f.flags = b(4);
      f.stream = ((b(5) & 0x7f) << 24) | (b(6) << 16) | (b(7) << 8) | b(8);
      f.payload = in.substr(pos + 9, len);
      out.push_back(f);
      pos += 9 + len;
    }
    return out;
  }
  // The error code of the first GOAWAY among `frames`, or -1.
  static int64_t goaway_in(const std::vector<Frame>& frames) {
    for (const auto& f : frames)
      if (f.type == NGHTTP2_GOAWAY && f.payload.size() >= 8) {
        auto u = [&](size_t i) { return static_cast<uint8_t>(f.payload[i]); };
        return (static_cast<int64_t>(u(4)) << 24) | (u(5) << 16) | (u(6) << 8) | u(7);
      }
    return -1;
  }

 private:
  void flush() {
    if (ng_ == nullptr || closed_) return;
    for (;;) {
      const uint8_t* data = nullptr;
      ssize_t n = nghttp2_session_mem_send(ng_, &data);
      if (n <= 0) break;
      if (SSL_write(ssl_, data, static_cast<int>(n)) <= 0) {
        closed_ = true;
        return;
      }
    }
  }
  // Reads what is there (waiting up to `wait_ms`); false when the connection ended.
  bool read_some(int wait_ms, std::string* out) {
    if (SSL_pending(ssl_) == 0) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, wait_ms) <= 0) return true;
    }
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
      closed_ = true;
      return false;
    }
    out->assign(buf, static_cast<size_t>(n));
    return true;
  }
  void pump(int wait_ms) {
    flush();
    std::string got;
    if (!read_some(wait_ms, &got) || got.empty()) return;
    if (nghttp2_session_mem_recv(ng_, reinterpret_cast<const uint8_t*>(got.data()), got.size()) < 0)
      closed_ = true;
    flush();
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* f, const uint8_t* name, size_t nlen,
                       const uint8_t* value, size_t vlen, uint8_t, void* user) {
    auto* self = static_cast<H2TestClient*>(user);
    std::string n(reinterpret_cast<const char*>(name), nlen);
    std::string v(reinterpret_cast<const char*>(value), vlen);
    Response& r = self->responses_[f->hd.stream_id];
    if (n == ":status")
      r.status = std::stoi(v);
    else
      r.headers.emplace(n, v);
    return 0;
  }
  static int on_data(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                     void* user) {
    static_cast<H2TestClient*>(user)->responses_[id].body.append(
        reinterpret_cast<const char*>(data), len);
    return 0;
  }
  static int on_close(nghttp2_session*, int32_t id, uint32_t code, void* user) {
    Response& r = static_cast<H2TestClient*>(user)->responses_[id];
    r.closed = true;
    r.rst_code = code;
    return 0;
  }
  static int on_frame(nghttp2_session*, const nghttp2_frame* f, void* user) {
    auto* self = static_cast<H2TestClient*>(user);
    if (f->hd.type == NGHTTP2_GOAWAY && !self->goaway_) {
      self->goaway_ = true;
      self->goaway_code_ = f->goaway.error_code;
      self->goaway_last_stream_ = f->goaway.last_stream_id;
      for (const auto& [id, r] : self->responses_)
        if (r.closed) self->closed_at_goaway_.insert(id);
    }
    return 0;
  }
  static ssize_t read_body(nghttp2_session*, int32_t, uint8_t* buf, size_t len, uint32_t* flags,
                           nghttp2_data_source* src, void*) {
    auto* self = static_cast<H2TestClient*>(src->ptr);
    if (self->hold_body_) return NGHTTP2_ERR_DEFERRED;
    size_t n = std::min(len, self->body_.size() - self->body_pos_);
    std::memcpy(buf, self->body_.data() + self->body_pos_, n);
    self->body_pos_ += n;
    if (self->body_pos_ == self->body_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  bool raw_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  nghttp2_session* ng_ = nullptr;
  bool connected_ = false;
  bool closed_ = false;
  bool goaway_ = false;
  uint32_t goaway_code_ = 0;
  int32_t goaway_last_stream_ = -1;
  std::set<int32_t> closed_at_goaway_;
  std::string alpn_;
  std::map<int32_t, Response> responses_;
  std::string body_;
  size_t body_pos_ = 0;
  bool hold_body_ = false;
};

}  // namespace ferry::testing_router
