#include "engine/engine.h"

#include "common/crypto.h"
#include "core/plan.h"
#include "engine/desired_state.h"
#include "engine/placing.h"
#include "engine/reconciler.h"
#include "engine/runner.h"

namespace ferry {

bool scan_passed(const std::string& scan_status) {
  return scan_status == "clean" || scan_status == "overridden";
}

Status check_scan_gate(const Config& config, const std::string& env, const ReleaseRecord& r) {
  if (scan_passed(r.scan_status) || !config.scan_required(env)) return Status::Ok();
  return failed_precondition(
      "release " + r.app + "@" + r.version + " has scan status " +
      (r.scan_status.empty() ? std::string("not_scanned") : r.scan_status) + "; environment " +
      env +
      " requires a clean secret scan (scan: required): record the release with "
      "`ferry release create " +
      r.app +
      " VERSION --source DIR`, or an admin may deploy it with "
      "`ferry deploy " +
      r.app + " " + r.version + " --env " + env + " --override-scan --reason \"...\"` (audited)");
}

Engine::Engine(EngineContext ctx, std::shared_ptr<const Config> config)
    : ctx_(std::move(ctx)), config_(std::move(config)) {
  reconciler_ = std::make_unique<Reconciler>(
      ctx_, [this] { return this->config(); }, Reconciler::Options{});
}

Engine::~Engine() {
  stop();
}

std::shared_ptr<const Config> Engine::config() const {
  MutexLock lock(mu_);
  return config_;
}

void Engine::set_config(std::shared_ptr<const Config> config) {
  MutexLock lock(mu_);
  config_ = std::move(config);
}

void Engine::start() {
  {
    MutexLock lock(mu_);
    if (supervisor_.joinable()) return;
    stopping_ = false;
  }
  restore_kept();
  reconciler_->start();
  supervisor_ = std::thread([this] { supervise(); });
}

void Engine::stop() {
  {
    MutexLock lock(mu_);
    if (!supervisor_.joinable()) return;
    stopping_ = true;
    for (auto& [id, c] : controls_) {
      MutexLock cl(c->mu);
      c->stop = true;
      c->cv.notify_all();
    }
  }
  cv_.notify_all();
  supervisor_.join();
  std::map<std::string, std::thread> runners;
  {
    MutexLock lock(mu_);
    runners.swap(runners_);
  }
  for (auto& [id, t] : runners)
    if (t.joinable()) t.join();
  reconciler_->stop();
  MutexLock lock(mu_);
  controls_.clear();
}

void Engine::supervise() {
  MutexLock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    // Launch a runner for every open deployment that has none: on start these are the
    // ones a previous process left; later, ones created through deploy().
    auto open = ctx_.store->list_deployments({.active_only = true, .limit = 1000});
    lock.lock();
    if (open.ok())
      for (const auto& d : *open)
        if (!runners_.count(d.id)) launch(d.id);
    for (auto it = controls_.begin(); it != controls_.end(); ++it) {
      if (poked_) {
        MutexLock cl(it->second->mu);
        it->second->poke = true;
        it->second->cv.notify_all();
      }
    }
    poked_ = false;
    lock.unlock();
    release_expired_kept();
    lock.lock();
    lock.wait_for(cv_, std::chrono::milliseconds(250),
                  [&]() FERRY_REQUIRES(mu_) { return stopping_ || poked_; });
  }
}

void Engine::restore_kept() {
  auto recent = ctx_.store->list_deployments({.limit = 500});
  if (!recent.ok()) return;
  std::map<std::string, bool> seen;  // newest deployment per app and environment only
  for (const auto& d : *recent) {
    const std::string key = agent_app_name(d.app, d.env);
    if (seen[key]) continue;
    seen[key] = true;
    if (d.state != DeploymentState::kSucceeded)
      continue;  // one in flight, or rolled back: nothing kept
    auto events = ctx_.store->list_events(d.id, 0, 1000);
    if (!events.ok()) continue;
    for (const auto& e : *events)
      if (e.type == EventType::kStepFinished && e.data.contains("kept_until_ms")) {
        MutexLock lock(mu_);
        kept_[key] = KeptPrevious{.app = d.app,
                                  .env = d.env,
                                  .stable = d.release,
                                  .previous = d.previous_release,
                                  .generation = d.generation,
                                  .until_ms = e.data.value("kept_until_ms", int64_t{0})};
      }
  }
}

Result<std::map<std::string, Status>> Engine::apply_stable(const Config& config,
                                                           const std::string& app,
                                                           const std::string& env,
                                                           int64_t generation,
                                                           const DesiredSpec& want) {
  const auto agents = ctx_.agents(env);
  auto placed = stable_placement(*ctx_.store, config, app, env, agents, want.new_count);
  if (!placed.ok()) return placed.status().with_context("placing " + agent_app_name(app, env));
  std::map<std::string, DesiredSpec> per_agent;
  for (AgentClient* a : agents)
    per_agent.emplace(a->name(), share_of(want, *placed, {}, a->name()));
  return reconciler_->apply(app, env, generation, per_agent, "");
}

void Engine::release_expired_kept() {
  const int64_t now = to_unix_ms(ctx_.clock->now());
  std::vector<KeptPrevious> due;
  {
    MutexLock lock(mu_);
    for (auto it = kept_.begin(); it != kept_.end();) {
      if (it->second.until_ms > now) {
        ++it;
        continue;
      }
      due.push_back(it->second);
      it = kept_.erase(it);
    }
  }
  auto config = this->config();
  for (const auto& k : due) {
    const AppSpec* spec = config->app(k.app);
    auto rel = ctx_.store->get_release(k.app, k.stable);
    if (!spec || !rel.ok()) continue;
    const AppSpec resolved = config->app_for_env(*spec, k.env);
    const DesiredSpec want{
        .new_release = k.stable, .new_count = resolved.instances, .new_weight = 100};
    // One above the succeeded deployment's generation: any later deployment or refresh
    // has a higher one, so this can never undo what came after it. An agent that misses
    // it is retried by the reconciler.
    Status s = Status::Ok();
    auto results = apply_stable(*config, k.app, k.env, k.generation + 1, want);
    if (!results.ok()) s = results.status();
    if (ctx_.log)
      ctx_.log->log(s.ok() ? LogLevel::kInfo : LogLevel::kWarn, "kept previous release stopped",
                    {{"app", k.app},
                     {"env", k.env},
                     {"release", k.previous},
                     {"error", s.ok() ? std::string() : s.message()}});
    if (!s.ok()) {  // try again on the next round
      MutexLock lock(mu_);
      kept_.try_emplace(agent_app_name(k.app, k.env), k);
    }
  }
}

void Engine::launch(const std::string& id) {
  // Stopping: no new runner. The supervisor may have listed the open deployments just
  // before stop() told the runners to end; a runner that ended since is gone from
  // runners_, and a new one started now would never be told to stop (stop() would wait
  // on it forever).
  if (stopping_) return;
  if (runners_.count(id)) return;  // deploy() and the supervisor may both see a new one
  auto d = ctx_.store->get_deployment(id);
  if (!d.ok() || is_final(d->state)) return;
  // A new deployment of the app sets the whole desired state itself: whatever
  // keep_previous left is dropped by the agent, or (a rollback) taken over.
  kept_.erase(agent_app_name(d->app, d->env));
  auto control = std::make_shared<Control>();
  {
    MutexLock cl(control->mu);  // not shared yet; the lock only keeps the analysis exact
    control->pause = d->state == DeploymentState::kPaused;
  }
  controls_[id] = control;
  auto config = config_;
  runners_[id] = std::thread([this, control, config, rec = *d] {
    DeploymentRunner runner(ctx_, *reconciler_, config, control, rec);
    runner.run();
    std::optional<KeptPrevious> kept;
    {
      MutexLock cl(control->mu);
      kept = control->kept;
    }
    MutexLock lock(mu_);
    if (kept) kept_[agent_app_name(kept->app, kept->env)] = *kept;
    // The thread cannot join itself; it detaches and its entries go, unless stop()
    // has already taken the runners to join them.
    auto it = runners_.find(rec.id);
    if (it != runners_.end()) {
      it->second.detach();
      runners_.erase(it);
    }
    controls_.erase(rec.id);
    cv_.notify_all();
  });
}

Result<DeploymentRecord> Engine::deploy(const std::string& app, const std::string& env,
                                        const std::string& release, const std::string& actor,
                                        const DeployOptions& options) {
  return create(app, env, release, actor, options, false);
}

Result<DeploymentRecord> Engine::create(const std::string& app, const std::string& env,
                                        const std::string& release, const std::string& actor,
                                        const DeployOptions& options, bool immediate_rollback) {
  // A damaged store cannot be trusted to record what a deployment does.
  if (Status h = ctx_.store->health(); !h.ok())
    return unavailable("new deployments are stopped: " + h.message() + "; " +
                       ctx_.store->restore_steps());
  auto config = this->config();
  const AppSpec* spec = config->app(app);
  if (!spec)
    return not_found("app '" + app + "' is not in " + config->path + " (apps: see `ferry apps`)");
  if (!config->environment(env))
    return not_found("environment '" + env + "' is not in " + config->path);
  auto rel = ctx_.store->get_release(app, release);
  if (!rel.ok()) return rel.status();
  if (!options.rollback && options.scan_override_reason.empty())
    FERRY_RETURN_IF_ERROR(check_scan_gate(*config, env, *rel));
  auto open = ctx_.store->list_deployments({.app = app, .env = env, .active_only = true});
  if (!open.ok()) return open.status();
  if (!open->empty())
    return failed_precondition("deployment " + (*open)[0].id + " of " + app + "@" +
                               (*open)[0].release + " to " + env + " is still " +
                               std::string(to_string((*open)[0].state)) +
                               "; wait for it or `ferry abort " + (*open)[0].id + "`");
  auto envs = ctx_.store->list_env_releases(app);
  if (!envs.ok()) return envs.status();
  std::string stable;
  for (const auto& e : *envs)
    if (e.env == env) stable = e.release;
  if (stable == release)
    return failed_precondition(app + "@" + release + " is already the stable release in " + env);

  const AppSpec resolved = config->app_for_env(*spec, env);
  DeploymentRecord d;
  d.id = random_id("d-", 6);
  d.app = app;
  d.env = env;
  d.release = release;
  d.previous_release = stable;
  // An immediate rollback: start (or take over the kept) instances of the target, all
  // traffic to them once ready, stop the current ones. No pause, no analysis.
  const bool immediate = immediate_rollback && !stable.empty();
  d.strategy = immediate ? "rollback" : std::string(strategy_name(resolved.strategy.kind));
  d.plan = Json(immediate ? plan_rollback(resolved) : plan_deployment(resolved, !stable.empty()));
  d.requested_by = actor;
  d.created_at_ms = d.updated_at_ms = to_unix_ms(ctx_.clock->now());
  DeploymentEvent created{.time_ms = d.created_at_ms,
                          .type = EventType::kCreated,
                          .message = (immediate ? "immediate rollback of " : "deployment of ") +
                                     app + "@" + release + " to " + env + " requested by " + actor,
                          .data = Json{{"plan", d.plan},
                                       {"previous_release", stable},
                                       {"rollback", options.rollback || immediate_rollback}}};
  if (!options.scan_override_reason.empty())
    created.data["scan_override"] =
        Json{{"actor", actor}, {"reason", options.scan_override_reason}};
  FERRY_RETURN_IF_ERROR(ctx_.store->create_deployment(d, created));
  created.deployment_id = d.id;
  if (ctx_.on_event) ctx_.on_event(created, d);
  {
    MutexLock lock(mu_);
    if (supervisor_.joinable() && !stopping_) launch(d.id);
  }
  return ctx_.store->get_deployment(d.id);
}

Result<DeploymentRecord> Engine::rollback(const std::string& app, const std::string& env,
                                          const std::string& release, const std::string& actor,
                                          bool with_strategy) {
  auto open = ctx_.store->list_deployments({.app = app, .env = env, .active_only = true});
  if (!open.ok()) return open.status();
  if (!open->empty()) {
    // A deployment in flight: rolling back means aborting it, which returns traffic to
    // the stable release at once.
    FERRY_RETURN_IF_ERROR(signal((*open)[0].id, actor, "abort"));
    return (*open)[0];
  }
  std::string target = release;
  if (target.empty()) {
    auto done = ctx_.store->list_deployments({.app = app, .env = env, .limit = 200});
    if (!done.ok()) return done.status();
    for (const auto& d : *done)
      if (d.state == DeploymentState::kSucceeded && !d.previous_release.empty()) {
        target = d.previous_release;
        break;
      }
    if (target.empty())
      return failed_precondition("no earlier release of " + app + " succeeded in " + env +
                                 " to roll back to; name one: `ferry rollback " + app +
                                 " RELEASE --env " + env + "`");
  }
  auto ok = ctx_.store->release_succeeded_in(app, target, env);
  if (!ok.ok()) return ok.status();
  if (!*ok)
    return failed_precondition("release " + app + "@" + target + " never succeeded in " + env +
                               "; roll back only to a release that ran there");
  return create(app, env, target, actor, DeployOptions{.rollback = true}, !with_strategy);
}

Status Engine::signal(const std::string& id, const std::string& actor, const std::string& what) {
  std::shared_ptr<Control> c;
  {
    MutexLock lock(mu_);
    auto it = controls_.find(id);
    if (it != controls_.end()) c = it->second;
  }
  if (!c) {
    auto d = ctx_.store->get_deployment(id);
    if (!d.ok()) return d.status();
    return failed_precondition("deployment " + id + " is " + std::string(to_string(d->state)) +
                               ", not in progress");
  }
  {
    MutexLock lock(c->mu);
    if (what == "promote") {
      // A promote applies to the step running now and never waits for a later one.
      if (c->step < 0)
        return conflict("deployment " + id +
                        " has not started a step yet (it waits for its gates); nothing to promote");
      if (!c->promotable)
        return conflict("deployment " + id + " is at step " + std::to_string(c->step + 1) + " (" +
                        c->step_description +
                        "), which cannot be promoted: `ferry promote` ends a pause or the wait "
                        "before old instances stop; an analysis decides by itself (or `ferry "
                        "abort`)");
      c->promote = true;
      c->pause = false;
    }
    if (what == "pause") c->pause = true;
    if (what == "resume") c->pause = false;
    if (what == "abort") c->abort = true;
    c->cv.notify_all();
  }
  (void)ctx_.store->append_event({.deployment_id = id,
                                  .time_ms = to_unix_ms(ctx_.clock->now()),
                                  .type = EventType::kCommand,
                                  .message = what + " requested by " + actor,
                                  .data = Json{{"command", what}, {"actor", actor}}});
  return Status::Ok();
}

Status Engine::pause(const std::string& id, const std::string& actor) {
  return signal(id, actor, "pause");
}
Status Engine::resume(const std::string& id, const std::string& actor) {
  return signal(id, actor, "resume");
}
Status Engine::promote(const std::string& id, const std::string& actor) {
  return signal(id, actor, "promote");
}
Status Engine::abort(const std::string& id, const std::string& actor) {
  return signal(id, actor, "abort");
}

Status Engine::refresh_instances(const std::string& app, const std::string& env,
                                 const std::string& actor) {
  auto config = this->config();
  const AppSpec* spec = config->app(app);
  if (!spec) return not_found("app '" + app + "' is not configured");
  auto open = ctx_.store->list_deployments({.app = app, .env = env, .active_only = true});
  if (!open.ok()) return open.status();
  if (!open->empty())
    return failed_precondition("deployment " + (*open)[0].id +
                               " is in flight; it uses the new secrets");
  auto envs = ctx_.store->list_env_releases(app);
  if (!envs.ok()) return envs.status();
  std::string stable;
  for (const auto& e : *envs)
    if (e.env == env) stable = e.release;
  if (stable.empty()) return Status::Ok();  // nothing running yet: the first deployment gets them
  auto rel = ctx_.store->get_release(app, stable);
  if (!rel.ok()) return rel.status();
  const AppSpec resolved = config->app_for_env(*spec, env);
  const DesiredSpec want{.new_release = stable, .new_count = resolved.instances, .new_weight = 100};
  auto results = apply_stable(*config, app, env, next_generation(0, ctx_.clock->now()), want);
  if (!results.ok()) return results.status().with_context("refreshing " + agent_app_name(app, env));
  for (const auto& [agent, st] : *results)
    if (!st.ok() && !is_unreachable(st))
      return st.with_context("refreshing " + agent_app_name(app, env) + " on agent " + agent);
  if (ctx_.log)
    ctx_.log->info("instances refreshed",
                   {{"app", app}, {"env", env}, {"release", stable}, {"actor", actor}});
  return Status::Ok();
}

void Engine::poke() {
  MutexLock lock(mu_);
  poked_ = true;
  cv_.notify_all();
}

int64_t Engine::rounds(const std::string& id) const {
  std::shared_ptr<Control> c;
  {
    MutexLock lock(mu_);
    auto it = controls_.find(id);
    if (it == controls_.end()) return -1;
    c = it->second;
  }
  MutexLock cl(c->mu);
  return c->rounds;
}

Result<DeploymentRecord> Engine::wait_final(const std::string& id, Duration timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto d = ctx_.store->get_deployment(id);
    if (!d.ok() || is_final(d->state)) return d;
    if (std::chrono::steady_clock::now() > until)
      return deadline_exceeded("deployment " + id + " is still " +
                               std::string(to_string(d->state)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace ferry
