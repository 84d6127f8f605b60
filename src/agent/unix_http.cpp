#include "agent/unix_http.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <filesystem>
#include <thread>

#include "common/http_read_limited.h"

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;
using UnixStream = beast::basic_stream<local>;

std::string unix_socket_path(std::string_view address) {
  if (!address.starts_with("unix:")) return {};
  return std::string(address.substr(5));
}

struct UnixHttpServer::Impl {
  asio::io_context io;
  local::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<bool> running{false};
  std::atomic<bool> accepting{false};
  std::atomic<int> open_connections{0};
};

UnixHttpServer::UnixHttpServer(std::string path, HttpServer& routes, size_t max_body_bytes)
    : path_(std::move(path)),
      routes_(routes),
      max_body_(max_body_bytes),
      impl_(std::make_unique<Impl>()) {}

UnixHttpServer::~UnixHttpServer() {
  stop();
}

namespace {

// The peer runs as our user (or root): anyone else is refused before a byte is read.
bool peer_allowed(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == geteuid() || cred.uid == 0;
}

HttpRequest to_request(http::request<http::string_body>& msg) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  const size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  for (auto& f : msg) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[name] = std::string(f.value());
  }
  req.body = std::move(msg.body());
  req.remote_addr = "unix";
  return req;
}

asio::awaitable<void> serve(UnixStream stream, HttpServer& routes, size_t max_body,
                            std::atomic<int>& open_connections) {
  struct Count {
    std::atomic<int>& n;
    ~Count() { --n; }
  } count{open_connections};
  beast::flat_buffer buf;
  beast::error_code ec;
  auto token = asio::redirect_error(asio::use_awaitable, ec);
  while (true) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(max_body);
    stream.expires_after(std::chrono::seconds(60));
    co_await http::async_read(stream, buf, parser, token);
    if (ec) break;
    const bool keep = parser.get().keep_alive();
    HttpRequest req = to_request(parser.get());
    HttpResponse resp = routes.dispatch(req);
    http::response<http::string_body> out;
    out.result(static_cast<http::status>(resp.status));
    out.version(11);
    out.set(http::field::server, "ferry-agent");
    out.set(http::field::content_type, resp.content_type);
    for (auto& [k, v] : resp.headers) out.set(k, v);
    out.body() = std::move(resp.body);
    out.keep_alive(keep);
    out.prepare_payload();
    stream.expires_after(std::chrono::seconds(10));
    co_await http::async_write(stream, out, token);
    if (ec || !keep) break;
  }
  stream.socket().shutdown(local::socket::shutdown_both, ec);
}

asio::awaitable<void> accept_loop(UnixHttpServer::Impl& impl, HttpServer& routes, size_t max_body) {
  while (impl.running && impl.accepting) {
    beast::error_code ec;
    local::socket sock(impl.io);
    co_await impl.acceptor.async_accept(sock, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!impl.running || !impl.accepting || ec == asio::error::operation_aborted) co_return;
      continue;
    }
    if (!peer_allowed(sock.native_handle())) continue;  // closed as it goes out of scope
    ++impl.open_connections;
    asio::co_spawn(impl.io,
                   serve(UnixStream(std::move(sock)), routes, max_body, impl.open_connections),
                   asio::detached);
  }
}

}  // namespace

Status UnixHttpServer::start(int inherited_fd) {
  sockaddr_un probe{};
  if (path_.empty() || path_.size() >= sizeof probe.sun_path) {
    if (inherited_fd >= 0) close(inherited_fd);
    return invalid_argument("agent socket path '" + path_ + "' must be 1-" +
                            std::to_string(sizeof probe.sun_path - 1) + " bytes");
  }
  beast::error_code ec;
  if (inherited_fd >= 0) {
    // Only a listening socket bound at our path is served; anything else is closed and a
    // fresh socket bound.
    sockaddr_un bound{};
    socklen_t len = sizeof bound;
    int listening = 0;
    socklen_t ll = sizeof listening;
    const bool usable = getsockname(inherited_fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0 &&
                        bound.sun_family == AF_UNIX && path_ == bound.sun_path &&
                        getsockopt(inherited_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) == 0 &&
                        listening;
    if (usable) impl_->acceptor.assign(local(), inherited_fd, ec);
    if (!usable || ec) {
      close(inherited_fd);
      ec.clear();
      impl_->acceptor = local::acceptor(impl_->io);
    }
  }
  if (!impl_->acceptor.is_open()) {
    std::error_code fec;
    // A socket file left by an agent that died is replaced; anything else is not ours.
    struct stat st {};
    if (lstat(path_.c_str(), &st) == 0) {
      if (!S_ISSOCK(st.st_mode))
        return failed_precondition(path_ +
                                   " exists and is not a socket; remove it or choose "
                                   "another --listen path");
      std::filesystem::remove(path_, fec);
    }
    impl_->acceptor.open(local(), ec);
    // Created 0600: the umask is process-wide, so the mode is set right after bind instead,
    // inside a data dir that is 0700 already.
    if (!ec) impl_->acceptor.bind(local::endpoint(path_), ec);
    if (!ec && chmod(path_.c_str(), 0600) != 0)
      ec = beast::error_code(errno, beast::system_category());
    if (!ec) impl_->acceptor.listen(64, ec);
    if (ec) {
      impl_->acceptor.close(ec);
      return unavailable("agent API cannot listen on unix:" + path_ + ": " + ec.message());
    }
  }
  impl_->accepting = true;
  impl_->running = true;
  asio::co_spawn(impl_->io, accept_loop(*impl_, routes_, max_body_), asio::detached);
  for (int i = 0; i < 2; ++i) impl_->threads.emplace_back([this] { impl_->io.run(); });
  return Status::Ok();
}

void UnixHttpServer::stop(bool remove_file) {
  if (!impl_->running.exchange(false)) return;
  asio::post(impl_->io, [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
  });
  impl_->io.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  std::error_code fec;
  if (remove_file) std::filesystem::remove(path_, fec);
}

int UnixHttpServer::pause(int wait_ms) {
  if (!impl_->running) return 0;
  asio::post(impl_->io, [this] {
    impl_->accepting = false;
    beast::error_code ec;
    impl_->acceptor.cancel(ec);
  });
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  while (impl_->open_connections.load() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return impl_->open_connections.load();
}

void UnixHttpServer::resume() {
  if (!impl_->running) return;
  asio::post(impl_->io, [this] {
    if (impl_->accepting || !impl_->acceptor.is_open()) return;
    impl_->accepting = true;
    asio::co_spawn(impl_->io, accept_loop(*impl_, routes_, max_body_), asio::detached);
  });
}

int UnixHttpServer::duplicate_listener() const {
  if (!impl_->running || !impl_->acceptor.is_open()) return -1;
  return fcntl(impl_->acceptor.native_handle(), F_DUPFD_CLOEXEC, 0);
}

Result<HttpResponse> unix_http_request(
    const std::string& path, std::string_view method, std::string_view target,
    const std::vector<std::pair<std::string, std::string>>& headers, std::string_view body,
    int timeout_ms, size_t max_response_bytes) {
  asio::io_context io;
  UnixStream stream(io);
  beast::error_code ec;
  const std::string where = "unix:" + path;
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  stream.async_connect(local::endpoint(path), [&](beast::error_code e) { ec = e; });
  io.run();
  if (ec) {
    if (ec == beast::error::timeout)
      return deadline_exceeded("connecting to " + where + " timed out");
    return unavailable("cannot connect to " + where + ": " + ec.message());
  }
  http::request<http::string_body> req{http::string_to_verb(method), std::string(target), 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::user_agent, "ferry");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.set(http::field::content_type, "application/json");
    req.body() = std::string(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
  io.restart();
  io.run();
  if (ec) return unavailable("sending to " + where + " failed: " + ec.message());
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  const LimitedRead read = read_limited_response(
      stream, buf, parser, max_response_bytes,
      [&] {
        io.restart();
        io.run();
      },
      &ec);
  if (read == LimitedRead::kTooLarge) return answer_over_limit(where, max_response_bytes);
  if (ec == beast::error::timeout)
    return deadline_exceeded(std::string(method) + " " + std::string(target) + " to " + where +
                             " timed out after " + std::to_string(timeout_ms) + " ms");
  if (ec) return unavailable("reading from " + where + " failed: " + ec.message());
  auto& msg = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(msg.result_int());
  out.content_type = std::string(msg[http::field::content_type]);
  out.body = std::move(msg.body());
  return out;
}

}  // namespace ferry
