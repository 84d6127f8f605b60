// SloService: the server's side of SLOs (docs/slo.md). A collector reads every agent's
// router counters of the apps that have an SLO, adds what is new since its last read to
// the current minute's bucket in the store (with the counters it read, in one
// transaction, so a restart of the server or a new leader counts nothing twice and loses
// nothing stored), and compacts old buckets every hour. Over the stored buckets it answers
// the status of an SLO, the release gate, the budget guard of a running deployment and
// the budget each deployment spent.
//
// Only the leader runs the collector (start/stop from ControlPlane's leader work); the
// reads work on any server. Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "core/agent_api.h"
#include "core/spec.h"
#include "slo/slo.h"
#include "store/store.h"

namespace ferry {

class SloService {
 public:
  struct Options {
    int64_t collect_every_ms = 10'000;
    // Minute buckets older than this fold into hours (whole hours).
    int64_t minutes_kept_ms = 48 * 3'600'000LL;
    // Buckets older than this are deleted: the longest window ferry.yaml allows, plus a day.
    int64_t buckets_kept_ms = 91LL * 24 * 3'600'000;
  };
  struct Deps {
    Store* store = nullptr;  // outlives the service
    Clock* clock = nullptr;  // outlives the service
    Logger* log = nullptr;   // outlives the service
    std::function<std::shared_ptr<const Config>()> config;
    std::function<std::vector<AgentClient*>(const std::string& env)> agents;
  };
  SloService(Deps deps, Options options);
  ~SloService();
  SloService(const SloService&) = delete;
  SloService& operator=(const SloService&) = delete;

  // The collector thread (the leader's): collects every collect_every_ms, compacts hourly.
  void start();
  void stop();

  // One collection now: every app with an SLO in every environment, every agent of it.
  // An agent that does not answer is skipped (its counts are read next time, from the
  // stored cursor). Errors: the store's, when the counts could not be written.
  Status collect_once();
  // One compaction now (store.h compact_slo).
  Status compact_once();

  // The SLO of `app` in `env` as deployed there (its environment override applied);
  // nullopt when it has none, or the app or environment is not configured.
  std::optional<SloSpec> spec_for(const std::string& app, const std::string& env) const;
  // The status now; kNotFound when the app has no SLO in env.
  Result<slo::Status> status(const std::string& app, const std::string& env);
  // The stored buckets of [from_ms, to_ms).
  Result<std::vector<slo::Bucket>> buckets(const std::string& app, const std::string& env,
                                           int64_t from_ms, int64_t to_ms);

  // The release gate of environments.ENV.slo_gate for a deployment: a reason to wait, or
  // nullopt. A store error is a reason to wait (named).
  std::optional<std::string> gate(const DeploymentRecord& d);
  // max_budget_spend for a running deployment: the reason to roll it back, or nullopt.
  std::optional<std::string> budget_guard(const DeploymentRecord& d);

  // The budget a deployment spent while it ran (created to finished, or now) and in the
  // hour after it finished (`after_complete` once that hour is over).
  struct Spend {
    double during = 0;
    double after = 0;
    bool after_complete = false;
  };
  // One entry per deployment of an app with an SLO in its environment (others: none).
  std::map<std::string, Spend> spend(const std::vector<DeploymentRecord>& deployments);

 private:
  using CursorKey = std::tuple<std::string, std::string, std::string, std::string>;
  Status load_cursors();
  void loop();

  Deps deps_;
  Options opts_;
  std::mutex mu_;  // the cursors and the loop's state; never held across I/O
  std::condition_variable cv_;
  bool stopping_ = false;
  bool cursors_loaded_ = false;
  std::map<CursorKey, SloCursorRecord> cursors_;
  std::mutex collect_mu_;  // one collection at a time (held across I/O, nothing else waits)
  std::thread thread_;
};

// Router counters as a cursor's JSON and back.
Json cursor_counters(const ReleaseStats& s);
ReleaseStats cursor_stats(const Json& counters);

}  // namespace ferry
