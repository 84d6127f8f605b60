// A real Prometheus scrapes a ferry metrics Registry served by ferry's HttpServer and
// evaluates deploy/prometheus/ferry-rules.yml: the exposition is ingested as written
// (escaped label values come back equal), the rule groups load healthy, and a failed
// deployment fires FerryDeploymentFailed. Skipped when prometheus is not installed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "free_port.h"
#include "test_paths.h"
#include "test_skip.h"

extern char** environ;

namespace ferry {
namespace {

namespace fs = std::filesystem;

// A child process killed (and reaped) when the test ends, however it ends.
class Child {
 public:
  explicit Child(std::vector<std::string> argv, const std::string& log_path) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
  }
  ~Child() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {  // up to 10 s to shut down, then SIGKILL
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

// Removes the scratch folder after the processes using it are gone; kept on failure
// for its prometheus.log.
struct ScratchDir {
  fs::path path;
  ~ScratchDir() {
    std::error_code ec;
    if (!::testing::Test::HasFailure()) fs::remove_all(path, ec);
  }
};

uint16_t free_port() {
  return testing::free_loopback_port();
}

// GETs a Prometheus API path until `done` accepts the JSON (at most ~40 s).
Json poll(HttpClient& prom, const std::string& target,
          const std::function<bool(const Json&)>& done) {
  Json last;
  for (int i = 0; i < 200; ++i) {
    auto r = prom.request("GET", target);
    if (r.ok() && r->status == 200) {
      auto j = parse_json(r->body);
      if (j.ok()) {
        last = *j;
        if (done(last)) return last;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return last;
}

TEST(PrometheusE2E, ScrapesRegistryAndFiresFerryAlerts) {
  const char* bin = "/usr/bin/prometheus";
  if (access(bin, X_OK) != 0)
    FERRY_SKIP_OR_FAIL("prometheus not installed (scripts/install-deps.sh --test installs it)");

  metrics::Registry reg;
  auto deployments = reg.counter("ferry_deployments_total", "Deployments finished, by result.",
                                 {"app", "env", "result"});
  auto rollbacks =
      reg.counter("ferry_rollbacks_total", "Rollbacks, by reason.", {"app", "env", "reason"});
  ASSERT_TRUE(deployments.ok() && rollbacks.ok());
  metrics::Counter failed = (*deployments)->with({"web", "production", "failed"});
  (*deployments)->with({"web", "production", "succeeded"}).inc(3);
  const std::string nasty = "quote \" backslash \\ newline \n end";
  (*rollbacks)->with({"web", "production", nasty}).inc();

  HttpServer server(HttpServerOptions{});
  server.route("GET", "/metrics", [&](HttpRequest&) {
    return HttpResponse::text(reg.expose(), std::string(metrics::Registry::kContentType));
  });
  ASSERT_TRUE(server.start().ok());

  const fs::path dir = fs::path(::testing::TempDir()) / ("ferry-prom-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  ScratchDir scratch{dir};  // declared before the child: destroyed after it
  fs::copy_file(fs::path(testing::source_dir()) / "deploy/prometheus/ferry-rules.yml",
                dir / "ferry-rules.yml");
  {
    std::ofstream cfg(dir / "prometheus.yml");
    cfg << "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        << "rule_files: [ferry-rules.yml]\n"
        << "scrape_configs:\n"
        << "  - job_name: ferry\n"
        << "    static_configs: [{targets: ['127.0.0.1:" << server.port() << "']}]\n";
  }
  const uint16_t port = free_port();
  Child prom({bin, "--config.file=" + (dir / "prometheus.yml").string(),
              "--storage.tsdb.path=" + (dir / "data").string(),
              "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
             (dir / "prometheus.log").string());
  HttpClient api(Endpoint{"127.0.0.1", port}, HttpClientOptions{2000, 8u << 20});

  // The scrape succeeds and the series arrive as exposed.
  Json up = poll(api, "/api/v1/query?query=" + url_encode("up{job=\"ferry\"}"), [](const Json& j) {
    const auto& r = j["data"]["result"];
    return !r.empty() && r[0]["value"][1] == "1";
  });
  ASSERT_FALSE(up["data"]["result"].empty()) << "prometheus did not scrape; log in " << dir;
  Json series = poll(api, "/api/v1/query?query=ferry_rollbacks_total",
                     [](const Json& j) { return !j["data"]["result"].empty(); });
  ASSERT_EQ(series["data"]["result"].size(), 1u);
  EXPECT_EQ(series["data"]["result"][0]["metric"]["reason"], nasty);
  Json ok = poll(
      api, "/api/v1/query?query=" + url_encode("ferry_deployments_total{result=\"succeeded\"}"),
      [](const Json& j) { return !j["data"]["result"].empty(); });
  ASSERT_FALSE(ok["data"]["result"].empty());
  EXPECT_EQ(ok["data"]["result"][0]["value"][1], "3");

  // Every rule group of ferry-rules.yml loaded and evaluates without error.
  Json rules = poll(api, "/api/v1/rules", [](const Json& j) {
    for (const auto& g : j["data"]["groups"])
      for (const auto& r : g["rules"])
        if (!r.contains("lastEvaluation") || r["lastEvaluation"] == "0001-01-01T00:00:00Z")
          return false;
    return j["data"]["groups"].size() == 4;
  });
  ASSERT_EQ(rules["data"]["groups"].size(), 4u);
  for (const auto& g : rules["data"]["groups"])
    for (const auto& r : g["rules"])
      EXPECT_EQ(r["health"], "ok") << r["name"] << ": " << r.value("lastError", "");

  // A deployment fails: the counter moves from 0 to 1 between scrapes and the alert fires.
  failed.inc();
  Json alerts = poll(api, "/api/v1/alerts", [](const Json& j) {
    for (const auto& a : j["data"]["alerts"])
      if (a["labels"]["alertname"] == "FerryDeploymentFailed" && a["state"] == "firing")
        return true;
    return false;
  });
  bool fired = false;
  for (const auto& a : alerts["data"]["alerts"])
    if (a["labels"]["alertname"] == "FerryDeploymentFailed" && a["state"] == "firing") {
      fired = true;
      EXPECT_EQ(a["labels"]["app"], "web");
      EXPECT_EQ(a["labels"]["env"], "production");
      EXPECT_EQ(a["labels"]["severity"], "critical");
    }
  EXPECT_TRUE(fired) << alerts.dump();
  EXPECT_TRUE(prom.running());
  server.stop();
}

}  // namespace
}  // namespace ferry
