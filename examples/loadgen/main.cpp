// ferry-loadgen: a small, bounded HTTP load generator for the demo and the e2e tests.
// Keep-alive connections from a few threads, a request-rate cap, a hard time limit;
// prints a JSON summary: requests by status class and by answering release
// (X-Ferry-Release), connection errors, latency p50/p99. Loopback only by design.
#include <signal.h>

#include <algorithm>
#include <utility>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/json.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<bool> g_stop{false};

struct Totals {
  std::mutex mu;
  uint64_t requests = 0, errors = 0;
  std::map<std::string, uint64_t> by_class, by_release;
  std::vector<double> latencies;
};

void worker(const ferry::Endpoint& ep, const std::string& path, double per_thread_rps,
            std::chrono::steady_clock::time_point until, Totals& t) {
  asio::io_context ioc;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buf;
  const auto gap = per_thread_rps > 0 ? std::chrono::duration<double>(1.0 / per_thread_rps)
                                      : std::chrono::duration<double>(0);
  auto next = std::chrono::steady_clock::now();
  while (!g_stop && std::chrono::steady_clock::now() < until) {
    if (per_thread_rps > 0) {
      std::this_thread::sleep_until(next);
      next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(gap);
    }
    const auto t0 = std::chrono::steady_clock::now();
    beast::error_code ec;
    std::string cls, release;
    for (int attempt = 0; attempt < 2; ++attempt) {  // a closed keep-alive socket: reconnect once
      if (!stream) {
        stream = std::make_unique<beast::tcp_stream>(ioc);
        stream->expires_after(std::chrono::seconds(5));
        tcp::endpoint target(asio::ip::make_address(ep.host), ep.port);
        stream->connect(target, ec);
        if (ec) {
          stream.reset();
          continue;
        }
      }
      http::request<http::empty_body> req{http::verb::get, path, 11};
      req.set(http::field::host, ep.host);
      req.keep_alive(true);
      stream->expires_after(std::chrono::seconds(5));
      http::write(*stream, req, ec);
      http::response<http::string_body> res;
      if (!ec) http::read(*stream, buf, res, ec);
      if (ec) {
        stream.reset();
        buf.clear();
        continue;
      }
      cls = std::to_string(res.result_int() / 100) + "xx";
      release = std::string(res["X-Ferry-Release"]);
      if (!res.keep_alive()) stream.reset();
      break;
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lock(t.mu);
    ++t.requests;
    if (cls.empty()) {
      ++t.errors;
    } else {
      ++t.by_class[cls];
      if (!release.empty()) ++t.by_release[release + " " + cls];
      if (t.latencies.size() < 2'000'000) t.latencies.push_back(ms);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string target = "127.0.0.1:8080", path = "/", out;
  int threads = 4;
  double rps = 200, seconds = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--target") target = v;
    else if (k == "--path") path = v;
    else if (k == "--threads") threads = std::clamp(std::stoi(v), 1, 64);
    else if (k == "--rps") rps = std::clamp(std::stod(v), 0.0, 100000.0);
    else if (k == "--seconds") seconds = std::clamp(std::stod(v), 0.1, 600.0);  // always bounded
    else if (k == "--out") out = v;
    else {
      std::cerr << "usage: ferry-loadgen --target HOST:PORT [--path /] [--threads 4] [--rps 200] "
                   "[--seconds 30] [--out summary.json]\n";
      return 2;
    }
  }
  auto ep = ferry::parse_endpoint(target);
  if (!ep.ok()) {
    std::cerr << "error: " << ep.status().message() << "\n";
    return 2;
  }
  if (ep->host != "127.0.0.1" && ep->host != "::1" && ep->host != "localhost") {
    std::cerr << "error: ferry-loadgen sends load to loopback addresses only\n";
    return 2;
  }
  if (ep->host == "localhost") ep->host = "127.0.0.1";
  signal(SIGTERM, [](int) { g_stop = true; });
  signal(SIGINT, [](int) { g_stop = true; });
  Totals t;
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i)
    ts.emplace_back(worker, *ep, path, rps / threads, until, std::ref(t));
  for (auto& th : ts) th.join();
  std::sort(t.latencies.begin(), t.latencies.end());
  auto q = [&](double p) {
    return t.latencies.empty() ? 0.0 : t.latencies[static_cast<size_t>(p * (t.latencies.size() - 1))];
  };
  ferry::Json j{{"requests", t.requests},  {"connection_errors", t.errors},
                {"by_class", t.by_class},  {"by_release", t.by_release},
                {"p50_ms", q(0.5)},        {"p99_ms", q(0.99)}};
  if (!out.empty()) {
    FILE* f = std::fopen(out.c_str(), "w");
    if (f) {
      std::fputs(j.dump(2).c_str(), f);
      std::fclose(f);
    }
  }
  std::cout << j.dump() << "\n";
  return 0;
}
