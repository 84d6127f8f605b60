// ferry-demo-app: the web service of the demo and the e2e tests. Knobs make a release
// good or bad: a failure rate (answers 500), added latency, a slow start (health check
// fails until then) and a crash after some time. Every answer names the version.
//
//   ferry-demo-app --port 8080 --version v2 [--fail-rate 0.5] [--latency-ms 20]
//                  [--slow-start-ms 2000] [--crash-after-ms 0]
// Environment defaults: PORT, VERSION, DEMO_FAIL_RATE, DEMO_LATENCY_MS,
// DEMO_SLOW_START_MS, DEMO_CRASH_AFTER_MS, DEMO_GREETING.
#include <signal.h>

// Boost 1.74's asio needs std::exchange declared before its awaitable header.
#include <utility>
// clang-format off

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <thread>
// clang-format on

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Knobs {
  int port = 8080;
  std::string version = "dev";
  double fail_rate = 0;
  int latency_ms = 0;
  int slow_start_ms = 0;
  int crash_after_ms = 0;
  std::string greeting = "hello";
};

std::atomic<bool> g_stopping{false};
std::atomic<int> g_active{0};
const auto g_started = std::chrono::steady_clock::now();

int64_t uptime_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               g_started)
      .count();
}

std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

bool fails(double rate) {
  thread_local std::mt19937 rng(std::random_device{}());
  return rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < rate;
}

void serve(tcp::socket sock, const Knobs& k) {
  ++g_active;
  beast::flat_buffer buf;
  beast::error_code ec;
  while (!g_stopping) {
    http::request<http::string_body> req;
    http::read(sock, buf, req, ec);
    if (ec) break;
    http::response<http::string_body> res;
    res.version(11);
    res.set("X-Demo-Version", k.version);
    res.keep_alive(req.keep_alive());
    const std::string target(req.target());
    if (target == "/healthz") {
      const bool warming = uptime_ms() < k.slow_start_ms;
      res.result(warming ? http::status::service_unavailable : http::status::ok);
      res.set(http::field::content_type, "text/plain");
      res.body() = warming ? "warming up\n" : "ok\n";
    } else if (target == "/stream") {
      // Server-sent events: five ticks, 50 ms apart, each flushed on its own.
      http::response<http::empty_body> head{http::status::ok, 11};
      head.set(http::field::content_type, "text/event-stream");
      head.chunked(true);
      http::response_serializer<http::empty_body> sr{head};
      http::write_header(sock, sr, ec);
      for (int i = 0; i < 5 && !ec; ++i) {
        const std::string ev = "data: tick " + std::to_string(i) + " from " + k.version + "\n\n";
        asio::write(sock, http::make_chunk(asio::buffer(ev)), ec);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      if (!ec) asio::write(sock, http::make_chunk_last(), ec);
      if (ec || !req.keep_alive()) break;
      continue;
    } else {
      if (k.latency_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(k.latency_ms));
      if (fails(k.fail_rate)) {
        res.result(http::status::internal_server_error);
        res.body() = "{\"error\":\"injected failure\",\"version\":\"" + k.version + "\"}\n";
      } else {
        res.result(http::status::ok);
        res.body() = "{\"message\":\"" + k.greeting + "\",\"version\":\"" + k.version +
                     "\",\"path\":\"" + (target.size() > 100 ? target.substr(0, 100) : target) +
                     "\"}\n";
      }
      res.set(http::field::content_type, "application/json");
    }
    res.prepare_payload();
    http::write(sock, res, ec);
    if (ec || !res.keep_alive()) break;
  }
  sock.shutdown(tcp::socket::shutdown_send, ec);
  --g_active;
}

int parse_int(const std::string& s, const char* what) {
  try {
    return std::stoi(s);
  } catch (...) {
    std::cerr << "ferry-demo-app: " << what << " must be a number, got '" << s << "'\n";
    std::exit(2);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Knobs k;
  k.port = parse_int(env_or("PORT", "8080"), "PORT");
  k.version = env_or("VERSION", env_or("FERRY_RELEASE", "dev"));
  k.fail_rate = std::atof(env_or("DEMO_FAIL_RATE", "0").c_str());
  k.latency_ms = parse_int(env_or("DEMO_LATENCY_MS", "0"), "DEMO_LATENCY_MS");
  k.slow_start_ms = parse_int(env_or("DEMO_SLOW_START_MS", "0"), "DEMO_SLOW_START_MS");
  k.crash_after_ms = parse_int(env_or("DEMO_CRASH_AFTER_MS", "0"), "DEMO_CRASH_AFTER_MS");
  k.greeting = env_or("DEMO_GREETING", "hello");
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--port")
      k.port = parse_int(v, "--port");
    else if (f == "--version")
      k.version = v;
    else if (f == "--fail-rate")
      k.fail_rate = std::atof(v.c_str());
    else if (f == "--latency-ms")
      k.latency_ms = parse_int(v, "--latency-ms");
    else if (f == "--slow-start-ms")
      k.slow_start_ms = parse_int(v, "--slow-start-ms");
    else if (f == "--crash-after-ms")
      k.crash_after_ms = parse_int(v, "--crash-after-ms");
    else {
      std::cerr << "ferry-demo-app: unknown option " << f << "\n";
      return 2;
    }
  }
  if (k.port <= 0 || k.port > 65535 || k.fail_rate < 0 || k.fail_rate > 1) {
    std::cerr << "ferry-demo-app: --port must be 1-65535 and --fail-rate 0-1\n";
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  asio::io_context ioc;
  tcp::acceptor acc(ioc);
  beast::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(k.port));
  acc.open(ep.protocol(), ec);
  acc.set_option(asio::socket_base::reuse_address(true), ec);
  acc.bind(ep, ec);
  if (ec) {
    std::cerr << "ferry-demo-app: cannot listen on 127.0.0.1:" << k.port << ": " << ec.message()
              << "\n";
    return 1;
  }
  acc.listen(asio::socket_base::max_listen_connections, ec);
  std::cerr << "ferry-demo-app " << k.version << " listening on 127.0.0.1:" << k.port << "\n";
  // SIGTERM: stop accepting, let open requests finish (the router drained us already).
  asio::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const beast::error_code&, int) {
    g_stopping = true;
    acc.close();
  });
  if (k.crash_after_ms > 0)
    std::thread([ms = k.crash_after_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      std::abort();
    }).detach();
  std::function<void()> accept = [&] {
    acc.async_accept([&](const beast::error_code& e, tcp::socket s) {
      if (e) return;
      std::thread(serve, std::move(s), std::cref(k)).detach();
      accept();
    });
  };
  accept();
  ioc.run();
  for (int i = 0; i < 100 && g_active > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return 0;
}
