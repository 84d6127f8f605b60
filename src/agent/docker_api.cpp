#include "agent/docker_api.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdlib>
#include <limits>

namespace ferry {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using DockerSocket = asio::local::stream_protocol;
using DockerStream = beast::basic_stream<DockerSocket>;

namespace {

constexpr std::string_view kApiPrefix = "/v1.41";
constexpr size_t kMaxResponseBytes = 16u << 20;

// Connects within `timeout_ms`; the error tells dockerd-not-running from permission denied.
Status docker_connect(asio::io_context& io, DockerStream& stream, const std::string& path,
                      int timeout_ms) {
  beast::error_code ec;
  stream.expires_after(std::chrono::milliseconds(timeout_ms));
  stream.async_connect(DockerSocket::endpoint(path), [&](beast::error_code e) { ec = e; });
  io.run();
  if (!ec) return Status::Ok();
  if (ec == beast::error::timeout)
    return deadline_exceeded("connecting to dockerd at " + path + " timed out");
  namespace errc = boost::system::errc;
  if (ec == errc::no_such_file_or_directory || ec == errc::connection_refused)
    return unavailable("dockerd is not running: nothing listens on " + path +
                       " (start dockerd, or point DOCKER_HOST=unix://PATH at its socket)");
  if (ec == errc::permission_denied || ec == errc::operation_not_permitted)
    return unavailable("permission denied on dockerd's socket " + path +
                       ": run the agent as root or as a member of the socket's group (docker)");
  return unavailable("cannot connect to dockerd at " + path + ": " + ec.message());
}

}  // namespace

DockerApi::DockerApi(std::string socket_path, int timeout_ms)
    : socket_(std::move(socket_path)), timeout_ms_(timeout_ms) {}

Result<std::string> DockerApi::socket_from_env() {
  const char* host = std::getenv("DOCKER_HOST");
  if (host == nullptr || *host == '\0') return std::string("/var/run/docker.sock");
  const std::string_view h(host);
  if (h.starts_with("unix://") && h.size() > 7) return std::string(h.substr(7));
  return invalid_argument("DOCKER_HOST=" + std::string(h.substr(0, 200)) +
                          ": the agent reaches dockerd on its own host only, as unix://PATH");
}

Result<DockerResponse> DockerApi::call(std::string_view method, std::string_view target,
                                       std::string_view body, std::string_view content_type,
                                       int timeout_ms) const {
  if (timeout_ms <= 0) timeout_ms = timeout_ms_;
  asio::io_context io;
  DockerStream stream(io);
  if (Status s = docker_connect(io, stream, socket_, timeout_ms); !s.ok()) return s;
  http::request<http::string_body> req{http::string_to_verb(method),
                                       std::string(kApiPrefix) + std::string(target), 11};
  req.set(http::field::host, "docker");
  req.set(http::field::user_agent, "ferry");
  if (!body.empty() || method == "POST") {
    req.set(http::field::content_type, content_type);
    req.body() = std::string(body);
  }
  req.keep_alive(false);
  req.prepare_payload();
  beast::error_code ec;
  http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
  io.restart();
  io.run();
  if (ec) return unavailable("sending to dockerd at " + socket_ + " failed: " + ec.message());
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBytes);
  http::async_read(stream, buf, parser, [&](beast::error_code e, size_t) { ec = e; });
  io.restart();
  io.run();
  const std::string what = std::string(method) + " " + std::string(target);
  if (ec == beast::error::timeout)
    return deadline_exceeded("dockerd did not answer " + what + " within " +
                             std::to_string(timeout_ms) + " ms");
  if (ec) return unavailable("reading dockerd's answer to " + what + " failed: " + ec.message());
  return DockerResponse{static_cast<int>(parser.get().result_int()),
                        std::move(parser.get().body())};
}

Result<Json> DockerApi::json(std::string_view method, std::string_view target,
                             const std::string& what, std::string_view body) const {
  auto r = call(method, target, body);
  if (!r.ok()) return r.status().with_context(what);
  if (r->status == 404) return not_found(what + ": " + docker_message(*r));
  if (r->status < 200 || r->status > 299)
    return Status(
        r->status == 409 ? Code::kConflict : Code::kUnavailable,
        what + ": dockerd answered " + std::to_string(r->status) + ": " + docker_message(*r));
  if (r->body.empty()) return Json();
  return parse_json(r->body, "dockerd's answer");
}

Result<Json> DockerApi::inspect(const std::string& id) const {
  return json("GET", "/containers/" + url_encode(id) + "/json", "inspecting container " + id);
}

Status DockerApi::stream(std::string_view target,
                         const std::function<bool(std::string_view)>& on_data,
                         std::atomic<int>* fd_out) const {
  asio::io_context io;
  DockerStream stream(io);
  if (Status s = docker_connect(io, stream, socket_, timeout_ms_); !s.ok()) return s;
  if (fd_out) *fd_out = stream.socket().native_handle();
  struct ClearFd {
    std::atomic<int>* fd;
    ~ClearFd() {
      if (fd) *fd = -1;
    }
  } clear{fd_out};
  http::request<http::empty_body> req{http::verb::get,
                                      std::string(kApiPrefix) + std::string(target), 11};
  req.set(http::field::host, "docker");
  req.keep_alive(false);
  beast::error_code ec;
  http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
  io.restart();
  io.run();
  if (ec) return unavailable("sending to dockerd failed: " + ec.message());
  stream.expires_never();  // a followed log is quiet for as long as its program is
  beast::flat_buffer buf;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  http::async_read_header(stream, buf, parser, [&](beast::error_code e, size_t) { ec = e; });
  io.restart();
  io.run();
  if (ec) return unavailable("reading dockerd's answer failed: " + ec.message());
  if (parser.get().result_int() != 200)
    return unavailable("dockerd answered " + std::to_string(parser.get().result_int()) +
                       " to GET " + std::string(target));
  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some: what has arrived, not a full buffer (a followed log comes a line at a time).
    http::async_read_some(stream, buf, parser, [&](beast::error_code e, size_t) { ec = e; });
    io.restart();
    io.run();
    if (ec == http::error::need_buffer) ec = {};
    const size_t n = sizeof chunk - parser.get().body().size;
    if (n > 0 && !on_data(std::string_view(chunk, n))) return Status::Ok();
    if (ec == http::error::end_of_stream || ec == asio::error::eof) return Status::Ok();
    if (ec) return unavailable("reading from dockerd failed: " + ec.message());
  }
  return Status::Ok();
}

std::string docker_message(const DockerResponse& r) {
  if (auto j = parse_json(r.body, "dockerd's answer"); j.ok() && j->is_object())
    if (auto m = j->find("message"); m != j->end() && m->is_string()) return m->get<std::string>();
  std::string s = r.body.substr(0, 200);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

void LogDemux::feed(std::string_view data, std::string* out) {
  while (!data.empty()) {
    if (frame_left_ == 0) {
      const size_t take = std::min(sizeof header_ - header_have_, data.size());
      std::copy_n(data.begin(), take, header_ + header_have_);
      header_have_ += take;
      data.remove_prefix(take);
      if (header_have_ < sizeof header_) return;
      header_have_ = 0;
      frame_left_ = (uint32_t{header_[4]} << 24) | (uint32_t{header_[5]} << 16) |
                    (uint32_t{header_[6]} << 8) | uint32_t{header_[7]};
      continue;
    }
    const size_t take = std::min<size_t>(frame_left_, data.size());
    out->append(data.substr(0, take));
    frame_left_ -= static_cast<uint32_t>(take);
    data.remove_prefix(take);
  }
}

}  // namespace ferry
