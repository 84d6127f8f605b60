#include "engine/runner.h"

#include <fmt/format.h>

#include <algorithm>

#include "analysis/analysis.h"
#include "core/placement.h"
#include "engine/desired_state.h"
#include "engine/hook_runner.h"
#include "engine/host_verdict.h"

namespace ferry {

namespace {
constexpr int64_t kPollMs = 50;
constexpr int kCrashLoopRestarts = 3;

const ReleaseStats* find_stats(const AppStatus& s, const std::string& release) {
  for (const auto& r : s.releases)
    if (r.release == release) return &r;
  return nullptr;
}
}  // namespace

DeploymentRunner::DeploymentRunner(EngineContext& ctx, Reconciler& reconciler,
                                   std::shared_ptr<const Config> config,
                                   std::shared_ptr<Engine::Control> control, DeploymentRecord d)
    : ctx_(ctx),
      reconciler_(reconciler),
      config_(std::move(config)),
      control_(std::move(control)),
      d_(std::move(d)) {}

bool DeploymentRunner::flag(bool Engine::Control::*f, bool clear) {
  MutexLock lock(control_->mu);
  bool v = (*control_).*f;
  if (clear) (*control_).*f = false;
  return v;
}

void DeploymentRunner::enter_step(int index, const PlanStep* step) {
  MutexLock lock(control_->mu);
  control_->step = index;
  control_->step_description = step ? step->describe() : "";
  // Pauses (timed or until promote) and the wait before old instances stop end early on
  // a promote; nothing else may be skipped by one (an analysis decides by itself).
  control_->promotable =
      step && (step->kind == PlanStep::Kind::kPause ||
               (step->kind == PlanStep::Kind::kStopOld && step->duration_ms > 0));
  control_->promote = false;
}

// A store outage (kUnavailable) holds the deployment where it is: the agents keep the last
// desired state and the routers their weights, and the same write is tried again with
// backoff until the store answers or the engine stops. A write whose answer was lost in
// the outage may have landed: a version conflict right after one is checked against the
// stored record before it counts as a conflict.
Status DeploymentRunner::write_holding(const std::function<Status()>& write) {
  Status s = write();
  auto backoff = std::chrono::milliseconds(200);
  bool held = false;
  while (s.code() == Code::kUnavailable) {
    if (!held)
      ctx_.log->warn("the store is unavailable; the deployment holds its step until it is back",
                     {{"deployment_id", d_.id}, {"step", d_.current_step}, {"error", s.message()}});
    held = true;
    {
      MutexLock l(control_->mu);
      if (l.wait_for(control_->cv, backoff,
                     [&]() FERRY_REQUIRES(control_->mu) { return control_->stop; }))
        return s;
    }
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    s = write();
  }
  if (held && s.code() == Code::kConflict) {
    auto stored = ctx_.store->get_deployment(d_.id);
    if (stored.ok() && stored->version == d_.version + 1 && stored->state == d_.state &&
        stored->current_step == d_.current_step && stored->step_state == d_.step_state) {
      d_.version = stored->version;
      return Status::Ok();
    }
  }
  if (held && s.ok())
    ctx_.log->info("the store is back; the deployment goes on", {{"deployment_id", d_.id}});
  return s;
}

Status DeploymentRunner::commit(EventType type, int step, const std::string& message,
                                const Json& data) {
  d_.updated_at_ms = to_unix_ms(ctx_.clock->now());
  DeploymentEvent e{.deployment_id = d_.id,
                    .time_ms = d_.updated_at_ms,
                    .type = type,
                    .step = step,
                    .message = ctx_.masker ? ctx_.masker->mask(message) : message,
                    .data = data};
  Status s = write_holding([&] { return ctx_.store->update_deployment(d_, {e}); });
  if (!s.ok()) {
    ctx_.log->error("committing deployment state failed",
                    {{"deployment_id", d_.id}, {"error", s.to_string()}});
    return s;
  }
  ctx_.log->info(e.message, {{"deployment_id", d_.id},
                             {"app", d_.app},
                             {"env", d_.env},
                             {"release", d_.release},
                             {"event", std::string(to_string(type))},
                             {"step", step}});
  if (ctx_.on_event) ctx_.on_event(e, d_);
  return s;
}

void DeploymentRunner::run() {
  const AppSpec* spec = config_->app(d_.app);
  if (!spec) {
    d_.state = DeploymentState::kFailed;
    d_.reason = "app " + d_.app + " is no longer in the configuration";
    d_.finished_at_ms = to_unix_ms(ctx_.clock->now());
    (void)commit(EventType::kFailed, -1, d_.reason);
    return;
  }
  app_ = config_->app_for_env(*spec, d_.env);
  env_ = config_->environment(d_.env);
  for (const auto& j : d_.plan) plan_.push_back(j.get<PlanStep>());
  auto nr = ctx_.store->get_release(d_.app, d_.release);
  // The store is away: leave the deployment as it is; the engine starts it again later.
  if (nr.status().code() == Code::kUnavailable) return;
  if (nr.ok()) new_rel_ = *nr;
  if (!d_.previous_release.empty()) {
    auto orr = ctx_.store->get_release(d_.app, d_.previous_release);
    if (orr.ok()) old_rel_ = *orr;
  }

  if (d_.state == DeploymentState::kPending || d_.state == DeploymentState::kWaiting) {
    if (!pass_gates()) return;
  }

  if (!load_placement()) return;

  // Rebuild what the agents should run at the resume point from the steps done so far.
  old_count_ = old_rel_ ? app_.instances : 0;
  for (int i = 0; i < d_.current_step && i < static_cast<int>(plan_.size()); ++i) {
    const auto& s = plan_[i];
    if (s.kind == PlanStep::Kind::kStart) new_count_ = s.count;
    if (s.kind == PlanStep::Kind::kWeight) weight_ = s.weight;
    if (s.kind == PlanStep::Kind::kBatch) {
      new_count_ = s.total;
      old_count_ = std::max(0, app_.instances - s.total);
      weight_ = s.weight;
    }
    if (s.kind == PlanStep::Kind::kStopOld) {
      keep_old_ =
          app_.keep_previous_ms > 0 && old_rel_ && old_count_ > 0 && d_.strategy != "rollback";
      if (!keep_old_) old_count_ = 0;
    }
  }
  if (d_.state == DeploymentState::kRollingBack) {
    // The process stopped while agents were being brought back: bring them back again
    // and claim rolled_back only once every one reports it.
    bool aborted = false;
    auto events = ctx_.store->list_events(d_.id, 0, 1000);
    if (events.ok())
      for (const auto& e : *events)
        if (e.type == EventType::kRollbackStarted) aborted = e.data.value("aborted", false);
    // The stored reason already names the agents that were behind: they are named anew.
    d_.reason = d_.reason.substr(0, d_.reason.find("; agents still behind: "));
    finish_rollback(d_.reason, Json{{"reason", d_.reason}, {"resumed", true}}, aborted);
    return;
  }
  traffic_start_from_events();
  int index = std::max(0, d_.current_step);
  if (d_.current_step >= 0 && d_.step_state == "done") ++index;
  if (d_.current_step >= 0 && d_.step_state == "running") {
    // The process stopped in the middle of this step: the policy says what to do.
    if (app_.rollback_policy == "rollback" && old_rel_) {
      if (d_.current_step > 0 && plan_[d_.current_step].kind == PlanStep::Kind::kStart)
        new_count_ = plan_[d_.current_step].count;
      roll_back("the control plane restarted during step " + std::to_string(d_.current_step + 1) +
                    " and the rollback policy is 'rollback'",
                Json::object(), false);
      return;
    }
    (void)commit(EventType::kResumed, d_.current_step,
                 "resuming step " + std::to_string(d_.current_step + 1) + " after a restart");
  }
  if (d_.state != DeploymentState::kPaused) {
    d_.state = DeploymentState::kRunning;
  }

  for (; index < static_cast<int>(plan_.size()); ++index) {
    const PlanStep& step = plan_[index];
    d_.current_step = index;
    d_.step_state = "running";
    // Published before the event: whoever sees step_started may promote this step.
    enter_step(index, &step);
    if (!commit(EventType::kStepStarted, index, step.describe(), step).ok()) return;
    step_started_ms_ = d_.updated_at_ms;
    StepResult r = run_step(index, step);
    enter_step(index, nullptr);
    if (r.outcome == Outcome::kStop) return;  // leave it open; resumed on next start
    if (r.outcome == Outcome::kAbort) {
      roll_back(r.reason.empty() ? "aborted" : r.reason, r.details, true);
      return;
    }
    if (r.outcome == Outcome::kFail) {
      roll_back(r.reason, r.details, false);
      return;
    }
    d_.step_state = "done";
    if (!commit(EventType::kStepFinished, index, step.describe() + ": done", r.details).ok())
      return;
  }
}

bool DeploymentRunner::load_placement() {
  auto stored = stored_placement(*ctx_.store, d_.id);
  if (!stored.ok()) {
    ctx_.log->warn("reading the deployment's placement failed; it is resumed later",
                   {{"deployment_id", d_.id}, {"error", stored.status().message()}});
    return false;
  }
  if (*stored) {
    placement_ = **stored;
    return true;
  }
  // Every count the plan asks for fits: a canary starts at least one (core/plan.cpp).
  int total = app_.instances;
  for (const auto& s : plan_) total = std::max({total, s.count, s.total});
  const auto agents = ctx_.agents(d_.env);
  auto placed = place_on(*config_, env_, agents, total);
  Result<std::vector<std::string>> old = std::vector<std::string>{};
  if (placed.ok() && old_rel_)
    old = stable_placement(*ctx_.store, *config_, d_.app, d_.env, agents, app_.instances);
  if (!placed.ok() || !old.ok()) {
    const Status& why = placed.ok() ? old.status() : placed.status();
    if (why.code() == Code::kUnavailable) return false;
    d_.state = DeploymentState::kFailed;
    d_.reason = fmt::format("cannot place {} instance(s) of {} in environment {}: {}", total,
                            d_.app, d_.env, why.message());
    d_.finished_at_ms = to_unix_ms(ctx_.clock->now());
    (void)commit(EventType::kFailed, d_.current_step, d_.reason);
    return false;
  }
  placement_ = {.new_release = std::move(*placed), .old_release = std::move(*old)};
  Json per_agent = Json::object();
  for (AgentClient* a : agents)
    per_agent[a->name()] =
        static_cast<int>(slots_on(placement_.new_release, total, a->name()).size());
  return commit(EventType::kPlaced, d_.current_step,
                fmt::format("{} instance(s) of {} placed: {}", total, d_.release,
                            describe_placement(placement_.new_release)),
                Json{{"placement", placement_}, {"per_agent", per_agent}})
      .ok();
}

Status DeploymentRunner::replace_lost_share(const std::string& agent) {
  const auto agents = ctx_.agents(d_.env);
  const auto in = placement_agents(*config_, agents);
  const auto rules = placement_rules(env_);
  const std::vector<std::string> gone(lost_.begin(), lost_.end());
  auto moved_new = move_off(placement_.new_release, gone, in, rules);
  if (!moved_new.ok()) return moved_new.status();
  auto moved_old = move_off(placement_.old_release, gone, in, rules);
  if (!moved_old.ok()) return moved_old.status();
  if (*moved_new == placement_.new_release && *moved_old == placement_.old_release)
    return Status::Ok();  // it ran nothing of this deployment
  placement_ = {.new_release = std::move(*moved_new), .old_release = std::move(*moved_old)};
  Json per_agent = Json::object();
  for (AgentClient* a : agents)
    per_agent[a->name()] = static_cast<int>(
        slots_on(placement_.new_release, static_cast<int>(placement_.new_release.size()), a->name())
            .size());
  FERRY_RETURN_IF_ERROR(
      commit(EventType::kPlaced, d_.current_step,
             fmt::format("the instances of agent {} are placed on the others: {}", agent,
                         describe_placement(placement_.new_release)),
             Json{{"placement", placement_}, {"per_agent", per_agent}, {"moved_from", agent}}));
  // Every agent's new share at once; the lost one is told it runs none (when it is back).
  return put_state(new_count_, old_count_, weight_);
}

int DeploymentRunner::share_on(const std::string& agent, int count) const {
  return static_cast<int>(slots_on(placement_.new_release, count, agent).size());
}

bool DeploymentRunner::pass_gates() {
  while (true) {
    GateDecision g;
    if (ctx_.gates) g = ctx_.gates(d_);
    if (g.verdict == GateDecision::Verdict::kGo) {
      d_.state = DeploymentState::kRunning;
      d_.reason.clear();
      if (!commit(EventType::kGatesPassed, -1, "all gates passed").ok()) return false;
      if (ctx_.audit) ctx_.audit("deployment.start", d_, Json::object());
      return true;
    }
    if (g.verdict == GateDecision::Verdict::kRefuse) {
      d_.state = DeploymentState::kFailed;
      d_.reason = g.reason;
      d_.finished_at_ms = to_unix_ms(ctx_.clock->now());
      (void)commit(EventType::kGateRefused, -1, g.reason);
      return false;
    }
    if (d_.state != DeploymentState::kWaiting || d_.reason != g.reason) {
      d_.state = DeploymentState::kWaiting;
      d_.reason = g.reason;
      if (!commit(EventType::kGateWaiting, -1, "waiting: " + g.reason).ok()) return false;
    }
    MutexLock lock(control_->mu);
    ++control_->rounds;
    lock.wait_for(control_->cv, std::chrono::seconds(1), [&]() FERRY_REQUIRES(control_->mu) {
      return control_->stop || control_->abort || control_->poke;
    });
    control_->poke = false;
    if (control_->stop) return false;
    if (control_->abort) {
      lock.unlock();
      d_.state = DeploymentState::kAborted;
      d_.reason = "aborted while waiting for gates";
      d_.finished_at_ms = to_unix_ms(ctx_.clock->now());
      (void)commit(EventType::kAborted, -1, d_.reason);
      return false;
    }
  }
}

DeploymentRunner::StepResult DeploymentRunner::run_step(int, const PlanStep& step) {
  switch (step.kind) {
    case PlanStep::Kind::kHooks:
      return step_hooks(step.phase);
    case PlanStep::Kind::kStart:
      return step_start(step.count);
    case PlanStep::Kind::kWeight:
      return step_weight(step.weight);
    case PlanStep::Kind::kPause:
      return step_watch(step, false);
    case PlanStep::Kind::kAnalysis:
      return step_watch(step, true);
    case PlanStep::Kind::kBatch:
      return step_batch(step);
    case PlanStep::Kind::kStopOld:
      return step_stop_old(step);
    case PlanStep::Kind::kFinish:
      return step_finish();
  }
  return {};
}

Status DeploymentRunner::put_state(int new_count, int old_count, int new_weight) {
  return apply(new_count, old_count, new_weight, false);
}

Status DeploymentRunner::set_weight(int new_weight) {
  return apply(new_count_, old_count_, new_weight, true);
}

Status DeploymentRunner::apply(int new_count, int old_count, int new_weight, bool weights_only) {
  d_.generation = next_generation(d_.generation, ctx_.clock->now());
  DesiredSpec spec{.new_release = new_rel_ ? d_.release : "",
                   .old_release = old_rel_ ? d_.previous_release : "",
                   .new_count = new_count,
                   .old_count = old_count,
                   .new_weight = new_weight};
  // Each agent gets its share of the counts, by the deployment's placement.
  std::map<std::string, DesiredSpec> per_agent;
  for (AgentClient* a : ctx_.agents(d_.env))
    per_agent.emplace(a->name(),
                      share_of(spec, placement_.new_release, placement_.old_release, a->name()));
  // The reconciler writes each agent's desired state to the store first: while the store
  // is unavailable the step holds (as every other write of the runner does).
  auto results = reconciler_.apply(d_.app, d_.env, d_.generation, per_agent, d_.id, weights_only);
  (void)write_holding([&] {
    if (results.ok() || results.status().code() != Code::kUnavailable) return Status::Ok();
    results = reconciler_.apply(d_.app, d_.env, d_.generation, per_agent, d_.id, weights_only);
    return results.ok() ? Status::Ok() : results.status();
  });
  const std::string what = weights_only ? "setting weights of " : "setting desired state of ";
  if (!results.ok()) return results.status().with_context(what + agent_app());
  for (const auto& [agent, st] : *results)
    if (!st.ok() && !is_unreachable(st) && counted(agent))
      return st.with_context(what + agent_app() + " on agent " + agent);
  new_count_ = new_count;
  old_count_ = old_count;
  weight_ = new_weight;
  if (new_weight > 0 && traffic_since_ms_ == 0)
    traffic_since_ms_ = step_started_ms_ > 0 ? step_started_ms_ : to_unix_ms(ctx_.clock->now());
  return Status::Ok();
}

void DeploymentRunner::traffic_start_from_events() {
  // The first step that gives the new release traffic: a weight or batch step with a
  // weight, or the start step of a first deployment (it opens all traffic once ready).
  int first = -1;
  for (int i = 0; i < static_cast<int>(plan_.size()) && first < 0; ++i)
    if (sends_traffic(plan_[i], !old_rel_)) first = i;
  if (first < 0 || d_.current_step < first || (d_.current_step == first && d_.step_state.empty()))
    return;
  auto events = ctx_.store->list_events(d_.id, 0, 1000);
  if (events.ok())
    for (const auto& e : *events)
      if (e.type == EventType::kStepStarted && e.step == first) {
        traffic_since_ms_ = e.time_ms;
        return;
      }
  // Not found (the store is away, or the events were cut): the whole deployment counts.
  traffic_since_ms_ = d_.created_at_ms;
}

std::vector<DeploymentRunner::AgentRead> DeploymentRunner::read_agents() {
  const std::vector<AgentClient*> agents = ctx_.agents(d_.env);
  const std::string app = agent_app();
  return fan_out<AgentRead>(agents.size(), [&](size_t i) {
    AgentClient& a = *agents[i];
    AgentRead r{a.name(), a.address(), a.app_status(app)};
    reconciler_.note_call(a, r.status.ok() ? Status::Ok() : r.status.status());
    return r;
  });
}

Result<AppStatus> DeploymentRunner::app_status() {
  std::optional<AppStatus> total;
  for (auto& r : read_agents()) {
    if (!counted(r.agent)) continue;
    if (!r.status.ok()) return r.status.status();
    if (!total)
      total = std::move(*r.status);
    else
      merge_status(*total, *r.status);
  }
  if (!total) return unavailable("environment " + d_.env + " has no agent to count");
  return *total;
}

void DeploymentRunner::report_reachability() {
  for (const auto& [name, r] : reconciler_.reachability()) {
    const std::string who = "agent " + name + " (" + r.address + ")";
    if (r.reachable) {
      if (unreachable_.erase(name))
        (void)commit(EventType::kAgentReachable, d_.current_step, who + " answers again",
                     Json{{"agent", name}, {"address", r.address}});
    } else if (unreachable_.insert(name).second) {
      (void)commit(EventType::kAgentUnreachable, d_.current_step,
                   who + " does not answer: " + r.error,
                   Json{{"agent", name}, {"address", r.address}, {"error", r.error}});
    }
  }
}

std::optional<DeploymentRunner::StepResult> DeploymentRunner::check_agents() {
  if (!env_) return std::nullopt;
  report_reachability();
  const auto reach = reconciler_.reachability();
  const int64_t now = ctx_.clock->monotonic_ms();
  const auto agents = ctx_.agents(d_.env);
  int answering = 0;
  for (AgentClient* a : agents) {
    auto it = reach.find(a->name());
    if (counted(a->name()) && (it == reach.end() || it->second.reachable)) ++answering;
  }
  for (AgentClient* a : agents) {
    const std::string name = a->name();
    auto it = reach.find(name);
    if (it == reach.end()) continue;
    const AgentReach& r = it->second;
    const std::string who = "agent " + name + " (" + r.address + ")";
    if (r.reachable) {
      if (lost_.erase(name)) {
        // Counted again from now: its counters so far are not the canary's.
        base_new_.erase(name);
        base_old_.erase(name);
        sequential_.reset();
      }
      continue;
    }
    if (lost_.count(name)) continue;
    const int64_t down_ms = now - r.unreachable_since_ms;
    if (down_ms < env_->agent_timeout_ms) continue;
    const std::string why = fmt::format("{} unreachable for {} ms (agent_timeout {} ms): {}", who,
                                        down_ms, env_->agent_timeout_ms, r.error);
    Json data{{"agent", name},
              {"address", r.address},
              {"error", r.error},
              {"unreachable_ms", down_ms},
              {"policy", env_->on_agent_loss}};
    if (env_->on_agent_loss == "rollback") {
      (void)commit(EventType::kAgentLost, d_.current_step, why + "; on_agent_loss: rollback", data);
      return StepResult{Outcome::kFail, why, data};
    }
    lost_.insert(name);
    sequential_.reset();
    if (env_->on_agent_loss == "continue" && answering >= env_->min_available) {
      (void)commit(EventType::kAgentLost, d_.current_step,
                   fmt::format("{}; on_agent_loss: continue on {} agent(s) (min_available {})", why,
                               answering, env_->min_available),
                   data);
      Status moved = replace_lost_share(name);
      if (moved.ok()) continue;
      // The others cannot take its instances: an operator decides, as for pause.
      (void)commit(EventType::kAgentLost, d_.current_step,
                   fmt::format("{}; its instances cannot be placed elsewhere ({}); paused", who,
                               moved.message()),
                   data);
      MutexLock lock(control_->mu);
      control_->pause = true;
      continue;
    }
    // pause, or continue without min_available agents: an operator decides (`ferry
    // resume` goes on without the agent; the reconciler brings it back when it answers).
    const std::string policy =
        env_->on_agent_loss == "pause"
            ? std::string("on_agent_loss: pause")
            : fmt::format(
                  "on_agent_loss: continue needs min_available {} agent(s), {} answer; "
                  "paused",
                  env_->min_available, answering);
    (void)commit(EventType::kAgentLost, d_.current_step, why + "; " + policy, data);
    MutexLock lock(control_->mu);
    control_->pause = true;
  }
  return std::nullopt;
}

std::optional<DeploymentRunner::StepResult> DeploymentRunner::check_instances(const AppStatus& s) {
  for (const auto& i : s.instances) {
    if (i.release != d_.release) continue;
    if (i.restarts >= kCrashLoopRestarts || i.state == InstanceState::kCrashed) {
      return StepResult{Outcome::kFail,
                        fmt::format("instance {} of {} is crash-looping ({} restarts, last exit "
                                    "code {}): {}",
                                    i.id, d_.release, i.restarts, i.last_exit_code, i.message),
                        Json{{"instance", i}}};
    }
  }
  return std::nullopt;
}

std::optional<DeploymentRunner::StepResult> DeploymentRunner::wait(
    int64_t ms, bool wake_on_promote, const std::function<std::optional<StepResult>()>& tick) {
  const int64_t start = ctx_.clock->monotonic_ms();
  promoted_ = false;
  while (true) {
    if (flag(&Engine::Control::stop)) return StepResult{Outcome::kStop};
    if (flag(&Engine::Control::abort)) return StepResult{Outcome::kAbort, "aborted by request"};
    if (flag(&Engine::Control::pause)) {
      if (d_.state != DeploymentState::kPaused) {
        d_.state = DeploymentState::kPaused;
        (void)commit(EventType::kPaused, d_.current_step, "paused");
      }
    } else if (d_.state == DeploymentState::kPaused) {
      d_.state = DeploymentState::kRunning;
      (void)commit(EventType::kResumed, d_.current_step, "resumed");
    }
    if (wake_on_promote && flag(&Engine::Control::promote, true)) {
      promoted_ = true;
      return std::nullopt;
    }
    if (auto r = check_agents()) return r;
    // The SLO budget guard, on every tick once the new release has traffic (the guard
    // answers from memory: server/slo_service.h). A rollback is never rolled back by it:
    // that would bring back the release it leaves.
    if (ctx_.budget_guard && traffic_since_ms_ > 0 && d_.strategy != "rollback")
      if (auto why = ctx_.budget_guard(d_, traffic_since_ms_))
        return StepResult{Outcome::kFail, *why,
                          Json{{"budget_guard", Json{{"traffic_since_ms", traffic_since_ms_}}}}};
    if (tick) {
      if (auto r = tick()) return r;
    }
    const int64_t elapsed = ctx_.clock->monotonic_ms() - start;
    if (ms >= 0 && elapsed >= ms && d_.state != DeploymentState::kPaused) return std::nullopt;
    MutexLock lock(control_->mu);
    ++control_->rounds;
    lock.wait_for(
        control_->cv, std::chrono::milliseconds(kPollMs), [&]() FERRY_REQUIRES(control_->mu) {
          return control_->stop || control_->abort || (wake_on_promote && control_->promote);
        });
  }
}

DeploymentRunner::StepResult DeploymentRunner::step_start(int count) {
  const int new_weight = old_rel_ ? weight_ : 100;
  Status s = put_state(count, old_count_, old_rel_ ? weight_ : 0);
  if (!s.ok()) return {Outcome::kFail, s.message()};
  const int64_t t0 = ctx_.clock->monotonic_ms();
  std::string last;
  // Only agents that do not answer keep the step from being ready: the progress deadline
  // then waits for on_agent_loss (check_agents) instead of failing the release.
  bool only_unreachable = false;
  auto tick = [&]() -> std::optional<StepResult> {
    const auto reads = read_agents();
    std::vector<std::string> waiting;
    only_unreachable = true;
    last.clear();
    for (const auto& r : reads) {
      if (!counted(r.agent)) continue;
      if (!r.status.ok()) {
        waiting.push_back(r.agent);
        if (!is_unreachable(r.status.status())) only_unreachable = false;
        last = r.status.status().message();
        continue;
      }
      if (auto bad = check_instances(*r.status)) {
        bad->reason = "on agent " + r.agent + ": " + bad->reason;
        return bad;
      }
      // Readiness is counted per host: each agent must have its own share of the `count`
      // new instances ready (the placement's); another host's ready ones never count.
      const int want = share_on(r.agent, count);
      int ready = 0;
      std::string note;
      for (const auto& i : r.status->instances) {
        if (i.release != d_.release) continue;
        if (i.state == InstanceState::kReady)
          ++ready;
        else if (!i.message.empty())
          note = i.id + ": " + i.message;
      }
      if (ready < want) {
        waiting.push_back(r.agent);
        only_unreachable = false;
        last = fmt::format("agent {}: {} of {} ready{}", r.agent, ready, want,
                           note.empty() ? "" : " (" + note + ")");
      }
    }
    if (waiting.empty()) {
      Json per_agent = Json::object();
      for (const auto& r : reads)
        if (counted(r.agent)) per_agent[r.agent] = share_on(r.agent, count);
      return StepResult{Outcome::kDone, "", Json{{"ready_per_agent", per_agent}}};
    }
    return std::nullopt;
  };
  auto r = wait(app_.progress_deadline_ms, false, tick);
  while (!r && only_unreachable) r = wait(kPollMs * 4, false, tick);
  if (r && r->outcome != Outcome::kDone) return *r;
  if (!r) {
    return {Outcome::kFail,
            fmt::format("{} new instance(s) of {} ({}) were not ready within the progress "
                        "deadline of {} ms{}",
                        count, d_.release,
                        describe_placement(std::vector<std::string>(
                            placement_.new_release.begin(),
                            placement_.new_release.begin() +
                                std::min<size_t>(count, placement_.new_release.size()))),
                        app_.progress_deadline_ms, last.empty() ? "" : " (" + last + ")")};
  }
  if (!old_rel_ && new_weight == 100) {
    // First deployment: nothing to compare with; open traffic as soon as it is ready.
    Status w = set_weight(100);
    if (!w.ok()) return {Outcome::kFail, w.message()};
  }
  r->details["ready_after_ms"] = ctx_.clock->monotonic_ms() - t0;
  return *r;
}

DeploymentRunner::StepResult DeploymentRunner::step_weight(int weight) {
  Status s = set_weight(weight);
  if (!s.ok()) return {Outcome::kFail, s.message()};
  base_new_.clear();
  base_old_.clear();
  set_baselines(read_agents());
  last_analysis_ms_ = ctx_.clock->monotonic_ms();
  return {Outcome::kDone, "", Json{{"weight", weight}}};
}

void DeploymentRunner::set_baselines(const std::vector<AgentRead>& reads) {
  for (const auto& r : reads) {
    if (!r.status.ok() || base_new_.count(r.agent)) continue;
    ReleaseStats n, o;
    if (auto* x = find_stats(*r.status, d_.release)) n = *x;
    if (auto* x = find_stats(*r.status, d_.previous_release)) o = *x;
    n.release = d_.release;
    o.release = d_.previous_release;
    base_new_[r.agent] = n;
    base_old_[r.agent] = o;
  }
}

std::optional<AppStatus> DeploymentRunner::traffic_since_baseline(
    const std::vector<AgentRead>& reads) {
  // An agent first seen now starts from its counters now (it joined, or answered again).
  set_baselines(reads);
  std::optional<AppStatus> total;
  for (const auto& r : reads) {
    if (!counted(r.agent)) continue;
    if (!r.status.ok()) return std::nullopt;
    AppStatus part;
    part.instances = r.status->instances;
    if (auto* n = find_stats(*r.status, d_.release))
      part.releases.push_back(stats_delta(base_new_[r.agent], *n));
    if (auto* o = find_stats(*r.status, d_.previous_release))
      part.releases.push_back(stats_delta(base_old_[r.agent], *o));
    if (!total)
      total = std::move(part);
    else
      merge_status(*total, part);
  }
  return total;
}

DeploymentRunner::StepResult DeploymentRunner::step_watch(const PlanStep& step, bool is_analysis) {
  const AnalysisSpec& spec = app_.analysis;
  std::map<std::string, std::string> vars{
      {"app", d_.app}, {"env", d_.env}, {"release", d_.release}};
  std::optional<AnalysisResult> last;
  int inconclusive = 0;
  // Each host's share of the new release since the weight change (of the last reads): a
  // failed verdict names a host much worse than the others (engine/host_verdict.h).
  std::vector<HostTraffic> hosts;
  auto note_hosts = [&](const std::vector<AgentRead>& reads) {
    hosts.clear();
    for (const auto& r : reads) {
      if (!counted(r.agent) || !r.status.ok()) continue;
      const ReleaseStats* n = find_stats(*r.status, d_.release);
      if (!n) continue;
      auto it = base_new_.find(r.agent);
      const ReleaseStats d = it == base_new_.end() ? *n : stats_delta(it->second, *n);
      hosts.push_back({r.agent, d.requests, d.status_5xx + d.upstream_errors});
    }
  };
  auto blame = [&](std::string why, Json& data) {
    data["hosts"] = hosts_json(hosts);
    if (auto w = worst_host(hosts, d_.release)) {
      why += "; worst " + w->text;
      data["worst_host"] = w->agent;
    }
    return why;
  };
  // `have`: the traffic since the weight change (traffic_since_baseline), else read now.
  auto evaluate = [&](const AppStatus* have) -> std::optional<AnalysisResult> {
    std::optional<AppStatus> fetched;
    if (have)
      fetched = *have;
    else
      fetched = traffic_since_baseline(read_agents());
    if (!fetched) return std::nullopt;
    const AppStatus& st = *fetched;
    const ReleaseStats* n = find_stats(st, d_.release);
    if (!n) return std::nullopt;
    const ReleaseStats* o = find_stats(st, d_.previous_release);
    auto r = analyse(spec, *n, o, ctx_.prom, vars);
    r.metrics["test"] = "interval";
    return r;
  };
  // The sequential test: every few polls, from the same counters, valid however often it
  // looks; a clearly bad canary is stopped after a handful of requests.
  auto sequential = [&](const AppStatus& st) -> std::optional<StepResult> {
    if (!spec.sequential.enabled || !old_rel_) return std::nullopt;
    const int64_t now = ctx_.clock->monotonic_ms();
    if (sequential_ && now - last_sequential_ms_ < spec.sequential.interval_ms) return std::nullopt;
    last_sequential_ms_ = now;
    const ReleaseStats* n = find_stats(st, d_.release);
    if (!n) return std::nullopt;
    if (!sequential_) {
      // From the counters at the weight change: the canary's first requests count too.
      // From the counters at the weight change (st is the traffic since then): the
      // canary's first requests count too.
      sequential_.emplace(spec.sequential);
      const ReleaseStats zero_new{.release = d_.release}, zero_old{.release = d_.previous_release};
      sequential_->start_from(zero_new, &zero_old);
    }
    sequential_->observe(*n, find_stats(st, d_.previous_release));
    auto v = sequential_->verdict(spec.max_error_rate);
    if (!v) return std::nullopt;
    Json data{
        {"verdict", "fail"}, {"test", "sprt"}, {"reasons", v->reasons}, {"metrics", v->metrics}};
    const std::string why = blame(fmt::format("{}", fmt::join(v->reasons, "; ")), data);
    (void)commit(EventType::kAnalysis, d_.current_step, "analysis failed: " + why, data);
    return StepResult{Outcome::kFail, why, Json{{"analysis", v->metrics}}};
  };
  auto tick = [&]() -> std::optional<StepResult> {
    const auto reads = read_agents();
    for (const auto& r : reads)
      if (counted(r.agent) && r.status.ok())
        if (auto bad = check_instances(*r.status)) {
          bad->reason = "on agent " + r.agent + ": " + bad->reason;
          return bad;
        }
    // Traffic on the new release is analysed continuously, not only at analysis steps,
    // so a bad canary is rolled back within an interval of its first errors.
    if (weight_ <= 0) return std::nullopt;
    // Only the whole picture is analysed: while a counted agent does not answer, wait.
    auto traffic = traffic_since_baseline(reads);
    if (!traffic) return std::nullopt;
    note_hosts(reads);
    if (auto bad = sequential(*traffic)) return bad;
    const int64_t now = ctx_.clock->monotonic_ms();
    if (now - last_analysis_ms_ < spec.interval_ms) return std::nullopt;
    last_analysis_ms_ = now;
    last = evaluate(&*traffic);
    // One bad host diluted by good ones can pass the sum: judged on its own too.
    if (spec.per_host && !(last && last->verdict == Verdict::kFail))
      if (auto bad = failing_host(hosts, d_.release, spec.max_error_rate)) {
        Json data{{"verdict", "fail"},
                  {"test", "per_host"},
                  {"worst_host", bad->agent},
                  {"hosts", hosts_json(hosts)}};
        const std::string why =
            fmt::format("one host much worse than the others: {} (above max_error_rate {:.1f}%)",
                        bad->text, spec.max_error_rate * 100);
        (void)commit(EventType::kAnalysis, d_.current_step, "analysis failed: " + why, data);
        return StepResult{Outcome::kFail, why, Json{{"analysis", data}}};
      }
    if (last && last->verdict == Verdict::kFail) {
      Json data{{"verdict", "fail"},
                {"test", "interval"},
                {"reasons", last->reasons},
                {"metrics", last->metrics}};
      const std::string why = blame(fmt::format("{}", fmt::join(last->reasons, "; ")), data);
      (void)commit(EventType::kAnalysis, d_.current_step, "analysis failed: " + why, data);
      return StepResult{Outcome::kFail, why, Json{{"analysis", last->metrics}}};
    }
    return std::nullopt;
  };
  const bool until_promote = step.kind == PlanStep::Kind::kPause && step.until_promote;
  if (until_promote)
    (void)commit(EventType::kWaitingPromote, d_.current_step, "waiting for `ferry promote`");
  // A promote ends any pause, timed or not; an analysis step is not promotable.
  auto r = wait(until_promote ? -1 : step.duration_ms, !is_analysis, tick);
  if (r) return *r;
  if (!is_analysis) return {Outcome::kDone, "", Json{{"ended_by", promoted_ ? "promote" : "time"}}};
  // End of an analysis step: the verdict over the whole step decides.
  while (true) {
    const auto reads = read_agents();
    auto traffic = traffic_since_baseline(reads);
    if (!traffic) {
      // A counted agent does not answer: wait for it, or for on_agent_loss to decide.
      auto again = wait(spec.interval_ms, false, tick);
      if (again) return *again;
      continue;
    }
    last = evaluate(&*traffic);
    note_hosts(reads);
    if (!last) {
      std::string agents;
      for (const auto& r : reads)
        if (counted(r.agent)) agents += (agents.empty() ? "" : ", ") + r.agent;
      return {Outcome::kFail,
              "no router statistics for " + d_.release + " to analyse on agent(s) " + agents};
    }
    Json data{{"verdict", to_string(last->verdict)},
              {"test", "interval"},
              {"reasons", last->reasons},
              {"metrics", last->metrics}};
    std::string why = fmt::format("{}", fmt::join(last->reasons, "; "));
    if (last->verdict == Verdict::kFail) why = blame(why, data);
    (void)commit(EventType::kAnalysis, d_.current_step,
                 fmt::format("analysis {}: {}", to_string(last->verdict), why), data);
    if (last->verdict == Verdict::kPass) return {Outcome::kDone, "", data};
    if (last->verdict == Verdict::kFail) return {Outcome::kFail, why, data};
    if (++inconclusive > spec.max_inconclusive)
      return {Outcome::kFail,
              fmt::format("analysis inconclusive {} times in a row: {}", inconclusive,
                          fmt::join(last->reasons, "; ")),
              data};
    auto again = wait(spec.interval_ms, false, tick);
    if (again) return *again;
  }
}

DeploymentRunner::StepResult DeploymentRunner::step_batch(const PlanStep& step) {
  // Surge first (start the new batch, wait ready), then shift traffic, then stop the
  // same number of old instances: with max_unavailable 0 capacity never drops.
  const int old_after = std::max(0, app_.instances - step.total);
  StepResult started = step_start(step.total);
  if (started.outcome != Outcome::kDone) return started;
  Status s = put_state(step.total, old_after, step.weight);
  if (!s.ok()) return {Outcome::kFail, s.message()};
  return {Outcome::kDone, "", Json{{"new", step.total}, {"old", old_after}}};
}

DeploymentRunner::StepResult DeploymentRunner::step_stop_old(const PlanStep& step) {
  if (weight_ < 100) {
    Status w = set_weight(100);
    if (!w.ok()) return {Outcome::kFail, w.message()};
  }
  if (step.duration_ms > 0) {
    auto r = wait(step.duration_ms, true, [&]() -> std::optional<StepResult> {
      auto st = app_status();
      if (st.ok())
        if (auto bad = check_instances(*st)) return bad;
      return std::nullopt;
    });
    if (r) return *r;
  }
  // keep_previous: the stable release's instances stay, at weight 0, so a rollback needs
  // no start; the engine stops them when the time is up. A rollback never keeps the
  // release it rolled back from.
  keep_old_ = app_.keep_previous_ms > 0 && old_rel_ && old_count_ > 0 && d_.strategy != "rollback";
  Status s = put_state(new_count_, keep_old_ ? old_count_ : 0, 100);
  if (!s.ok()) return {Outcome::kFail, s.message()};
  if (keep_old_)
    return {Outcome::kDone, "",
            Json{{"kept_previous", d_.previous_release}, {"kept_for_ms", app_.keep_previous_ms}}};
  return {};
}

DeploymentRunner::StepResult DeploymentRunner::step_hooks(const std::string& phase) {
  const auto& hooks = phase == "pre_deploy"    ? app_.hooks.pre_deploy
                      : phase == "post_deploy" ? app_.hooks.post_deploy
                                               : app_.hooks.on_rollback;
  // The app's env and its secrets, then ferry's own variables (spawn.h: nothing else).
  HookEnv env = app_.run.env;
  if (ctx_.secrets)
    for (auto& [k, v] : ctx_.secrets(d_.app, d_.env)) env[k] = std::move(v);
  for (auto [k, v] : {std::pair<const char*, const std::string*>{"FERRY_APP", &d_.app},
                      {"FERRY_ENV", &d_.env},
                      {"FERRY_RELEASE", &d_.release},
                      {"FERRY_PREVIOUS_RELEASE", &d_.previous_release},
                      {"FERRY_DEPLOYMENT_ID", &d_.id},
                      {"FERRY_HOOK_PHASE", &phase}})
    env[k] = *v;
  Json results = Json::array();
  for (const auto& h : hooks) {
    static const Masker kNone;
    auto r = run_hook(h, env, ctx_.masker ? *ctx_.masker : kNone, app_.run.user);
    if (!r.ok()) {
      (void)commit(EventType::kHookFailed, d_.current_step, r.status().message(),
                   Json{{"hook", h.name}, {"phase", phase}});
      return {Outcome::kFail, r.status().message()};
    }
    Json j{{"hook", h.name},          {"phase", phase},      {"exit_code", r->exit_code},
           {"attempts", r->attempts}, {"output", r->output}, {"duration_ms", r->duration_ms}};
    (void)commit(EventType::kHookFinished, d_.current_step,
                 fmt::format("hook {} ({}) succeeded in {:.0f} ms", h.name, phase, r->duration_ms),
                 j);
    results.push_back(j);
  }
  return {Outcome::kDone, "", Json{{"hooks", results}}};
}

DeploymentRunner::StepResult DeploymentRunner::step_finish() {
  const int64_t now = to_unix_ms(ctx_.clock->now());
  Status s = write_holding([&] {
    return ctx_.store->set_env_release({d_.app, d_.env, d_.release, d_.id, now});
  });
  if (!s.ok()) return {Outcome::kFail, s.message()};
  d_.state = DeploymentState::kSucceeded;
  d_.reason.clear();
  d_.finished_at_ms = now;
  if (ctx_.audit) ctx_.audit("deployment.succeeded", d_, Json::object());
  Json details{{"traffic", traffic_totals()}};
  if (!keep_old_) return {Outcome::kDone, "", std::move(details)};
  Engine::KeptPrevious k{.app = d_.app,
                         .env = d_.env,
                         .stable = d_.release,
                         .previous = d_.previous_release,
                         .generation = d_.generation,
                         .until_ms = now + app_.keep_previous_ms};
  {
    MutexLock lock(control_->mu);
    control_->kept = k;
  }
  details["kept_previous"] = k.previous;
  details["kept_until_ms"] = k.until_ms;
  return {Outcome::kDone, "", std::move(details)};
}

Json DeploymentRunner::traffic_totals() {
  std::map<std::string, ReleaseStats> sum;
  for (const auto& r : read_agents()) {
    if (!r.status.ok()) continue;
    for (const auto& s : r.status->releases) {
      if (s.release != d_.release &&
          (d_.previous_release.empty() || s.release != d_.previous_release))
        continue;
      ReleaseStats& t = sum[s.release];
      t.release = s.release;
      t.requests += s.requests;
      t.status_1xx += s.status_1xx;
      t.status_2xx += s.status_2xx;
      t.status_3xx += s.status_3xx;
      t.status_4xx += s.status_4xx;
      t.status_5xx += s.status_5xx;
      t.upstream_errors += s.upstream_errors;
      t.latency_sum_ms += s.latency_sum_ms;
      t.shielded += s.shielded;
      t.pinned_requests += s.pinned_requests;
      t.pinned_5xx += s.pinned_5xx;
    }
  }
  Json out = Json::array();
  for (const auto& [rel, t] : sum)
    out.push_back(Json{{"release", rel},
                       {"requests", t.requests},
                       {"status_1xx", t.status_1xx},
                       {"status_2xx", t.status_2xx},
                       {"status_3xx", t.status_3xx},
                       {"status_4xx", t.status_4xx},
                       {"status_5xx", t.status_5xx},
                       {"upstream_errors", t.upstream_errors},
                       {"latency_sum_ms", t.latency_sum_ms},
                       {"shielded", t.shielded},
                       {"pinned_requests", t.pinned_requests},
                       {"pinned_5xx", t.pinned_5xx}});
  return out;
}

void DeploymentRunner::roll_back(const std::string& reason, const Json& details, bool aborted) {
  const int64_t t0 = ctx_.clock->monotonic_ms();
  Json data = details.is_object() ? details : Json::object();
  data["reason"] = reason;
  data["aborted"] = aborted;
  // Traffic first: one weight change returns every request to the stable release.
  Status w = old_rel_ ? set_weight(0) : Status::Ok();
  const int64_t traffic_ms = ctx_.clock->monotonic_ms() - t0;
  std::vector<std::string> back, behind;
  if (old_rel_) {
    const auto late = reconciler_.behind(d_.app, d_.env, d_.generation);
    for (AgentClient* a : ctx_.agents(d_.env))
      (std::ranges::find(late, a->name()) == late.end() ? back : behind).push_back(a->name());
  }
  data["traffic_restored_ms"] = traffic_ms;
  data["agents_restored"] = back;
  data["agents_behind"] = behind;
  if (!w.ok()) data["weight_error"] = w.message();
  d_.state = DeploymentState::kRollingBack;
  d_.reason = reason;
  // Say only what is true: which agents took the weight change, which did not.
  std::string traffic;
  if (!old_rel_)
    traffic = "no stable release to return to";
  else if (behind.empty())
    traffic = fmt::format("traffic on {} after {} ms", d_.previous_release, traffic_ms);
  else
    traffic =
        fmt::format("traffic on {} after {} ms on agent(s) {}; not yet on {}", d_.previous_release,
                    traffic_ms, fmt::join(back, ", "), fmt::join(behind, ", "));
  (void)commit(EventType::kRollbackStarted, d_.current_step,
               fmt::format("rolling back: {} ({})", reason, traffic), data);
  if (ctx_.audit) ctx_.audit(aborted ? "deployment.abort" : "deployment.rollback", d_, data);
  finish_rollback(reason, data, aborted);
}

void DeploymentRunner::finish_rollback(std::string reason, Json data, bool aborted) {
  Status s = put_state(0, old_rel_ ? app_.instances : 0, 0);
  if (!s.ok()) data["stop_error"] = s.message();
  if (!app_.hooks.on_rollback.empty() && !data.value("resumed", false)) {
    auto r = step_hooks("on_rollback");
    if (r.outcome == Outcome::kFail) data["hook_error"] = r.reason;
  }
  if (!wait_rollback_converged()) return;  // stopping: resumed as rolling_back
  d_.state = aborted ? DeploymentState::kAborted
                     : (old_rel_ ? DeploymentState::kRolledBack : DeploymentState::kFailed);
  d_.reason = reason;
  d_.step_state = "done";
  d_.finished_at_ms = to_unix_ms(ctx_.clock->now());
  data["traffic"] = traffic_totals();
  (void)commit(aborted ? EventType::kAborted : EventType::kRolledBack, d_.current_step,
               fmt::format("{}: {}", to_string(d_.state), reason), data);
}

bool DeploymentRunner::wait_rollback_converged() {
  const std::string reason = d_.reason;
  std::vector<std::string> named;
  while (true) {
    // Every agent must report the rollback's generation (the reconciler retries the ones
    // behind with backoff); until then the deployment says who is behind.
    report_reachability();
    const auto behind = reconciler_.behind(d_.app, d_.env, d_.generation);
    if (behind.empty()) return true;
    if (behind != named) {
      named = behind;
      const auto reach = reconciler_.reachability();
      Json agents = Json::array();
      std::string list;
      for (const auto& name : behind) {
        auto it = reach.find(name);
        const std::string addr = it == reach.end() ? "" : it->second.address;
        const std::string err = it == reach.end() ? "" : it->second.error;
        agents.push_back(Json{{"agent", name}, {"address", addr}, {"error", err}});
        list += (list.empty() ? "" : ", ") + name + (addr.empty() ? "" : " (" + addr + ")") +
                (err.empty() ? "" : ": " + err);
      }
      d_.reason = reason + "; agents still behind: " + list;
      (void)commit(EventType::kRollbackWaiting, d_.current_step,
                   "rolling back: waiting for agent(s) to take the stable state: " + list,
                   Json{{"agents_behind", agents}, {"generation", d_.generation}});
    }
    MutexLock lock(control_->mu);
    ++control_->rounds;
    lock.wait_for(control_->cv, std::chrono::milliseconds(kPollMs * 2),
                  [&]() FERRY_REQUIRES(control_->mu) { return control_->stop; });
    if (control_->stop) return false;
  }
}

}  // namespace ferry
