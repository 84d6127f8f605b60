// HttpServer: a small HTTP/1.1 server for the control-plane and agent APIs.
// One thread per connection (the APIs see few clients; a stream such as SSE may hold
// its thread), bounded by max_connections. Limits on header size, body size and read
// time are enforced before a handler runs. Routes match "/api/v1/apps/{app}" patterns.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http_types.h"
#include "common/status.h"

namespace ferry {

class TlsContext;  // common/tls.h

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free port (see HttpServer::port())
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 4 * 1024 * 1024;
  int read_timeout_ms = 10'000;  // a whole request must arrive within this
  int idle_timeout_ms = 60'000;  // keep-alive connections idle longer are closed
  size_t max_connections = 256;
  // Set: every connection is TLS with this (server-role) context; a client that fails the
  // handshake (no certificate, another CA, a revoked one) gets no HTTP answer at all. The
  // peer certificate's common name is in HttpRequest::attrs["tls_peer"]. The revocation
  // list is checked again before every request of a kept-alive connection: a certificate
  // revoked after the handshake gets no further answer (the connection is closed).
  std::shared_ptr<TlsContext> tls;
};

using HttpHandler = std::function<HttpResponse(HttpRequest&)>;
// Runs before routing; returning a response short-circuits (auth, rate limits).
using HttpMiddleware = std::function<std::optional<HttpResponse>(HttpRequest&)>;
// Sees every finished request (access log, metrics).
using HttpObserver = std::function<void(const HttpRequest&, const HttpResponse&, double ms)>;

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes must be added before start(). `pattern` segments in braces are captured.
  void route(std::string method, std::string pattern, HttpHandler handler);
  // A handler for requests no route matched (e.g. static dashboard assets).
  void fallback(HttpHandler handler);
  void use(HttpMiddleware middleware);
  void observe(HttpObserver observer);

  // Binds and starts accepting; an error names the address that could not be bound.
  // `inherited_fd`: a listening socket handed over by the previous process (the agent's
  // hot restart, agent/handoff.h), owned from here on: served when it is a listening TCP
  // socket bound to exactly host:port, else closed and the address bound afresh.
  Status start(int inherited_fd = -1);
  // Stops accepting, closes connections and joins every thread.
  void stop();
  // Hot restart: stops taking connections from the listening socket (new ones wait in
  // its backlog, none is refused), answers the connections already open with
  // `Connection: close`, and waits up to `wait_ms` for them to end; returns how many are
  // still open. resume() accepts again (a failed handoff).
  int pause(int wait_ms);
  void resume();
  // A close-on-exec duplicate of the listening socket for the next process (the caller
  // owns it); -1 when not listening.
  int duplicate_listener() const;
  // Whether start() served on the inherited socket (rather than binding afresh).
  bool adopted_listener() const { return adopted_; }
  uint16_t port() const { return port_; }
  std::string address() const;

  // Routing and middleware without a socket (tests, and the server itself).
  HttpResponse dispatch(HttpRequest& req);

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    HttpHandler handler;
  };
  struct Impl;

  void accept_loop();
  void accept_next();  // on the accept thread
  void serve(int fd, std::string remote);
  template <class Stream, class Ioc>
  void serve_loop(Stream& stream, Ioc& ioc, const std::string& remote, const std::string& peer,
                  const std::string& serial);

  HttpServerOptions opts_;
  std::vector<Route> routes_;
  HttpHandler fallback_;
  std::vector<HttpMiddleware> middleware_;
  std::vector<HttpObserver> observers_;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> running_{false};
  std::atomic<bool> paused_{false};
  bool adopted_ = false;
  std::atomic<uint16_t> port_{0};
  std::thread acceptor_;
  std::mutex conn_mu_;
  struct Conn {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::list<Conn> conns_;
  std::atomic<size_t> active_{0};
};

}  // namespace ferry
