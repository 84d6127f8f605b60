// A backend for smuggling tests: it logs every request it parses off its connections
// (target and raw head) and answers each with its target as the body, keep-alive, so a
// request that reached it twice or one the router never sent shows up in the log.
//   /bad-connection  answers with "Connection: content-length" (a response the router
//                    must refuse)
//   /split-head      sends its answer's head in two writes 150 ms apart, the first ending
//                    after a complete field
#pragma once

// clang-format off
#include <utility>  // before any Boost header (Boost 1.74 quirk)
// clang-format on
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router/router.h"

namespace ferry::testing_router {

class RawBackend {
 public:
  struct Logged {
    std::string target;
    std::string head;  // the request's fields as the backend parsed them, "name: value\n"
    std::string body;
  };

  RawBackend() : acceptor_(ioc_) {
    namespace asio = boost::asio;
    asio::ip::tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept_thread_ = std::thread([this] { accept_loop(); });
  }
  ~RawBackend() {
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    boost::system::error_code ec;
    acceptor_.close(ec);
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : conns_) c.socket->shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    for (auto& c : conns_) c.thread.join();
  }

  RouteBackend route(const std::string& id, const std::string& release) const {
    return RouteBackend{id, release, "127.0.0.1", port_};
  }
  std::vector<Logged> log() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  size_t count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return log_.size();
  }
  int connections() const {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(conns_.size());
  }

 private:
  using tcp = boost::asio::ip::tcp;
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
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(Conn{socket, std::thread([this, socket] { serve(*socket); })});
    }
  }

  void serve(tcp::socket& socket) {
    namespace http = boost::beast::http;
    boost::beast::flat_buffer buf;
    for (;;) {
      boost::system::error_code ec;
      http::request_parser<http::string_body> parser;
      parser.header_limit(1u << 20);  // the router's limit is the one under test
      http::read(socket, buf, parser, ec);
      if (ec) return;
      auto req = parser.release();
      Logged l{std::string(req.target()), {}, req.body()};
      for (const auto& f : req)
        l.head += std::string(f.name_string()) + ": " + std::string(f.value()) + "\n";
      {
        std::lock_guard<std::mutex> lock(mu_);
        log_.push_back(l);
      }
      std::string res;
      if (l.target == "/split-head") {
        // The head in two writes, the first ending inside the fields.
        boost::asio::write(
            socket, boost::asio::buffer(std::string("HTTP/1.1 200 OK\r\nX-Part: one\r\n")), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        res = "X-Other: two\r\nContent-Length: 5\r\n\r\nwhole";
      } else if (l.target == "/bad-connection") {
        res = "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello";
      } else {
        res = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(l.target.size()) + "\r\n\r\n" +
              l.target;
      }
      boost::asio::write(socket, boost::asio::buffer(res), ec);
      if (ec) return;
    }
  }

  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  mutable std::mutex mu_;
  std::list<Conn> conns_;
  std::vector<Logged> log_;
};

}  // namespace ferry::testing_router
