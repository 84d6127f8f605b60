// Debian's Prometheus scrapes `ferry server` during deployments (with a viewer token),
// and the PromQL analysis provider queries that Prometheus: a canary whose query is
// within bounds succeeds, one whose query is out of bounds is rolled back with the
// query named in the reason.
#include "e2e/e2e_env.h"
#include "test_skip.h"

namespace ferry::e2e {
namespace {

TEST(PrometheusE2E, ScrapesFerryAndDrivesPromqlAnalysis) {
  if (access("/usr/bin/prometheus", X_OK) != 0)
    FERRY_SKIP_OR_FAIL("prometheus is not installed (scripts/install-deps.sh --test)");
  const uint16_t prom_port = free_port();
  const std::string prom = "http://127.0.0.1:" + std::to_string(prom_port);
  // Canary analysis asks Prometheus whether ferry itself is up. Over 10 s, not at one
  // instant: a scrape slower than its timeout on a loaded machine (a sanitizer build
  // answers /metrics in ~200 ms when idle) reads as up = 0 and would fail a good canary.
  const std::string app = std::string(R"(    port: @APP_PORT@
    instances: 1
    run:
      command: ["@DEMO@", "--port", "${PORT}", "--version", "${VERSION}"]
      stop_grace: 2s
    checks:
      readiness: {http: {path: /healthz}, interval: 100ms}
    strategy:
      canary:
        steps: [{weight: 50}, {analysis: 3s}, {weight: 100}]
    analysis:
      interval: 500ms
      window: 3s
      min_requests: 0
      mann_whitney: false
      prometheus:
        - {name: ferry-up, url: ")") +
                          prom + R"(", query: 'max(max_over_time(up{job="ferry"}[10s]))', min: 1}
)";
  Cluster c("prom", app);
  c.start_server();
  // Prometheus, scraping the server every 500 ms with a viewer token.
  Json body{{"name", "prometheus"}, {"role", "viewer"}};
  auto tok = c.api("POST", "/api/v1/tokens", &body);
  ASSERT_TRUE(tok.ok());
  const auto dir = c.dir() / "prom";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "token") << tok->value("token", "");
  // The server's port, read from the config file the cluster wrote.
  std::ifstream cfg(c.config());
  std::string text((std::istreambuf_iterator<char>(cfg)), {});
  const auto p = text.find("listen: 127.0.0.1:");
  const std::string server_port = text.substr(p + 18, text.find('\n', p) - p - 18);
  std::ofstream(dir / "prometheus.yml")
      << "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
         "scrape_configs:\n  - job_name: ferry\n    authorization: {credentials_file: "
      << (dir / "token").string() << "}\n    static_configs: [{targets: ['127.0.0.1:" << server_port
      << "']}]\n";
  ProcessLaunch l;
  l.argv = {"/usr/bin/prometheus", "--config.file=" + (dir / "prometheus.yml").string(),
            "--storage.tsdb.path=" + (dir / "data").string(),
            "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)};
  l.log_path = (dir / "prometheus.log").string();
  auto ph = start_process(l);
  ASSERT_TRUE(ph.ok()) << ph.status().message();
  struct Stop {
    ProcessHandle h;
    ~Stop() {
      signal_group(h, SIGTERM);
      int code;
      for (int i = 0; i < 100 && !reap_child(h.pid, &code); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      signal_group(h, SIGKILL);
    }
  } stop{*ph};
  // Wait until Prometheus has scraped ferry successfully.
  HttpClient pc(Endpoint{"127.0.0.1", prom_port});
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    auto r = pc.request("GET", "/api/v1/query?query=" + url_encode("up{job=\"ferry\"}"));
    up = r.ok() && r->body.find("\"1\"]") != std::string::npos;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(up) << "prometheus never scraped ferry";

  for (const char* v : {"v1", "v2"}) {
    Json rel{{"app", "web"}, {"version", v}};
    ASSERT_TRUE(c.api("POST", "/api/v1/releases", &rel).ok());
  }
  Json d{{"app", "web"}, {"env", "dev"}, {"release", "v1"}};
  auto d1 = c.api("POST", "/api/v1/deployments", &d);
  ASSERT_TRUE(d1.ok());
  ASSERT_EQ(c.wait_final(d1->value("id", "")).value("state", ""), "succeeded") << c.log();
  d["release"] = "v2";
  Load load;
  load.start(c.app_port(), 2, 30, 5000);
  auto d2 = c.api("POST", "/api/v1/deployments", &d);
  ASSERT_TRUE(d2.ok());
  Json done = c.wait_final(d2->value("id", ""));
  load.finish();
  // On failure: why (the deployment's story), and what Prometheus saw of ferry meanwhile.
  auto prom_view = [&] {
    std::string out;
    for (const char* q :
         {"up{job=\"ferry\"}[60s]", "scrape_duration_seconds{job=\"ferry\"}[60s]"}) {
      auto r = pc.request("GET", "/api/v1/query?query=" + url_encode(q));
      out += std::string(q) + " = " + (r.ok() ? r->body : r.status().message()) + "\n";
    }
    return out;
  };
  EXPECT_EQ(done.value("state", ""), "succeeded") << story(done) << prom_view();
  bool queried = false;
  for (const auto& e : done["events"])
    queried |= e.value("type", "") == "analysis" || e.dump().find("ferry-up") != std::string::npos;
  EXPECT_TRUE(queried) << story(done);

  // ferry's own metrics make it into Prometheus (on its next scrapes).
  std::string answer;
  auto scraped = [&](const std::string& query, const std::string& want) {
    return testing::wait_until(
        [&] {
          auto q = pc.request("GET", "/api/v1/query?query=" + url_encode(query));
          answer = q.ok() ? q->body : q.status().message();
          return q.ok() && answer.find(want) != std::string::npos;
        },
        std::chrono::seconds(20), std::chrono::milliseconds(200));
  };
  EXPECT_TRUE(scraped("ferry_deployments_total{result=\"succeeded\"}", "\"app\":\"web\"")) << body;
  EXPECT_TRUE(scraped("sum(ferry_router_requests_total{code_class=\"2xx\"})", "\"result\":[{"))
      << answer;
}

}  // namespace
}  // namespace ferry::e2e
