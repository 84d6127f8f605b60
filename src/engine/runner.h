// DeploymentRunner: executes one deployment's plan, step by step, on its own thread.
// Internal to the engine.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "analysis/sequential.h"
#include "core/plan.h"
#include "engine/engine.h"
#include "engine/placing.h"
#include "engine/reconciler.h"

namespace ferry {

struct Engine::Control {
  Mutex mu;
  std::condition_variable cv;
  bool pause FERRY_GUARDED_BY(mu) = false;
  bool promote FERRY_GUARDED_BY(mu) = false;
  bool abort FERRY_GUARDED_BY(mu) = false;
  bool stop FERRY_GUARDED_BY(mu) = false;  // the engine is shutting down: leave it open
  bool poke FERRY_GUARDED_BY(mu) = false;  // re-check gates now
  // The step running now, published by the runner: a promote applies to this step only
  // and is refused when it cannot end it (see Engine::promote).
  int step FERRY_GUARDED_BY(mu) = -1;
  std::string step_description FERRY_GUARDED_BY(mu);
  bool promotable FERRY_GUARDED_BY(mu) = false;
  // How many times the runner has looked again at a step, a gate or a rollback it waits
  // on (Engine::rounds): tests wait on it to know the runner had its chance to move on.
  int64_t rounds FERRY_GUARDED_BY(mu) = 0;
  // Set by the runner when the deployment succeeded with the previous release kept.
  std::optional<Engine::KeptPrevious> kept FERRY_GUARDED_BY(mu);
};

class DeploymentRunner {
 public:
  DeploymentRunner(EngineContext& ctx, Reconciler& reconciler, std::shared_ptr<const Config> config,
                   std::shared_ptr<Engine::Control> control, DeploymentRecord d);
  void run();

 private:
  enum class Outcome { kDone, kFail, kAbort, kStop };
  struct StepResult {
    Outcome outcome = Outcome::kDone;
    std::string reason;
    Json details = Json::object();
  };

  // Gates: returns false when the runner must end (refused, aborted or stopping).
  bool pass_gates();
  // The deployment's placement: the stored one on a resume, else computed and stored (a
  // `placed` event) before any agent is told anything. False when it cannot be placed
  // (the deployment has failed, saying why) or the store is away (left for a resume).
  bool load_placement();
  // on_agent_loss continue: moves the lost agents' slots to the others (a new `placed`
  // event) and gives every agent its new share; an error when the others cannot take them.
  Status replace_lost_share(const std::string& agent);
  // New instances of the first `count` slots on `agent`.
  int share_on(const std::string& agent, int count) const;
  StepResult run_step(int index, const PlanStep& step);
  StepResult step_start(int count);
  StepResult step_weight(int weight);
  StepResult step_watch(const PlanStep& step, bool is_analysis);
  StepResult step_batch(const PlanStep& step);
  StepResult step_stop_old(const PlanStep& step);
  StepResult step_hooks(const std::string& phase);
  StepResult step_finish();
  // The routers' totals for the new and the previous release, summed over the agents that
  // answer: kept in the store with the deployment's last event, since an agent drops a
  // release's counters once it has had no instance and no weight for the analysis window.
  Json traffic_totals();
  void roll_back(const std::string& reason, const Json& details, bool aborted);

  // Desired state for the agents (through the reconciler: stored per agent, pushed to all
  // in parallel): `new_count` instances of the new release, `old_count` of the stable one,
  // and the traffic split. An unreachable agent does not fail it (it is behind, retried,
  // and check_agents() applies on_agent_loss); a store error or an agent's refusal does.
  Status put_state(int new_count, int old_count, int new_weight);
  Status set_weight(int new_weight);
  Status apply(int new_count, int old_count, int new_weight, bool weights_only);
  // Every agent's status at once; failures are recorded as unreachability.
  struct AgentRead {
    std::string agent, address;
    Result<AppStatus> status = unavailable("not read");
  };
  std::vector<AgentRead> read_agents();
  // The counted agents' statuses merged (the lost ones left out); an error names the
  // first counted agent that did not answer.
  Result<AppStatus> app_status();
  std::optional<StepResult> check_instances(const AppStatus& s);
  // Applies on_agent_loss to an agent unreachable for agent_timeout; events for agents
  // that stop or start answering.
  std::optional<StepResult> check_agents();
  // Events for agents of the environment that stop or start answering.
  void report_reachability();
  bool counted(const std::string& agent) const { return !lost_.count(agent); }
  // Router counters since the last weight change, summed over the counted agents; nullopt
  // while a counted agent does not answer (no analysis on part of the traffic).
  std::optional<AppStatus> traffic_since_baseline(const std::vector<AgentRead>& reads);
  void set_baselines(const std::vector<AgentRead>& reads);
  // After the rollback's desired state: waits until every agent reports it, naming the
  // ones behind; false when the engine stops first (it stays rolling_back).
  bool wait_rollback_converged();
  // `reason` by value: callers pass d_.reason, which waiting for the agents rewrites.
  void finish_rollback(std::string reason, Json data, bool aborted);
  // Waits up to `ms` (or forever when ms < 0) or until a control flag is raised;
  // `tick` runs every poll and may end the wait with a result.
  std::optional<StepResult> wait(int64_t ms, bool wake_on_promote,
                                 const std::function<std::optional<StepResult>()>& tick);

  Status commit(EventType type, int step, const std::string& message,
                const Json& data = Json::object());
  // Runs a store write; while the store is unavailable, holds and retries (runner.cpp).
  Status write_holding(const std::function<Status()>& write);
  std::string agent_app() const { return agent_app_name(d_.app, d_.env); }
  bool flag(bool Engine::Control::*f, bool clear = false);
  // On a resume: traffic_since_ms_ from the stored events, when a step that sends traffic
  // to the new release started before the process stopped.
  void traffic_start_from_events();
  // Publishes the running step to Control; a promote left from an earlier step is dropped.
  void enter_step(int index, const PlanStep* step);

  EngineContext& ctx_;
  Reconciler& reconciler_;
  std::shared_ptr<const Config> config_;
  std::shared_ptr<Engine::Control> control_;
  DeploymentRecord d_;
  AppSpec app_;
  std::vector<PlanStep> plan_;
  std::optional<ReleaseRecord> new_rel_, old_rel_;
  int new_count_ = 0;  // new instances currently desired
  int old_count_ = 0;  // stable instances currently desired
  int weight_ = 0;     // percent of traffic on the new release
  const EnvironmentSpec* env_ = nullptr;
  DeploymentPlacement placement_;
  // Router counters per agent when the weight last changed.
  std::map<std::string, ReleaseStats> base_new_, base_old_;
  std::set<std::string> lost_;         // agents left out by on_agent_loss
  std::set<std::string> unreachable_;  // agents whose loss of contact has an event
  int64_t last_analysis_ms_ = 0;
  // The continuous sequential test, from the first look at canary traffic on.
  std::optional<SequentialErrorCheck> sequential_;
  int64_t last_sequential_ms_ = 0;
  bool promoted_ = false;  // the last wait() ended by `ferry promote`
  // Unix ms when the running step's step_started event was committed.
  int64_t step_started_ms_ = 0;
  // Unix ms when the first step that sent traffic to the new release started (0: none
  // yet): the SLO budget guard counts the deployment's spend from there. A resumed runner
  // reads it back from that step's step_started event (traffic_start_from_events).
  int64_t traffic_since_ms_ = 0;
  bool keep_old_ = false;  // stop_old left the stable release's instances at weight 0
};

}  // namespace ferry
