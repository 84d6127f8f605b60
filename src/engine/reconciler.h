// Reconciler: "reconcile, don't call". Every change of what an agent should run is first
// recorded in the store per agent (AgentDesiredRecord, with a generation), then pushed to
// all agents of the environment in parallel. Agents that did not take it (a partition, a
// restarted agent or server) are retried in the background with backoff and jitter until
// they report that generation. The engine asks it who is behind before it claims a state
// (a rollback is `rolled_back` only when no agent is behind).
//
// The stored spec holds no secret values: releases, counts and the weight. The desired
// state an agent receives is rebuilt from it, the configuration and the current secrets.
//
// Thread safety: every public method may be called from any thread. No lock is held
// during an agent call or a store call.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "common/worker_pool.h"
#include "engine/engine.h"

namespace ferry {

// One agent's share of an app in an environment, without secrets (stored as JSON).
struct DesiredSpec {
  std::string new_release, old_release;  // old: the stable release, "" when none
  int new_count = 0, old_count = 0;
  int new_weight = 0;  // percent on the new release
  // This agent's slots (core/placement.h) of each release: the numbers in its instance ids
  // (counts are their sizes). Empty with a count: slots 0..count-1 (stored before placement).
  std::vector<int> new_slots, old_slots;
};
// One agent's share of `total` (whose counts are the environment's): the slots among the
// first new_count / old_count that the placements put on `agent`.
DesiredSpec share_of(const DesiredSpec& total, const std::vector<std::string>& new_placement,
                     const std::vector<std::string>& old_placement, const std::string& agent);
void to_json(Json& j, const DesiredSpec& s);
void from_json(const Json& j, DesiredSpec& s);

// Runs f(0) .. f(n-1) at once (on the process's WorkerPool: threads reused across calls,
// at most 256; n == 1: inline) and returns the results in order. Used for agent calls, each
// bounded by its client's own deadline, so the slowest agent, not the sum of all, bounds
// the wait.
template <typename R>
std::vector<R> fan_out(size_t n, const std::function<R(size_t)>& f) {
  std::vector<std::optional<R>> slots(n);
  WorkerPool::shared().run_all(n, [&](size_t i) { slots[i].emplace(f(i)); });
  std::vector<R> out;
  out.reserve(n);
  for (auto& s : slots) out.push_back(std::move(*s));
  return out;
}

// Whether an agent answers, since when it does not, and why (for events, logs, metrics).
struct AgentReach {
  std::string address;
  bool reachable = true;
  int64_t unreachable_since_ms = 0;  // monotonic ms of the first failed call in a row
  std::string error;
};

// An agent's standing towards one app: what it should have and what it reported.
struct AgentStanding {
  std::string agent, address, app, env;
  int64_t desired_generation = 0;
  int64_t reported_generation = 0;  // 0: not known yet
  bool behind() const { return reported_generation < desired_generation; }
  int64_t behind_since_ms = 0;  // unix ms; 0 when not behind
  int attempts = 0;             // failed pushes in a row
  std::string last_error;
  DesiredSpec spec;
};

class Reconciler {
 public:
  struct Options {
    int64_t tick_ms = 200;
    int64_t min_backoff_ms = 250;
    int64_t max_backoff_ms = 10'000;
    int64_t verify_ms = 5'000;  // how often caught-up agents are asked for their generation
  };
  Reconciler(EngineContext& ctx, std::function<std::shared_ptr<const Config>()> config,
             Options options);
  ~Reconciler();
  Reconciler(const Reconciler&) = delete;
  Reconciler& operator=(const Reconciler&) = delete;

  // Loads the stored desired state (after a restart every agent is checked) and starts the
  // retry loop. stop() ends it; both are idempotent.
  void start();
  void stop();

  // Records `spec` at `generation` for every agent of env (the store first: an error there
  // is returned and nothing is pushed), then pushes it to them all in parallel. The result
  // holds one status per agent name: ok when that agent took it. `weights_only`: an agent
  // that already runs the previous spec gets only the weights (the fast path).
  Result<std::map<std::string, Status>> apply(const std::string& app, const std::string& env,
                                              int64_t generation, const DesiredSpec& spec,
                                              const std::string& deployment_id,
                                              bool weights_only = false);
  // The same with each agent's own share (share_of); an agent of env missing from
  // `per_agent` gets `per_agent`'s releases and weight with no instances.
  Result<std::map<std::string, Status>> apply(const std::string& app, const std::string& env,
                                              int64_t generation,
                                              const std::map<std::string, DesiredSpec>& per_agent,
                                              const std::string& deployment_id,
                                              bool weights_only = false);

  // Agents of env (names) whose reported generation of app is below `generation`.
  std::vector<std::string> behind(const std::string& app, const std::string& env,
                                  int64_t generation);
  // Every (agent, app, env) the reconciler keeps, for status and metrics.
  std::vector<AgentStanding> standings();
  std::map<std::string, AgentReach> reachability();
  // Records the outcome of a call to `a` made elsewhere (status reads of the engine).
  void note_call(AgentClient& a, const Status& s);
  // Builds the state an agent receives for `spec` (for the engine's own pushes and tests).
  // `agent` picks the router's listen address (Config::listen_for).
  Result<AppDesiredState> build(const std::string& app, const std::string& env, int64_t generation,
                                const DesiredSpec& spec, const std::string& agent = "");
  // Runs one round of retries now (tests; the loop calls it every tick).
  void reconcile_once();

 private:
  struct Key {
    std::string agent, app, env;
    auto operator<=>(const Key&) const = default;
  };
  Status push(AgentClient& a, const AgentStanding& st, bool weights_only, int64_t prev_gen);
  void loop();
  AgentClient* find_agent(const std::string& env, const std::string& name);
  int64_t backoff_ms(int attempts) FERRY_REQUIRES(mu_);

  EngineContext& ctx_;
  std::function<std::shared_ptr<const Config>()> config_;
  Options options_;
  Mutex mu_;
  std::map<Key, AgentStanding> standings_ FERRY_GUARDED_BY(mu_);
  std::map<Key, int64_t> next_try_ms_ FERRY_GUARDED_BY(mu_);       // monotonic ms
  std::map<Key, int64_t> verified_at_ms_ FERRY_GUARDED_BY(mu_);    // monotonic ms
  std::map<std::string, AgentReach> reach_ FERRY_GUARDED_BY(mu_);  // by agent name
  std::mt19937_64 rng_ FERRY_GUARDED_BY(mu_){std::random_device{}()};
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace ferry
