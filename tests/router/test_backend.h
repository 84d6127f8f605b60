// Test helpers for the router: a small HTTP/1.1 backend (thread per connection, Beast)
// with endpoints for the behaviours under test, and a keep-alive client.
//   GET  /any            200, body = backend name; echoes what it saw in x-seen-* headers
//   GET  /slow?ms=N      answers after N ms
//   GET  /status/N       answers with status N
//   GET  /rude           answers keep-alive, then closes the connection anyway
//   GET  /sse            chunked event stream: one event, waits for release_sse(), one more
//   POST /echo           answers with the request body
//   GET  /headers        answers with the request's header fields, one per line
//   GET  /ws             websocket echo
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "router/router.h"

namespace ferry::testing_router {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

class TestBackend {
 public:
  explicit TestBackend(std::string name) : name_(std::move(name)), acceptor_(ioc_) {
    tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~TestBackend() { stop(); }

  void stop() {
    if (stopped_.exchange(true)) return;
    release_sse();
    boost::system::error_code ec;
    // close() alone does not wake a thread blocked in accept(); shutdown() does.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    acceptor_.close(ec);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) {
      c.socket->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& c : conns_) c.thread.join();
    conns_.clear();
  }

  uint16_t port() const { return port_; }
  const std::string& name() const { return name_; }
  int requests() const { return requests_.load(); }
  // Every later request is answered with `status` (a bad release); 0 serves normally.
  void fail_with(int status) { fail_status_ = status; }
  int connections() const { return connections_.load(); }
  RouteBackend route(const std::string& id, const std::string& release) const {
    return RouteBackend{id, release, "127.0.0.1", port_};
  }
  // Lets a waiting /sse response send its last event and finish.
  void release_sse() {
    std::lock_guard<std::mutex> lock(sse_mu_);
    sse_released_ = true;
    sse_cv_.notify_all();
  }
  bool sse_finished() const { return sse_finished_.load(); }

 private:
  struct Conn {
    std::shared_ptr<tcp::socket> socket;
    std::thread thread;
  };

  void accept_loop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec) return;
      ++connections_;
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      conns_.push_back(Conn{socket, std::thread([this, socket] {
                              serve(*socket);
                              boost::system::error_code ignored;
                              socket->shutdown(tcp::socket::shutdown_both, ignored);
                            })});
    }
  }

  static std::string query_value(const std::string& target, const std::string& key) {
    auto q = target.find('?');
    if (q == std::string::npos) return {};
    auto p = target.find(key + "=", q);
    if (p == std::string::npos) return {};
    p += key.size() + 1;
    return target.substr(p, target.find('&', p) - p);
  }

  void serve(tcp::socket& socket) {
    beast::flat_buffer buf;
    boost::system::error_code ec;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256u << 20);
      parser.header_limit(1u << 20);  // the router's limit is the one under test
      http::read(socket, buf, parser, ec);
      if (ec) return;
      auto req = parser.release();
      ++requests_;
      std::string target(req.target());
      if (target.rfind("/ws", 0) == 0 && beast::websocket::is_upgrade(req)) {
        websocket_echo(socket, std::move(req));
        return;
      }
      if (target.rfind("/sse", 0) == 0) {
        sse(socket);
        return;
      }
      http::response<http::string_body> res;
      res.version(11);
      res.result(200);
      res.set("x-backend", name_);
      res.set("x-seen-xff", std::string(req["x-forwarded-for"]));
      res.set("x-seen-request-id", std::string(req["x-request-id"]));
      res.set("x-seen-connection", std::string(req["connection"]));
      if (target.rfind("/slow", 0) == 0) {
        std::this_thread::sleep_for(
            std::chrono::milliseconds(std::stoi(query_value(target, "ms"))));
        res.body() = name_;
      } else if (target.rfind("/status/", 0) == 0) {
        res.result(std::stoi(target.substr(8)));
        res.body() = name_;
      } else if (target.rfind("/headers", 0) == 0) {
        for (const auto& f : req)
          res.body() += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
      } else if (target.rfind("/echo", 0) == 0) {
        res.body() = req.body();
      } else {
        res.body() = name_;
      }
      if (int f = fail_status_.load(); f != 0) {
        res.result(f);
        res.body() = name_ + " failed";
      }
      res.keep_alive(req.keep_alive());
      res.prepare_payload();
      http::write(socket, res, ec);
      // /rude closes a connection it just promised to keep open.
      if (ec || !req.keep_alive() || target.rfind("/rude", 0) == 0) return;
    }
  }

  void sse(tcp::socket& socket) {
    boost::system::error_code ec;
    std::string head =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    std::string first = "data: first\n\n";
    std::string chunk = to_hex(first.size()) + "\r\n" + first + "\r\n";
    asio::write(socket, asio::buffer(head + chunk), ec);
    {
      std::unique_lock<std::mutex> lock(sse_mu_);
      sse_cv_.wait_for(lock, std::chrono::seconds(10), [&] { return sse_released_; });
    }
    std::string last = "data: last\n\n";
    chunk = to_hex(last.size()) + "\r\n" + last + "\r\n0\r\n\r\n";
    asio::write(socket, asio::buffer(chunk), ec);
    sse_finished_ = true;
  }

  static std::string to_hex(size_t n) {
    char b[32];
    snprintf(b, sizeof b, "%zx", n);
    return b;
  }

  void websocket_echo(tcp::socket& socket, http::request<http::string_body> req) {
    beast::websocket::stream<tcp::socket&> ws(socket);
    boost::system::error_code ec;
    ws.accept(req, ec);
    if (ec) return;
    for (;;) {
      beast::flat_buffer msg;
      ws.read(msg, ec);
      if (ec) return;
      ws.text(ws.got_text());
      ws.write(msg.data(), ec);
      if (ec) return;
    }
  }

  std::string name_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<Conn> conns_;
  std::atomic<bool> stopped_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> fail_status_{0};
  std::atomic<int> connections_{0};
  std::mutex sse_mu_;
  std::condition_variable sse_cv_;
  bool sse_released_ = false;
  std::atomic<bool> sse_finished_{false};
};

// A keep-alive HTTP/1.1 client for the router (connects again after the router closed).
class TestClient {
 public:
  explicit TestClient(uint16_t port) : port_(port), socket_(ioc_) {}

  http::response<http::string_body> request(
      http::verb method, const std::string& target,
      std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = {}) {
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    if (!body.empty() || method == http::verb::post) {
      req.body() = std::move(body);
      req.prepare_payload();
    }
    // No retry here: a transport failure must show up in the test as status 599.
    boost::system::error_code ec;
    if (!socket_.is_open())
      socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
    if (!ec) http::write(socket_, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    if (method == http::verb::head) parser.skip(true);
    if (!ec) http::read(socket_, buf_, parser, ec);
    if (!ec) {
      auto res = parser.release();
      if (!res.keep_alive()) close();
      return res;
    }
    close();
    http::response<http::string_body> failed;
    failed.result(599);  // transport failure: no answer at all
    return failed;
  }

  http::response<http::string_body> get(const std::string& target,
                                        std::vector<std::pair<std::string, std::string>> h = {}) {
    return request(http::verb::get, target, std::move(h));
  }

  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
    buf_.clear();
  }

 private:
  uint16_t port_;
  asio::io_context ioc_;
  tcp::socket socket_;
  beast::flat_buffer buf_;
};

// A port on 127.0.0.1 where nothing listens (bound, then closed).
// Which release answered: the router names it in x-ferry-release.
inline std::string served_by(const http::response<http::string_body>& r) {
  return std::string(r["x-ferry-release"]);
}

// The router key and agent app name of the tests that sign pin tokens and affinity cookies.
inline constexpr const char* kRouterKey = "0123456789abcdef0123456789abcdef";
inline constexpr const char* kRouterApp = "web.production";

inline uint16_t dead_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t p = a.local_endpoint().port();
  a.close();
  return p;
}

// Reads from `s` until the peer closes it (or an error); what was read.
inline std::string read_to_eof(asio::ip::tcp::socket& s) {
  std::string got;
  char buf[4096];
  for (;;) {
    boost::system::error_code ec;
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) break;
    got.append(buf, n);
  }
  return got;
}

}  // namespace ferry::testing_router
