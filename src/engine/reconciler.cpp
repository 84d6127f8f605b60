#include "engine/reconciler.h"

#include <algorithm>
#include <set>

#include "core/agent_generations.h"
#include "core/placement.h"
#include "engine/desired_state.h"

namespace ferry {

void to_json(Json& j, const DesiredSpec& s) {
  j = Json{{"new_release", s.new_release},
           {"old_release", s.old_release},
           {"new_count", s.new_count},
           {"old_count", s.old_count},
           {"new_weight", s.new_weight}};
  if (!s.new_slots.empty()) j["new_slots"] = s.new_slots;
  if (!s.old_slots.empty()) j["old_slots"] = s.old_slots;
}

void from_json(const Json& j, DesiredSpec& s) {
  s.new_release = j.value("new_release", "");
  s.old_release = j.value("old_release", "");
  s.new_count = j.value("new_count", 0);
  s.old_count = j.value("old_count", 0);
  s.new_weight = j.value("new_weight", 0);
  s.new_slots = j.value("new_slots", std::vector<int>{});
  s.old_slots = j.value("old_slots", std::vector<int>{});
}

DesiredSpec share_of(const DesiredSpec& total, const std::vector<std::string>& new_placement,
                     const std::vector<std::string>& old_placement, const std::string& agent) {
  DesiredSpec s = total;
  s.new_slots = slots_on(new_placement, total.new_count, agent);
  s.old_slots = slots_on(old_placement, total.old_count, agent);
  s.new_count = static_cast<int>(s.new_slots.size());
  s.old_count = static_cast<int>(s.old_slots.size());
  return s;
}

Reconciler::Reconciler(EngineContext& ctx, std::function<std::shared_ptr<const Config>()> config,
                       Options options)
    : ctx_(ctx), config_(std::move(config)), options_(options) {}

Reconciler::~Reconciler() {
  stop();
}

void Reconciler::start() {
  {
    MutexLock l(mu_);
    if (thread_.joinable()) return;
    stopping_ = false;
  }
  // After a restart nothing is known of the agents: every stored row is behind until its
  // agent takes (or reports) the generation again.
  auto rows = ctx_.store->list_agent_desired();
  if (!rows.ok() && ctx_.log)
    ctx_.log->error("reading per-agent desired state failed", {{"error", rows.status().message()}});
  if (rows.ok()) {
    MutexLock l(mu_);
    const int64_t now = to_unix_ms(ctx_.clock->now());
    for (const auto& r : *rows) {
      AgentStanding& st = standings_[Key{r.agent, r.app, r.env}];
      st.agent = r.agent;
      st.app = r.app;
      st.env = r.env;
      st.desired_generation = std::max(st.desired_generation, r.generation);
      st.spec = r.spec.get<DesiredSpec>();
      if (st.behind() && st.behind_since_ms == 0) st.behind_since_ms = now;
    }
  }
  thread_ = std::thread([this] { loop(); });
}

void Reconciler::stop() {
  {
    MutexLock l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Reconciler::loop() {
  MutexLock l(mu_);
  while (!stopping_) {
    l.unlock();
    reconcile_once();
    l.lock();
    l.wait_for(cv_, std::chrono::milliseconds(options_.tick_ms),
               [this]() FERRY_REQUIRES(mu_) { return stopping_; });
  }
}

int64_t Reconciler::backoff_ms(int attempts) {
  const int n = std::clamp(attempts - 1, 0, 16);
  const int64_t base = std::min(options_.max_backoff_ms, options_.min_backoff_ms << n);
  // ±20% jitter: agents cut off together are not all retried in the same instant.
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return static_cast<int64_t>(static_cast<double>(base) * jitter(rng_));
}

AgentClient* Reconciler::find_agent(const std::string& env, const std::string& name) {
  for (AgentClient* a : ctx_.agents(env))
    if (a->name() == name) return a;
  return nullptr;
}

void Reconciler::note_call(AgentClient& a, const Status& s) {
  const std::string name = a.name();
  std::optional<LogLevel> level;
  Json fields{{"agent", name}, {"address", a.address()}};
  {
    MutexLock l(mu_);
    AgentReach& r = reach_[name];
    r.address = a.address();
    if (s.ok()) {
      if (!r.reachable) {
        level = LogLevel::kInfo;
        fields["unreachable_for_ms"] = ctx_.clock->monotonic_ms() - r.unreachable_since_ms;
      }
      r.reachable = true;
      r.unreachable_since_ms = 0;
      r.error.clear();
    } else if (is_unreachable(s)) {
      if (r.reachable) {
        level = LogLevel::kWarn;
        r.unreachable_since_ms = ctx_.clock->monotonic_ms();
      }
      r.reachable = false;
      r.error = s.message();
      fields["error"] = r.error;
    }
  }
  if (level && ctx_.log)
    ctx_.log->log(*level, *level == LogLevel::kWarn ? "agent unreachable" : "agent reachable again",
                  fields);
}

Result<AppDesiredState> Reconciler::build(const std::string& app, const std::string& env,
                                          int64_t generation, const DesiredSpec& spec,
                                          const std::string& agent) {
  auto config = config_();
  const AppSpec* a = config->app(app);
  if (!a) return not_found("app '" + app + "' is no longer in " + config->path);
  const AppSpec resolved = config->app_for_env(*a, env);
  std::optional<ReleaseRecord> nr, orr;
  if (!spec.new_release.empty()) {
    auto r = ctx_.store->get_release(app, spec.new_release);
    if (!r.ok()) return r.status();
    nr = *r;
  }
  if (!spec.old_release.empty()) {
    auto r = ctx_.store->get_release(app, spec.old_release);
    if (!r.ok()) return r.status();
    orr = *r;
  }
  DesiredInputs in;
  in.agent_app = agent_app_name(app, env);
  in.app = &resolved;
  in.env = env;
  in.new_release = nr ? &*nr : nullptr;
  in.old_release = orr ? &*orr : nullptr;
  in.new_count = spec.new_count;
  in.old_count = spec.old_count;
  in.new_slots = spec.new_slots;
  in.old_slots = spec.old_slots;
  in.new_weight = spec.new_weight;
  in.listen_host = config->listen_for(resolved, agent);
  if (ctx_.secrets) in.secrets = ctx_.secrets(app, env);
  return build_desired_state(in, generation);
}

Status Reconciler::push(AgentClient& a, const AgentStanding& st, bool weights_only,
                        int64_t prev_gen) {
  Status s = Status::Ok();
  if (weights_only && prev_gen > 0 && st.reported_generation == prev_gen) {
    s = a.set_weights(agent_app_name(st.app, st.env), st.desired_generation,
                      traffic_weights(st.spec.new_release, st.spec.old_release, st.spec.new_weight,
                                      st.spec.new_count, st.spec.old_count));
  } else {
    auto desired = build(st.app, st.env, st.desired_generation, st.spec, st.agent);
    s = desired.ok() ? a.put_app(*desired) : desired.status();
  }
  note_call(a, s);
  return s;
}

Result<std::map<std::string, Status>> Reconciler::apply(const std::string& app,
                                                        const std::string& env, int64_t generation,
                                                        const DesiredSpec& spec,
                                                        const std::string& deployment_id,
                                                        bool weights_only) {
  std::map<std::string, DesiredSpec> same;
  for (AgentClient* a : ctx_.agents(env)) same.emplace(a->name(), spec);
  return apply(app, env, generation, same, deployment_id, weights_only);
}

Result<std::map<std::string, Status>> Reconciler::apply(
    const std::string& app, const std::string& env, int64_t generation,
    const std::map<std::string, DesiredSpec>& per_agent, const std::string& deployment_id,
    bool weights_only) {
  const std::vector<AgentClient*> agents = ctx_.agents(env);
  auto spec_for = [&](const std::string& agent) {
    if (auto it = per_agent.find(agent); it != per_agent.end()) return it->second;
    DesiredSpec none = per_agent.empty() ? DesiredSpec{} : per_agent.begin()->second;
    none.new_count = none.old_count = 0;
    none.new_slots.clear();
    none.old_slots.clear();
    return none;
  };
  if (agents.empty()) return std::map<std::string, Status>{};  // nothing runs it
  const int64_t now = to_unix_ms(ctx_.clock->now());
  // The store first: what every agent should run survives a crash of this process.
  for (AgentClient* a : agents)
    FERRY_RETURN_IF_ERROR(ctx_.store->put_agent_desired(
        {a->name(), app, env, generation, Json(spec_for(a->name())), deployment_id, now}));
  std::vector<AgentStanding> snapshot;
  std::vector<int64_t> prev;
  {
    MutexLock l(mu_);
    for (AgentClient* a : agents) {
      AgentStanding& st = standings_[Key{a->name(), app, env}];
      prev.push_back(st.desired_generation);
      st.agent = a->name();
      st.address = a->address();
      st.app = app;
      st.env = env;
      if (generation >= st.desired_generation) {
        st.desired_generation = generation;
        st.spec = spec_for(a->name());
      }
      if (st.behind() && st.behind_since_ms == 0) st.behind_since_ms = now;
      snapshot.push_back(st);
    }
  }
  auto results = fan_out<Status>(agents.size(), [&](size_t i) {
    return push(*agents[i], snapshot[i], weights_only, prev[i]);
  });
  std::map<std::string, Status> out;
  MutexLock l(mu_);
  for (size_t i = 0; i < agents.size(); ++i) {
    const Key k{agents[i]->name(), app, env};
    AgentStanding& st = standings_[k];
    out.emplace(k.agent, results[i]);
    if (results[i].ok()) {
      st.reported_generation = std::max(st.reported_generation, generation);
      st.attempts = 0;
      st.last_error.clear();
      if (!st.behind()) st.behind_since_ms = 0;
      verified_at_ms_[k] = ctx_.clock->monotonic_ms();
    } else {
      ++st.attempts;
      st.last_error = results[i].message();
      next_try_ms_[k] = ctx_.clock->monotonic_ms() + backoff_ms(st.attempts);
    }
  }
  return out;
}

std::vector<std::string> Reconciler::behind(const std::string& app, const std::string& env,
                                            int64_t generation) {
  std::vector<std::string> out;
  const auto agents = ctx_.agents(env);
  MutexLock l(mu_);
  for (AgentClient* a : agents) {
    auto it = standings_.find(Key{a->name(), app, env});
    if (it == standings_.end() || it->second.reported_generation < generation)
      out.push_back(a->name());
  }
  return out;
}

std::vector<AgentStanding> Reconciler::standings() {
  MutexLock l(mu_);
  std::vector<AgentStanding> out;
  for (const auto& [k, st] : standings_) out.push_back(st);
  return out;
}

std::map<std::string, AgentReach> Reconciler::reachability() {
  MutexLock l(mu_);
  return reach_;
}

void Reconciler::reconcile_once() {
  struct Job {
    Key key;
    AgentStanding st;
    AgentClient* agent = nullptr;
    bool verify = false;  // ask for its generation instead of pushing
  };
  std::vector<Job> jobs;
  {
    MutexLock l(mu_);
    const int64_t now = ctx_.clock->monotonic_ms();
    std::set<std::string> asked;  // agents asked for their generations this round
    for (const auto& [k, st] : standings_) {
      auto t = next_try_ms_.find(k);
      if (t != next_try_ms_.end() && t->second > now) continue;  // backing off
      auto v = verified_at_ms_.find(k);
      // Never heard from (after a restart, or a push that failed): ask first, so a restart
      // of the server re-sends nothing an agent already has.
      if (v == verified_at_ms_.end()) {
        jobs.push_back({k, st, nullptr, true});
        asked.insert(k.agent);
      } else if (st.behind()) {
        jobs.push_back({k, st, nullptr, false});
      } else if (now - v->second >= options_.verify_ms) {
        jobs.push_back({k, st, nullptr, true});
        asked.insert(k.agent);
      }
    }
    // One answer tells an agent's generation of every app: its other caught-up apps are
    // checked with it, so their checks fall due together (one call per agent per verify_ms).
    for (const auto& [k, st] : standings_) {
      if (!asked.count(k.agent) || st.behind()) continue;
      auto t = next_try_ms_.find(k);
      if (t != next_try_ms_.end() && t->second > now) continue;
      auto v = verified_at_ms_.find(k);
      if (v != verified_at_ms_.end() && now - v->second < options_.verify_ms)
        jobs.push_back({k, st, nullptr, true});
    }
  }
  if (jobs.empty()) return;
  std::vector<Job> live;
  for (auto& j : jobs) {
    j.agent = find_agent(j.key.env, j.key.agent);
    if (!j.agent) continue;  // no longer an agent of the environment
    live.push_back(j);
  }
  if (live.empty()) return;
  // One task per push, and one per agent for all of its checks; all at once (the same agent
  // may appear for several apps).
  std::vector<std::vector<size_t>> tasks;
  std::map<AgentClient*, size_t> check_task;  // agent → its task of checks
  for (size_t i = 0; i < live.size(); ++i) {
    if (!live[i].verify) {
      tasks.push_back({i});
      continue;
    }
    auto [it, fresh] = check_task.emplace(live[i].agent, tasks.size());
    if (fresh) tasks.emplace_back();
    tasks[it->second].push_back(i);
  }
  std::vector<std::optional<Result<int64_t>>> answers(live.size());
  (void)fan_out<int>(tasks.size(), [&](size_t t) {
    const std::vector<size_t>& mine = tasks[t];
    AgentClient& agent = *live[mine.front()].agent;
    if (!live[mine.front()].verify) {
      const Job& j = live[mine.front()];
      Status s = push(agent, j.st, false, 0);
      answers[mine.front()] = s.ok() ? Result<int64_t>(j.st.desired_generation) : s;
      return 0;
    }
    auto* source = dynamic_cast<GenerationsSource*>(&agent);
    auto all = source ? source->generations()
                      : Result<std::map<std::string, int64_t>>(not_found("no generations call"));
    if (all.ok() || all.status().code() != Code::kNotFound) {
      note_call(agent, all.ok() ? Status::Ok() : all.status());
      for (size_t i : mine) {
        if (!all.ok()) {
          answers[i] = all.status();
          continue;
        }
        // An app the agent does not list is one it lost: generation 0, pushed again.
        auto g = all->find(agent_app_name(live[i].key.app, live[i].key.env));
        answers[i] = g == all->end() ? int64_t{0} : g->second;
      }
      return 0;
    }
    // An agent that predates the call: one status per app.
    for (size_t i : mine) {
      auto s = agent.app_status(agent_app_name(live[i].key.app, live[i].key.env));
      note_call(agent, s.ok() ? Status::Ok() : s.status());
      if (s.ok())
        answers[i] = s->generation;
      else if (s.status().code() == Code::kNotFound)
        answers[i] = int64_t{0};  // the agent lost the app
      else
        answers[i] = s.status();
    }
    return 0;
  });
  std::vector<Result<int64_t>> results;
  results.reserve(live.size());
  for (auto& a : answers) results.push_back(std::move(*a));
  std::vector<Json> caught_up;
  {
    MutexLock l(mu_);
    const int64_t mono = ctx_.clock->monotonic_ms();
    for (size_t i = 0; i < live.size(); ++i) {
      const Key& k = live[i].key;
      AgentStanding& st = standings_[k];
      const auto& r = results[i];
      if (r.ok()) {
        const bool was_behind = st.behind();
        st.reported_generation = live[i].verify ? *r : std::max(st.reported_generation, *r);
        verified_at_ms_[k] = mono;
        if (st.behind()) {
          // It reports less than it should have (a restarted agent): push it again.
          if (st.behind_since_ms == 0) st.behind_since_ms = to_unix_ms(ctx_.clock->now());
          next_try_ms_.erase(k);
          continue;
        }
        if (was_behind)
          caught_up.push_back(Json{{"agent", k.agent},
                                   {"app", k.app},
                                   {"env", k.env},
                                   {"generation", st.desired_generation},
                                   {"attempts", st.attempts + 1}});
        st.attempts = 0;
        st.last_error.clear();
        st.behind_since_ms = 0;
      } else {
        ++st.attempts;
        st.last_error = r.status().message();
        next_try_ms_[k] = mono + backoff_ms(st.attempts);
      }
    }
  }
  if (ctx_.log)
    for (const auto& c : caught_up) ctx_.log->info("agent caught up", c);
}

}  // namespace ferry
