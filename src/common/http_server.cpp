#include "common/http_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstring>
#include <future>

#include "common/crypto.h"
#include "common/tls.h"

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct HttpServer::Impl {
  asio::io_context accept_ioc;
  tcp::acceptor acceptor{accept_ioc};
  // Keeps the accept thread's run() going while paused (no accept pending).
  asio::executor_work_guard<asio::io_context::executor_type> work{accept_ioc.get_executor()};
  bool accepting = false;  // on the accept thread
};

namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

// Runs the pending async operation on `ioc` until its handler set `done` (or the
// stream's deadline fired), giving a blocking call with a timeout. When the server
// stops, the operation is cancelled so the connection thread ends promptly.
void run_until_done(asio::io_context& ioc, beast::tcp_stream& s, const bool& done,
                    const std::atomic<bool>& running) {
  ioc.restart();
  while (!done) {
    ioc.run_for(std::chrono::milliseconds(100));
    if (!running && !done) s.cancel();
    if (ioc.stopped() && !done) ioc.restart();
  }
}

// The wait for the next request of a kept-alive connection: as run_until_done, and while the
// server is paused for a hot restart a connection on which nothing of a next request has
// arrived is ended (the client's next call reaches the next process), so idle kept-alive
// connections (the control plane keeps some to every agent) do not hold up the handoff.
// `nothing_yet()`: no byte of the next request arrived.
template <class NothingYet>
void run_until_next_request(asio::io_context& ioc, beast::tcp_stream& s, const bool& done,
                            const std::atomic<bool>& running, const std::atomic<bool>& paused,
                            NothingYet nothing_yet) {
  ioc.restart();
  while (!done) {
    ioc.run_for(std::chrono::milliseconds(100));
    if (!done && (!running || (paused && nothing_yet()))) s.cancel();
    if (ioc.stopped() && !done) ioc.restart();
  }
}

template <class Stream>
class BeastStreamWriter final : public StreamWriter {
 public:
  BeastStreamWriter(Stream& s, asio::io_context& ioc, std::atomic<bool>& running)
      : s_(s), ioc_(ioc), running_(running) {}
  // The last chunk: tells the client the body is complete.
  void finish() { send("0\r\n\r\n"); }

  bool write(std::string_view chunk) override {
    if (!running_ || chunk.empty()) return running_;
    // chunked transfer coding: size in hex, CRLF, data, CRLF
    std::string frame = fmt_size(chunk.size());
    frame += "\r\n";
    frame.append(chunk);
    frame += "\r\n";
    return send(frame);
  }

 private:
  bool send(const std::string& frame) {
    beast::error_code ec;
    bool done = false;
    beast::get_lowest_layer(s_).expires_after(std::chrono::seconds(10));
    asio::async_write(s_, asio::buffer(frame), [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    run_until_done(ioc_, beast::get_lowest_layer(s_), done, running_);
    return !ec && running_;
  }

  static std::string fmt_size(size_t n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%zx", n);
    return buf;
  }
  Stream& s_;
  asio::io_context& ioc_;
  std::atomic<bool>& running_;
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options)
    : opts_(std::move(options)), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(std::string method, std::string pattern, HttpHandler handler) {
  routes_.push_back({std::move(method), split_path(pattern), std::move(handler)});
}
void HttpServer::fallback(HttpHandler handler) {
  fallback_ = std::move(handler);
}
void HttpServer::use(HttpMiddleware m) {
  middleware_.push_back(std::move(m));
}
void HttpServer::observe(HttpObserver o) {
  observers_.push_back(std::move(o));
}

std::string HttpServer::address() const {
  const bool v6 = opts_.host.find(':') != std::string::npos;
  return (v6 ? "[" + opts_.host + "]" : opts_.host) + ":" + std::to_string(port_);
}

Status HttpServer::start(int inherited_fd) {
  beast::error_code ec;
  auto addr = asio::ip::make_address(opts_.host, ec);
  if (ec) {
    if (inherited_fd >= 0) close(inherited_fd);
    return invalid_argument("listen address '" + opts_.host + "' is not an IP address");
  }
  tcp::endpoint ep(addr, opts_.port);
  auto& acc = impl_->acceptor;
  if (inherited_fd >= 0) {
    // Only a listening socket bound to our address is served; anything else (a socket of
    // another address, not listening, not TCP) is closed and the address bound afresh.
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    int listening = 0;
    socklen_t ll = sizeof listening;
    bool usable = getsockname(inherited_fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0 &&
                  getsockopt(inherited_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) == 0 &&
                  listening != 0 && (bound.ss_family == AF_INET || bound.ss_family == AF_INET6);
    if (usable) {
      tcp::endpoint got;
      std::memcpy(got.data(), &bound, std::min<size_t>(len, sizeof bound));
      got.resize(len);
      usable = got.address() == ep.address() && (opts_.port == 0 || got.port() == opts_.port);
    }
    if (usable) acc.assign(ep.protocol(), inherited_fd, ec);
    if (!usable || ec) {
      close(inherited_fd);
      ec.clear();
      acc = tcp::acceptor(impl_->accept_ioc);
    } else {
      adopted_ = true;
    }
  }
  if (!acc.is_open()) {
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      beast::error_code ignored;
      acc.close(ignored);
      return unavailable("cannot listen on " + opts_.host + ":" + std::to_string(opts_.port) +
                         ": " + ec.message());
    }
  }
  port_ = acc.local_endpoint().port();
  running_ = true;
  acceptor_ = std::thread([this] { accept_loop(); });
  return Status::Ok();
}

void HttpServer::accept_loop() {
  impl_->accepting = true;
  accept_next();
  impl_->accept_ioc.run();
}

void HttpServer::accept_next() {
  auto& acc = impl_->acceptor;
  acc.async_accept([this](beast::error_code ec, tcp::socket sock) {
    if (!running_) return;
    if (ec == asio::error::operation_aborted && !impl_->accepting) return;  // paused
    if (ec) return;
    if (active_ >= opts_.max_connections) {
      sock.close();  // over the limit: refuse rather than queue without bound
    } else {
      // Accepted (also one that completed just as pause() cancelled): it is served.
      std::string remote = sock.remote_endpoint(ec).address().to_string();
      int fd = sock.release(ec);
      std::lock_guard lock(conn_mu_);
      // reap finished threads so the list stays bounded
      for (auto it = conns_.begin(); it != conns_.end();) {
        if (*it->done) {
          it->thread.join();
          it = conns_.erase(it);
        } else {
          ++it;
        }
      }
      ++active_;
      auto done = std::make_shared<std::atomic<bool>>(false);
      conns_.push_back({std::thread([this, fd, remote, done] {
                          serve(fd, remote);
                          --active_;
                          *done = true;
                        }),
                        done});
    }
    if (impl_->accepting) accept_next();
  });
}

int HttpServer::pause(int wait_ms) {
  if (!running_) return 0;
  paused_ = true;
  // The accept thread stops accepting; pause() returns once it has (a connection that
  // arrives after that waits in the backlog), or after wait_ms at the latest.
  auto stopped = std::make_shared<std::promise<void>>();
  auto accepting_stopped = stopped->get_future();
  asio::post(impl_->accept_ioc, [this, stopped] {
    impl_->accepting = false;
    beast::error_code ec;
    impl_->acceptor.cancel(ec);
    stopped->set_value();
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  accepting_stopped.wait_until(until);
  while (active_.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return static_cast<int>(active_.load());
}

void HttpServer::resume() {
  if (!running_) return;
  paused_ = false;
  asio::post(impl_->accept_ioc, [this] {
    if (impl_->accepting || !impl_->acceptor.is_open()) return;
    impl_->accepting = true;
    accept_next();
  });
}

int HttpServer::duplicate_listener() const {
  if (!running_ || !impl_->acceptor.is_open()) return -1;
  return fcntl(impl_->acceptor.native_handle(), F_DUPFD_CLOEXEC, 0);
}

void HttpServer::stop() {
  if (!running_.exchange(false)) return;
  impl_->work.reset();
  impl_->accept_ioc.stop();
  if (acceptor_.joinable()) acceptor_.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);  // the accept thread is gone, so closing here is safe
  std::list<Conn> threads;
  {
    std::lock_guard lock(conn_mu_);
    threads.swap(conns_);
  }
  for (auto& c : threads)
    if (c.thread.joinable()) c.thread.join();
}

HttpResponse HttpServer::dispatch(HttpRequest& req) {
  // One spelling per resource: "//api", "/./api" or "/x/../api" would reach a route while
  // a middleware that looks at the path prefix sees something else.
  if (req.path.empty() || req.path[0] != '/' || req.path.find("//") != std::string::npos ||
      req.path.find("/./") != std::string::npos || req.path.find("/../") != std::string::npos ||
      req.path.ends_with("/.") || req.path.ends_with("/.."))
    return HttpResponse::error(invalid_argument("request path is not in canonical form"));
  for (auto& m : middleware_)
    if (auto r = m(req)) return *r;
  const auto segs = split_path(req.path);
  bool path_matched = false;
  for (auto& route : routes_) {
    if (route.segments.size() != segs.size()) continue;
    std::map<std::string, std::string> params;
    bool match = true;
    for (size_t i = 0; i < segs.size() && match; ++i) {
      const auto& p = route.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}')
        params[p.substr(1, p.size() - 2)] = url_decode(segs[i]);
      else
        match = p == segs[i];
    }
    if (!match) continue;
    path_matched = true;
    if (route.method != req.method) continue;
    req.params = std::move(params);
    try {
      return route.handler(req);
    } catch (const std::exception& e) {
      // The exception's text is for the server's log (observers see it in attrs), not
      // for the client: it can quote library internals.
      req.attrs["internal_error"] = std::string(e.what()).substr(0, 1000);
      return HttpResponse::error(internal_error("internal error handling " + req.method + " " +
                                                req.path.substr(0, 200) +
                                                "; the server log has the details"));
    }
  }
  if (path_matched) {
    HttpResponse r = HttpResponse::error(
        Status(Code::kInvalidArgument, "method " + req.method + " is not allowed on " + req.path));
    r.status = 405;
    return r;
  }
  if (fallback_) return fallback_(req);
  return HttpResponse::error(not_found("no route for " + req.method + " " + req.path));
}

void HttpServer::serve(int fd, std::string remote) {
  asio::io_context ioc;
  beast::error_code ec;
  tcp::socket sock(ioc);
  sock.assign(remote.find(':') != std::string::npos ? tcp::v6() : tcp::v4(), fd, ec);
  beast::tcp_stream stream(std::move(sock));
  if (!opts_.tls) {
    serve_loop(stream, ioc, remote, "", "");
  } else {
    beast::ssl_stream<beast::tcp_stream> tls(std::move(stream), opts_.tls->native());
    beast::get_lowest_layer(tls).expires_after(std::chrono::milliseconds(opts_.read_timeout_ms));
    bool done = false;
    tls.async_handshake(asio::ssl::stream_base::server, [&](beast::error_code e) {
      ec = e;
      done = true;
    });
    run_until_done(ioc, beast::get_lowest_layer(tls), done, running_);
    std::string peer;
    const std::string serial = ec ? "" : TlsContext::peer_serial(tls.native_handle());
    if (!ec)
      if (X509* cert = SSL_get1_peer_certificate(tls.native_handle())) {
        char cn[256] = {};
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) >
            0)
          peer = cn;
        X509_free(cert);
      }
    if (!ec) serve_loop(tls, ioc, remote, peer, serial);
    beast::get_lowest_layer(tls).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(tls).close();
  }
}

template <class Stream, class Ioc>
void HttpServer::serve_loop(Stream& stream, Ioc& ioc, const std::string& remote,
                            const std::string& peer, const std::string& serial) {
  beast::error_code ec;
  beast::flat_buffer buf;
  bool first = true;
  while (running_ && !ec) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts_.max_header_bytes));
    parser.body_limit(opts_.max_body_bytes);
    beast::get_lowest_layer(stream).expires_after(
        std::chrono::milliseconds(first ? opts_.read_timeout_ms : opts_.idle_timeout_ms));
    bool done = false;
    http::async_read(stream, buf, parser, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
    if (first)
      run_until_done(ioc, beast::get_lowest_layer(stream), done, running_);
    else
      run_until_next_request(ioc, beast::get_lowest_layer(stream), done, running_, paused_, [&] {
        // The parser takes nothing of a header until all of it is there.
        return buf.size() == 0 && !parser.is_header_done();
      });
    first = false;
    HttpResponse resp;
    HttpRequest req;
    const auto t0 = std::chrono::steady_clock::now();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      resp = HttpResponse::error(resource_exhausted(
          ec == http::error::body_limit
              ? "request body over the limit of " + std::to_string(opts_.max_body_bytes) + " bytes"
              : "request header over the limit of " + std::to_string(opts_.max_header_bytes) +
                    " bytes"));
      resp.headers.emplace_back("Connection", "close");
    } else if (ec) {
      break;  // closed, timed out or malformed: nothing to answer
    } else if (opts_.tls && opts_.tls->revoked(serial)) {
      // Revoked since this connection's handshake: nothing more is served on it.
      break;
    } else {
      auto& msg = parser.get();
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      size_t q = req.target.find('?');
      req.path = req.target.substr(0, q);
      if (q != std::string::npos)
        req.query = parse_query(std::string_view(req.target).substr(q + 1));
      bool duplicate_auth = false;
      for (auto& f : msg) {
        std::string name(f.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        // Two Authorization headers: which one a proxy in front checked and which one we
        // would read could differ. Refused, never resolved by picking one.
        if (name == "authorization" && req.headers.count(name)) duplicate_auth = true;
        req.headers[name] = std::string(f.value());
      }
      req.body = std::move(msg.body());
      req.remote_addr = remote;
      if (!peer.empty()) req.attrs["tls_peer"] = peer;
      req.request_id = req.header("x-request-id");
      if (req.request_id.empty() || req.request_id.size() > 128) req.request_id = random_id("", 8);
      if (duplicate_auth) {
        resp = HttpResponse::error(
            invalid_argument("more than one Authorization header: send exactly one"));
        resp.headers.emplace_back("Connection", "close");
      } else {
        resp = dispatch(req);
      }
    }
    // Paused for a hot restart: the connection ends after this answer, so the client's
    // next call reaches the next process.
    const bool keep_alive = !ec && parser.get().keep_alive() && !resp.stream && !paused_;
    http::response<http::string_body> out;
    out.result(static_cast<http::status>(resp.status));
    out.version(11);
    out.set(http::field::server, "ferry");
    out.set(http::field::content_type, resp.content_type);
    out.set("X-Request-Id", req.request_id);
    for (auto& [k, v] : resp.headers) out.set(k, v);
    out.keep_alive(keep_alive);
    beast::error_code wec;
    if (resp.stream) {
      out.chunked(true);
      out.set(http::field::cache_control, "no-cache");
      http::response_serializer<http::string_body> sr(out);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
      done = false;
      http::async_write_header(stream, sr, [&](beast::error_code e, size_t) {
        wec = e;
        done = true;
      });
      run_until_done(ioc, beast::get_lowest_layer(stream), done, running_);
      if (!wec) {
        BeastStreamWriter<Stream> w(stream, ioc, running_);
        resp.stream(w);
        w.finish();
      }
      for (auto& o : observers_)
        o(req, resp,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      break;
    }
    out.body() = std::move(resp.body);
    out.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
    done = false;
    http::async_write(stream, out, [&](beast::error_code e, size_t) {
      wec = e;
      done = true;
    });
    run_until_done(ioc, beast::get_lowest_layer(stream), done, running_);
    for (auto& o : observers_)
      o(req, resp,
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (wec || !keep_alive) break;
  }
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
  }
}

}  // namespace ferry
