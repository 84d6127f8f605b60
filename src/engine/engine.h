// Engine: runs deployments. It plans the steps from the strategy, commits each step's
// start and end to the Store before and after acting, drives agents through
// AgentClient, analyses the new release at every step and rolls back by itself when
// it is worse. One runner thread per active deployment; on start() it resumes (or
// rolls back, per the app's rollback_policy) whatever a previous process left open.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/mask.h"
#include "common/thread_annotations.h"
#include "core/agent_api.h"
#include "core/spec.h"
#include "store/store.h"

namespace ferry {

class PromQueryClient;
class Reconciler;
struct DesiredSpec;

struct GateDecision {
  enum class Verdict { kGo, kWait, kRefuse };
  Verdict verdict = Verdict::kGo;
  std::string reason;
};

// Everything the engine talks to, as interfaces and callbacks (no sockets, no SQL).
struct EngineContext {
  Store* store = nullptr;
  Clock* clock = nullptr;
  Logger* log = nullptr;
  std::shared_ptr<Masker> masker;
  // The agents that run an environment's instances.
  std::function<std::vector<AgentClient*>(const std::string& env)> agents;
  // Gates (lifecycle, approvals, window, freeze); empty: always go.
  std::function<GateDecision(const DeploymentRecord&)> gates;
  // The SLO budget guard (docs/slo.md, max_budget_spend): a reason to roll a running
  // deployment back, or nullopt; empty: none. Called on every tick of the runner's waits
  // (50 ms) once traffic reaches the new release, with the unix ms when the first step that
  // sent it traffic started: it must answer from memory, not from the store, each time.
  std::function<std::optional<std::string>(const DeploymentRecord&, int64_t traffic_since_ms)>
      budget_guard;
  // Every event after it is committed (dashboard stream, notifications, metrics).
  std::function<void(const DeploymentEvent&, const DeploymentRecord&)> on_event;
  // Audit entries for what the engine decides by itself (rollbacks, gate passes).
  std::function<void(const std::string& action, const DeploymentRecord&, const Json& details)>
      audit;
  // Secret values to inject into an app's instances in an environment.
  std::function<std::map<std::string, std::string>(const std::string& app, const std::string& env)>
      secrets;
  PromQueryClient* prom = nullptr;
};

// How a deployment was asked for, beyond app, environment and release.
struct DeployOptions {
  // An admin's reason to deploy a release whose secret scan did not pass to an
  // environment that requires one ("" = no override). Recorded in the created event.
  std::string scan_override_reason;
  // A rollback to a release that already succeeded in the environment: not re-gated by
  // the scan (it passed, or was overridden, when it first went there).
  bool rollback = false;
};

// The scan gate: ok when `release` may go to `env` as far as the secret scan goes; else
// kFailedPrecondition naming `--source` and the admin override.
Status check_scan_gate(const Config& config, const std::string& env, const ReleaseRecord& release);
// Whether a release's scan status lets it pass the gate ("clean" or "overridden").
bool scan_passed(const std::string& scan_status);

class Engine {
 public:
  Engine(EngineContext ctx, std::shared_ptr<const Config> config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Resumes every deployment the store has open; then watches for new ones.
  void start();
  // Stops runner threads; deployments stay open in the store and resume on next start().
  void stop();

  // Creates a deployment of app@release to env; it waits on gates or starts at once.
  // kFailedPrecondition when the scan gate refuses (see check_scan_gate) or a
  // deployment of app to env is in flight.
  Result<DeploymentRecord> deploy(const std::string& app, const std::string& env,
                                  const std::string& release, const std::string& actor,
                                  const DeployOptions& options = {});
  // Returns env to an earlier release (default: the one before the current stable) that
  // succeeded there. By default at once: the target's instances are started (or the ones
  // kept by keep_previous are used), take 100% of traffic as soon as they are ready, and
  // the current ones are drained and stopped; no analysis. `with_strategy` deploys the
  // target through the app's strategy instead. A deployment in flight is aborted instead.
  Result<DeploymentRecord> rollback(const std::string& app, const std::string& env,
                                    const std::string& release, const std::string& actor,
                                    bool with_strategy = false);
  Status pause(const std::string& id, const std::string& actor);
  Status resume(const std::string& id, const std::string& actor);
  // Ends the step running now when it is a pause (timed or until promote) or the wait
  // before old instances stop. kConflict, with the reason, when the running step cannot
  // be promoted (an analysis, a start, gates): a promote is never kept for a later step.
  Status promote(const std::string& id, const std::string& actor);
  Status abort(const std::string& id, const std::string& actor);

  // Gives the stable release's instances of app in env their current secrets: each
  // instance is replaced by one with the new environment, which takes over once ready
  // (the agent keeps the old one serving until then). Refused while a deployment of the
  // app to env is in flight (it picks the secrets up itself).
  Status refresh_instances(const std::string& app, const std::string& env,
                           const std::string& actor);

  // Re-evaluates waiting deployments' gates now (after an approval, say).
  void poke();

  std::shared_ptr<const Config> config() const;
  void set_config(std::shared_ptr<const Config> config);
  // Per-agent desired state and who is behind (reconciler.h); lives as long as the engine.
  Reconciler& reconciler() { return *reconciler_; }

  // For tests: how many times the runner of deployment `id` has looked again at the step,
  // gate or rollback it waits on; -1 when no runner of this process runs it. A test that
  // checks that something did NOT happen waits for a few more rounds instead of a fixed
  // time: each round is a chance the runner had to move on.
  int64_t rounds(const std::string& id) const;
  // For tests: blocks until the deployment reaches a final state or `timeout` passes.
  Result<DeploymentRecord> wait_final(const std::string& id, Duration timeout);

  struct Control;

  // The previous stable release's instances kept at weight 0 after a deployment of
  // app to env succeeded (keep_previous); stopped at until_ms.
  struct KeptPrevious {
    std::string app, env, stable, previous;
    int64_t generation = 0;  // the succeeded deployment's last desired-state generation
    int64_t until_ms = 0;    // unix ms
  };

 private:
  Result<DeploymentRecord> create(const std::string& app, const std::string& env,
                                  const std::string& release, const std::string& actor,
                                  const DeployOptions& options, bool immediate_rollback);
  // Finds what keep_previous left running (after a restart) from the store.
  void restore_kept();
  // Stops the kept instances whose time is up (outside mu_: agent calls).
  void release_expired_kept();
  // `want` (the stable release alone, the environment's total) spread over env's agents as
  // the stable release runs now (engine/placing.h), through the reconciler.
  Result<std::map<std::string, Status>> apply_stable(const Config& config, const std::string& app,
                                                     const std::string& env, int64_t generation,
                                                     const DesiredSpec& want);
  void supervise();
  void launch(const std::string& id) FERRY_REQUIRES(mu_);
  Status signal(const std::string& id, const std::string& actor, const std::string& what);

  EngineContext ctx_;
  std::unique_ptr<Reconciler> reconciler_;
  mutable Mutex mu_;
  std::shared_ptr<const Config> config_ FERRY_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Control>> controls_ FERRY_GUARDED_BY(mu_);
  std::map<std::string, std::thread> runners_ FERRY_GUARDED_BY(mu_);
  std::map<std::string, KeptPrevious> kept_ FERRY_GUARDED_BY(mu_);  // by agent app name
  std::condition_variable cv_;
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  bool poked_ FERRY_GUARDED_BY(mu_) = false;
  // Started by start() and joined by stop(), which the server calls from one thread.
  std::thread supervisor_;
};

}  // namespace ferry
