// SloService: the server's side of SLOs (docs/slo.md). A collector reads every agent's
// router counters of the apps that have an SLO, adds what is new since its last read to
// the current minute's bucket in the store (with the counters it read, in one
// transaction, so a restart of the server or a new leader counts nothing twice and loses
// nothing stored), and compacts old buckets every hour. Over the stored buckets it answers
// the status of an SLO, the release gate, the budget guard of a running deployment and
// the budget each deployment spent.
//
// Reads are served from a copy of each app and environment's buckets (the SLO window and
// an hour more), read again when this process writes SLO data through a store
// (store/slo_rows.h write_count: the collector's writes, compaction, a test's own) and at
// least every collect_every_ms (another server's collector, on PostgreSQL). The runner's
// budget guard runs on every tick of a deployment's step and /metrics asks for each gauge:
// neither reads the store more than that.
//
// The leader also watches the burn-rate alerts (slo::burn_alerts(), page and ticket) after
// each collection and reports each one that starts or stops firing through on_alert, once
// per episode.
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
#include "notify/event.h"
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
  // A burn-rate alert of one objective that started (firing) or stopped firing.
  struct AlertChange {
    std::string app, env;
    std::string objective;  // "availability" | "latency"
    std::string alert;      // "page" | "ticket" (slo::burn_alerts())
    bool firing = false;
    std::string message;  // what burns how fast, for people
  };
  struct Deps {
    Store* store = nullptr;  // outlives the service
    Clock* clock = nullptr;  // outlives the service
    Logger* log = nullptr;   // outlives the service
    std::function<std::shared_ptr<const Config>()> config;
    std::function<std::vector<AgentClient*>(const std::string& env)> agents;
    // Called by check_alerts() (on the collector's thread) for each alert that starts or
    // stops firing; empty: none. Must not block (the notifier queues).
    std::function<void(const AlertChange&)> on_alert;
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
  // The burn-rate alerts now, against those seen firing at the last check: on_alert for
  // each that started or stopped. The first check after start() reports every alert that
  // fires (a new leader cannot know whether the last one announced it; PagerDuty keeps one
  // incident per dedup key) and none that does not.
  void check_alerts();

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
  // The spend is counted from traffic_since_ms, when the deployment's first step that sends
  // traffic to the new release started (time waiting at a gate or starting instances costs
  // it nothing); nullopt while traffic_since_ms <= 0 (no traffic yet). Served from the
  // cached buckets: cheap enough for every tick of the runner.
  std::optional<std::string> budget_guard(const DeploymentRecord& d, int64_t traffic_since_ms);

  // The budget a deployment spent while it ran (from its first traffic, as budget_guard
  // counts, to finished or now) and in the hour after it finished (`after_complete` once
  // that hour is over). One that never sent traffic spent nothing.
  struct Spend {
    double during = 0;
    double after = 0;
    bool after_complete = false;
    int64_t traffic_since_ms = 0;  // its first traffic step's start; 0: none
  };
  // One entry per deployment of an app with an SLO in its environment (others: none).
  std::map<std::string, Spend> spend(const std::vector<DeploymentRecord>& deployments);

  // How many times the buckets were read from the store for status, gate and guard (tests
  // check that the hot paths are served from the cached copy).
  uint64_t bucket_reads() const;

 private:
  using CursorKey = std::tuple<std::string, std::string, std::string, std::string>;
  using AppEnv = std::pair<std::string, std::string>;
  // One app and environment's buckets as last read, with what was computed from them.
  struct Cached {
    uint64_t writes = 0;     // slo_rows::write_count() before the read
    int64_t read_at_ms = 0;  // wall clock of the read
    int64_t read_mono_ms = 0;
    int64_t from_ms = 0, to_ms = 0;  // the range read: [from_ms, to_ms)
    std::shared_ptr<const std::vector<slo::Bucket>> buckets;
    // evaluate() for the minute status_minute with status_spec (the status only changes
    // from one minute to the next).
    std::optional<slo::Status> status;
    int64_t status_minute = 0;
    SloSpec status_spec;
    // The last budget_spent() asked (the guard asks the same while the minute lasts).
    std::optional<double> spent;
    int64_t spent_from_minute = 0, spent_to_minute = 0;
    SloSpec spent_spec;
  };
  // The buckets of app in env covering [from_ms, now + a minute) and the SLO window before
  // now: the cached copy while it is fresh, else read again.
  Result<std::shared_ptr<const std::vector<slo::Bucket>>> window_buckets(const std::string& app,
                                                                         const std::string& env,
                                                                         const SloSpec& spec,
                                                                         int64_t from_ms,
                                                                         int64_t now_ms);
  // When the deployment's first step that sends traffic started (its step_started event);
  // nullopt when none did; created_at_ms when its events cannot be read.
  std::optional<int64_t> traffic_started_ms(const DeploymentRecord& d);
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
  mutable std::mutex cache_mu_;  // the cache; never held across I/O
  std::map<AppEnv, Cached> cache_;
  uint64_t bucket_reads_ = 0;
  // check_alerts(): (app, env, objective, alert) → firing at the last check.
  std::map<std::tuple<std::string, std::string, std::string, std::string>, bool> alerts_;
  bool alerts_known_ = false;  // a check ran since start()
};

// The notification of an alert change: slo_burn when it fires, slo_burn_resolved when it
// stops; alert "OBJECTIVE/ALERT", actor "ferry", the message as the reason.
NotificationEvent slo_alert_notification(const SloService::AlertChange& c, SystemTime now);

// Router counters as a cursor's JSON and back.
Json cursor_counters(const ReleaseStats& s);
ReleaseStats cursor_stats(const Json& counters);

}  // namespace ferry
