// ChaosService: game days (`ferry chaos`, docs/runbook.md "Game days"). An experiment on
// one app in one environment either injects router faults (a share of requests delayed or
// answered 5xx, router/fault.h) on every agent that runs the app there, or kills one of
// its instances through an agent (the supervisor restarts it as after a crash); then it
// watches for a bounded time and reports what ferry did (instance restarts, rollbacks and
// alerts of deployments meanwhile) and what clients saw (requests, errors, injected
// faults, latency), from the routers' counters before and after.
//
// Safety: refused unless the environment says `chaos: allowed`; one experiment per app and
// environment at a time; at most kMaxFaultDurationMs. The faults carry their duration to
// the agent, which ends them by itself: a server that stops or restarts mid-experiment
// leaves nothing behind. Experiments are kept in DATA_DIR/chaos.json (0600, replaced
// atomically), so a restarted server still ends, audits and reports the ones it started.
//
// Thread safety: every method may be called from any thread. No lock is held across an
// agent call or a file write.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/status.h"
#include "core/agent_api.h"
#include "core/spec.h"
#include "store/store.h"

namespace ferry {

// What an experiment does.
enum class ChaosKind { kKillInstance, kLatency, kErrors };
std::string_view to_string(ChaosKind k);

struct ChaosRequest {
  std::string app;
  std::string env;
  ChaosKind kind = ChaosKind::kErrors;
  int latency_ms = 0;       // kLatency
  double share = 0;         // kLatency, kErrors: the fraction of requests hit, (0, 1]
  int error_status = 503;   // kErrors
  int64_t duration_ms = 0;  // 0: the default (kDefaultKillWatchMs / kDefaultFaultMs)
  std::string instance;     // kKillInstance: which one ("": any ready one)
  std::string actor;        // who asked (audit)
  std::string source;       // from where (audit)
};

class ChaosService {
 public:
  static constexpr int64_t kDefaultFaultMs = 5 * 60'000;
  static constexpr int64_t kDefaultKillWatchMs = 60'000;
  static constexpr int64_t kMinDurationMs = 1'000;
  static constexpr size_t kKeptFinished = 50;  // finished experiments kept for their reports

  struct Deps {
    Store* store = nullptr;  // outlives the service
    Clock* clock = nullptr;  // outlives the service
    Logger* log = nullptr;   // outlives the service
    std::function<std::shared_ptr<const Config>()> config;
    std::function<std::vector<AgentClient*>(const std::string& env)> agents;
    // Appends an audit entry (actor, action, app, env, source, details).
    std::function<void(const std::string&, const std::string&, const std::string&,
                       const std::string&, const std::string&, Json)>
        audit;
    // Told of each start and end ({"type": "chaos.start" | "chaos.end", "app", "env",
    // "experiment"}); may be empty. (The dashboard polls GET /api/v1/chaos instead: the
    // event stream carries deployment events only.)
    std::function<void(const Json&)> publish;
    std::string state_file;  // DATA_DIR/chaos.json
  };

  explicit ChaosService(Deps deps);
  ~ChaosService();
  ChaosService(const ChaosService&) = delete;
  ChaosService& operator=(const ChaosService&) = delete;

  // Loads the state file and starts the thread that ends experiments when they are due
  // (ones due while the server was down end at once). A state file that cannot be read is
  // logged and set aside (chaos.json.bad), never silently overwritten.
  void start();
  void stop();

  // Starts an experiment; the answer is its JSON (id, ends_at_ms, targets, …).
  // kInvalidArgument: a bad request (field and value named); kNotFound: the app or
  // environment is not configured; kFailedPrecondition: the environment does not allow
  // chaos, or the app runs on no agent there, or no instance can be killed; kConflict: an
  // experiment of this app and environment is running. Nothing is changed on a refusal;
  // when an agent refuses the faults the others are cleared and the experiment is
  // recorded as aborted.
  Result<Json> start_experiment(const ChaosRequest& r);
  // Ends a running experiment now (audited as chaos.abort); its report is final.
  // kNotFound for an unknown id; kFailedPrecondition when it already ended.
  Result<Json> stop_experiment(const std::string& id, const std::string& actor,
                               const std::string& source);
  // One experiment with its report (live while it runs).
  Result<Json> get(const std::string& id);
  // Experiments, newest first: running ones, then finished ones (filters: app, env).
  Json list(const std::string& app, const std::string& env, bool running_only);

  // Ends the experiments that are due now (the thread calls this; tests may too).
  void finish_due();

 private:
  struct Experiment;

  Json snapshot_of(const std::string& app, const std::string& env);
  Json report_of(const Experiment& e);
  void finish(const std::string& id, const std::string& state, const std::string& actor,
              const std::string& source);
  void save();
  void load();
  void run();

  Deps deps_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Experiment>> experiments_;  // guarded by mu_
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
  std::mutex save_mu_;  // one writer of the state file at a time
};

}  // namespace ferry
