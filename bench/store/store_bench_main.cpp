// store_bench: what a deployment costs the store, on SQLite and on PostgreSQL.
//
// One "deployment" is what the engine writes for a canary of 20 events: create_deployment
// with its `created` event, 19 update_deployment calls that each append one event (the
// runner's commits), one audit entry per event (chained, like the server's), the final
// set_env_release. That is 41 store operations. `threads` workers run deployments of
// different apps at once through one Store (as the server does), each against its own
// app so the one-in-progress rule never refuses one.
//
// Usage: store_bench [--deployments N] [--threads T] [--backend sqlite|postgres|both]
// PostgreSQL runs with its defaults (fsync on, synchronous_commit on), like SQLite's
// synchronous=FULL: both wait for the disk on every commit.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "common/crypto.h"
#include "store/pg_cluster.h"
#include "store/store.h"

namespace ferry {
namespace {

constexpr int kEvents = 20;
constexpr int kOpsPerDeployment = 1 + (kEvents - 1) + kEvents + 1;

Status one_deployment(Store& s, const std::string& app, int n) {
  const std::string id = "d-" + app + "-" + std::to_string(n);
  DeploymentRecord d{.id = id,
                     .app = app,
                     .env = "production",
                     .release = "v1",
                     .strategy = "canary",
                     .plan = Json::array(),
                     .created_at_ms = 1,
                     .updated_at_ms = 1};
  auto seal = [](AuditRecord& a) { a.hash = sha256_hex(a.prev_hash + a.action); };
  FERRY_RETURN_IF_ERROR(s.create_deployment(d, {.time_ms = 1, .type = EventType::kCreated}));
  d.version = 1;
  auto audit =
      s.append_audit({.time_ms = 1, .actor = "bench", .action = "deploy", .app = app}, seal);
  if (!audit.ok()) return audit.status();
  for (int i = 1; i < kEvents; ++i) {
    d.state = i + 1 == kEvents ? DeploymentState::kSucceeded : DeploymentState::kRunning;
    d.current_step = i;
    d.step_state = i % 2 ? "running" : "done";
    FERRY_RETURN_IF_ERROR(
        s.update_deployment(d, {{.time_ms = i,
                                 .type = i % 2 ? EventType::kStepStarted : EventType::kStepFinished,
                                 .step = i,
                                 .message = "step " + std::to_string(i)}}));
    auto a = s.append_audit({.time_ms = i, .actor = "bench", .action = "step", .app = app}, seal);
    if (!a.ok()) return a.status();
  }
  return s.set_env_release({app, "production", "v1", id, 2});
}

struct Run {
  double seconds = 0;
  int deployments = 0;
  int failures = 0;
};

Run run(const std::string& url, int deployments, int threads) {
  // One Store shared by the workers, as in `ferry server` (each store serialises its
  // own calls: SQLite behind a mutex, PostgreSQL on one connection).
  auto store = open_store(url);
  if (!store.ok()) {
    std::fprintf(stderr, "store_bench: %s\n", store.status().to_string().c_str());
    std::exit(2);
  }
  for (int t = 0; t < threads; ++t)
    (void)(*store)->create_release(
        {.app = "app" + std::to_string(t), .version = "v1", .created_at_ms = 1});
  std::atomic<int> next{0}, failures{0};
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> ws;
  for (int t = 0; t < threads; ++t)
    ws.emplace_back([&, t] {
      const std::string app = "app" + std::to_string(t);
      for (int n; (n = next.fetch_add(1)) < deployments;) {
        Status s = one_deployment(**store, app, n);
        if (!s.ok()) {
          if (failures.fetch_add(1) == 0) std::fprintf(stderr, "%s\n", s.to_string().c_str());
        }
      }
    });
  for (auto& w : ws) w.join();
  Run r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.deployments = deployments;
  r.failures = failures.load();
  return r;
}

void print(const char* backend, int threads, const Run& r) {
  std::printf("| %-10s | %7d | %11d | %8.2f | %13.1f | %12.0f | %8d |\n", backend, threads,
              r.deployments, r.seconds, r.deployments / r.seconds,
              r.deployments * kOpsPerDeployment / r.seconds, r.failures);
  std::fflush(stdout);
}

}  // namespace
}  // namespace ferry

int main(int argc, char** argv) {
  using namespace ferry;
  int deployments = 200;
  std::vector<int> threads = {1, 4};
  std::string backend = "both";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--deployments"))
      deployments = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = {std::atoi(argv[i + 1])};
    else if (!std::strcmp(argv[i], "--backend"))
      backend = argv[i + 1];
  }
  if (deployments < 1 || deployments > 100000) {
    std::fprintf(stderr, "store_bench: --deployments must be 1..100000\n");
    return 2;
  }
  std::printf(
      "| store      | threads | deployments | seconds | deployments/s | store ops/s | failures "
      "|\n");
  std::printf(
      "|------------|--------:|------------:|--------:|--------------:|------------:|---------:|"
      "\n");
  if (backend == "sqlite" || backend == "both") {
    for (int t : threads) {
      const auto dir = std::filesystem::temp_directory_path() / random_id("ferry-bench-");
      print("SQLite", t, run("sqlite:" + (dir / "ferry.db").string(), deployments, t));
      std::filesystem::remove_all(dir);
    }
  }
  if (backend == "postgres" || backend == "both") {
    ferry::testing::PgCluster pg(/*durable=*/true);
    Status s = pg.start();
    if (!s.ok()) {
      std::fprintf(stderr, "store_bench: PostgreSQL: %s\n", s.to_string().c_str());
      return 2;
    }
    int n = 0;
    for (int t : threads) {
      const std::string db = "bench" + std::to_string(n++);
      (void)pg.create_database(db);
      print("PostgreSQL", t, run(pg.url(db), deployments, t));
    }
  }
  return 0;
}
