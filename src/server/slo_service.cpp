#include "server/slo_service.h"

#include <fmt/format.h>

#include <set>

#include "core/plan.h"
#include "store/slo_rows.h"

namespace ferry {

namespace {

constexpr int64_t kHourMs = 3'600'000;
// A cursor is rewritten at least this often while its release is seen, so compaction
// keeps it; one not seen for a day is dropped.
constexpr int64_t kCursorRefreshMs = kHourMs;
constexpr int64_t kCursorStaleMs = 24 * kHourMs;

slo::Bucket to_bucket(const SloBucketRecord& r) {
  slo::Bucket b;
  b.start_ms = r.start_ms;
  b.width_ms = r.width_ms;
  b.counts.requests = static_cast<uint64_t>(std::max<int64_t>(0, r.requests));
  b.counts.errors = static_cast<uint64_t>(std::max<int64_t>(0, r.errors));
  for (int64_t v : r.latency)
    b.counts.latency.push_back(static_cast<uint64_t>(std::max<int64_t>(0, v)));
  return b;
}

bool same_spec(const SloSpec& a, const SloSpec& b) {
  return a.availability_target == b.availability_target && a.latency_target == b.latency_target &&
         a.latency_threshold_ms == b.latency_threshold_ms && a.window_ms == b.window_ms &&
         a.exclude_paths == b.exclude_paths;
}

}  // namespace

Json cursor_counters(const ReleaseStats& s) {
  return Json{{"requests", s.requests},
              {"status_5xx", s.status_5xx},
              {"latency_counts", s.latency_counts},
              {"slo_requests", s.slo_requests},
              {"slo_5xx", s.slo_5xx}};
}

NotificationEvent slo_alert_notification(const SloService::AlertChange& c, SystemTime now) {
  NotificationEvent n;
  n.kind = c.firing ? EventKind::kSloBurn : EventKind::kSloBurnResolved;
  n.app = c.app;
  n.env = c.env;
  n.actor = "ferry";
  n.reason = c.message;
  n.alert = c.objective + "/" + c.alert;
  n.time = now;
  return n;
}

ReleaseStats cursor_stats(const Json& counters) {
  ReleaseStats s;
  if (!counters.is_object()) return s;
  auto num = [&](const char* k) -> uint64_t {
    auto it = counters.find(k);
    return it != counters.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  };
  s.requests = num("requests");
  s.status_5xx = num("status_5xx");
  // A cursor stored before the SLO's counter set: nothing was excluded then.
  s.slo_requests = counters.contains("slo_requests") ? num("slo_requests") : s.requests;
  s.slo_5xx = counters.contains("slo_5xx") ? num("slo_5xx") : s.status_5xx;
  if (auto it = counters.find("latency_counts"); it != counters.end() && it->is_array())
    for (const auto& v : *it)
      s.latency_counts.push_back(v.is_number_unsigned() ? v.get<uint64_t>() : 0);
  return s;
}

SloService::SloService(Deps deps, Options options) : deps_(std::move(deps)), opts_(options) {}

SloService::~SloService() {
  stop();
}

void SloService::start() {
  std::lock_guard lk(mu_);
  if (thread_.joinable()) return;
  stopping_ = false;
  cursors_loaded_ = false;  // a new leader reads what the previous one stored
  alerts_.clear();          // and announces the alerts that fire when it takes over
  alerts_known_ = false;
  thread_ = std::thread([this] { loop(); });
}

void SloService::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SloService::loop() {
  std::unique_lock lk(mu_);
  auto next_compact = std::chrono::steady_clock::now();
  while (!stopping_) {
    lk.unlock();
    if (Status s = collect_once(); !s.ok())
      deps_.log->warn("SLO collection failed; retried next round", {{"error", s.message()}});
    check_alerts();
    if (std::chrono::steady_clock::now() >= next_compact) {
      if (Status s = compact_once(); !s.ok())
        deps_.log->warn("SLO compaction failed", {{"error", s.message()}});
      next_compact = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    lk.lock();
    cv_.wait_for(lk, std::chrono::milliseconds(opts_.collect_every_ms),
                 [this] { return stopping_; });
  }
}

Status SloService::load_cursors() {
  {
    std::lock_guard lk(mu_);
    if (cursors_loaded_) return Status::Ok();
  }
  auto stored = deps_.store->list_slo_cursors();
  if (!stored.ok()) return stored.status();
  std::lock_guard lk(mu_);
  cursors_.clear();
  for (auto& c : *stored) cursors_[{c.agent, c.app, c.env, c.release}] = std::move(c);
  cursors_loaded_ = true;
  return Status::Ok();
}

Status SloService::collect_once() {
  std::lock_guard one(collect_mu_);
  FERRY_RETURN_IF_ERROR(load_cursors());
  const auto config = deps_.config();
  const int64_t now = to_unix_ms(deps_.clock->now());
  Status first_error;
  for (const auto& env : config->environments) {
    const std::vector<AgentClient*> agents = deps_.agents(env.name);
    for (const auto& app_spec : config->apps) {
      const std::optional<SloSpec> app_slo = config->app_for_env(app_spec, env.name).slo;
      if (!app_slo) continue;
      const bool exclude_paths = !app_slo->exclude_paths.empty();
      SloBucketRecord delta{.app = app_spec.name, .env = env.name, .start_ms = slo::minute_of(now)};
      std::vector<SloCursorRecord> writes;
      for (AgentClient* agent : agents) {
        auto st = agent->app_status(agent_app_name(app_spec.name, env.name));
        if (!st.ok()) continue;  // read next time, from the stored cursor
        std::lock_guard lk(mu_);
        // The first look ever at this app on this agent: what its router counted before
        // is of unknown age, so it only sets the cursor. A release that appears later is
        // new since the last look: all of its counts are.
        bool known = false;
        for (const auto& [k, c] : cursors_)
          known |= std::get<0>(k) == agent->name() && std::get<1>(k) == app_spec.name &&
                   std::get<2>(k) == env.name;
        for (const ReleaseStats& r : st->releases) {
          const CursorKey key{agent->name(), app_spec.name, env.name, r.release};
          auto it = cursors_.find(key);
          std::optional<ReleaseStats> before;
          if (it != cursors_.end()) before = cursor_stats(it->second.counters);
          if (before || known) {
            const slo::Counts c =
                slo::counts_between(before ? &*before : nullptr, r, exclude_paths);
            delta.requests += static_cast<int64_t>(c.requests);
            delta.errors += static_cast<int64_t>(c.errors);
            if (delta.latency.size() < c.latency.size()) delta.latency.resize(c.latency.size(), 0);
            for (size_t i = 0; i < c.latency.size(); ++i)
              delta.latency[i] += static_cast<int64_t>(c.latency[i]);
          }
          const Json counters = cursor_counters(r);
          if (it == cursors_.end() || it->second.counters != counters ||
              now - it->second.seen_at_ms >= kCursorRefreshMs)
            writes.push_back({agent->name(), app_spec.name, env.name, r.release, counters, now});
        }
      }
      // Requests on excluded paths only: none for availability, some for latency.
      bool counted = delta.requests > 0;
      for (int64_t v : delta.latency) counted |= v > 0;
      if (writes.empty() && !counted) continue;
      std::vector<SloBucketRecord> deltas;
      if (counted) deltas.push_back(delta);
      Status s = deps_.store->add_slo_counts(deltas, writes);
      if (!s.ok()) {
        if (first_error.ok()) first_error = s;
        continue;  // the cursors stay as they were: the same counts are read again
      }
      std::lock_guard lk(mu_);
      for (auto& w : writes) cursors_[{w.agent, w.app, w.env, w.release}] = std::move(w);
    }
  }
  return first_error;
}

Status SloService::compact_once() {
  const int64_t now = to_unix_ms(deps_.clock->now());
  const int64_t cut = now - opts_.minutes_kept_ms;
  Status s = deps_.store->compact_slo(cut - ((cut % kHourMs) + kHourMs) % kHourMs,
                                      now - opts_.buckets_kept_ms, now - kCursorStaleMs);
  if (s.ok()) {
    // Cursors dropped from the store are dropped here too.
    std::lock_guard lk(mu_);
    for (auto it = cursors_.begin(); it != cursors_.end();)
      it = now - it->second.seen_at_ms > kCursorStaleMs ? cursors_.erase(it) : std::next(it);
  }
  return s;
}

std::optional<SloSpec> SloService::spec_for(const std::string& app, const std::string& env) const {
  const auto config = deps_.config();
  const AppSpec* a = config->app(app);
  if (!a || !config->environment(env)) return std::nullopt;
  return config->app_for_env(*a, env).slo;
}

Result<std::vector<slo::Bucket>> SloService::buckets(const std::string& app, const std::string& env,
                                                     int64_t from_ms, int64_t to_ms) {
  auto rows = deps_.store->list_slo_buckets(app, env, from_ms, to_ms);
  if (!rows.ok()) return rows.status();
  std::vector<slo::Bucket> out;
  out.reserve(rows->size());
  for (const auto& r : *rows) out.push_back(to_bucket(r));
  return out;
}

uint64_t SloService::bucket_reads() const {
  std::lock_guard lk(cache_mu_);
  return bucket_reads_;
}

Result<std::shared_ptr<const std::vector<slo::Bucket>>> SloService::window_buckets(
    const std::string& app, const std::string& env, const SloSpec& spec, int64_t from_ms,
    int64_t now_ms) {
  const int64_t need_from = std::min(from_ms, now_ms - spec.window_ms);
  const int64_t mono = deps_.clock->monotonic_ms();
  const uint64_t writes = slo_rows::write_count();
  const AppEnv key{app, env};
  {
    std::lock_guard lk(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      const Cached& c = it->second;
      const int64_t age = now_ms - c.read_at_ms, mono_age = mono - c.read_mono_ms;
      if (c.writes == writes && age >= 0 && age < opts_.collect_every_ms && mono_age >= 0 &&
          mono_age < opts_.collect_every_ms && need_from >= c.from_ms && now_ms + 60'000 <= c.to_ms)
        return c.buckets;
    }
  }
  // Read with an hour to spare on both sides, so the copy serves until it expires.
  const int64_t from = need_from - kHourMs, to = now_ms + kHourMs;
  auto b = buckets(app, env, from, to);
  if (!b.ok()) return b.status();
  auto shared = std::make_shared<const std::vector<slo::Bucket>>(std::move(*b));
  std::lock_guard lk(cache_mu_);
  ++bucket_reads_;
  Cached& c = cache_[key];
  c = Cached{};
  c.writes = writes;  // read before the store was: a write since makes the next call read
  c.read_at_ms = now_ms;
  c.read_mono_ms = mono;
  c.from_ms = from;
  c.to_ms = to;
  c.buckets = shared;
  return shared;
}

Result<slo::Status> SloService::status(const std::string& app, const std::string& env) {
  auto spec = spec_for(app, env);
  if (!spec) return not_found("app " + app + " has no SLO in environment " + env);
  const int64_t now = to_unix_ms(deps_.clock->now());
  auto b = window_buckets(app, env, *spec, now - spec->window_ms, now);
  if (!b.ok()) return b.status();
  const int64_t minute = slo::minute_of(now);
  {
    std::lock_guard lk(cache_mu_);
    auto it = cache_.find({app, env});
    if (it != cache_.end() && it->second.buckets == *b && it->second.status &&
        it->second.status_minute == minute && same_spec(it->second.status_spec, *spec)) {
      slo::Status st = *it->second.status;
      st.now_ms = now;
      return st;
    }
  }
  slo::Status st = slo::evaluate(*spec, **b, now);
  std::lock_guard lk(cache_mu_);
  auto it = cache_.find({app, env});
  if (it != cache_.end() && it->second.buckets == *b) {
    it->second.status = st;
    it->second.status_minute = minute;
    it->second.status_spec = *spec;
  }
  return st;
}

std::optional<std::string> SloService::gate(const DeploymentRecord& d) {
  const auto config = deps_.config();
  const EnvironmentSpec* env = config->environment(d.env);
  if (!env || !env->slo_gate.enabled()) return std::nullopt;
  if (!env->slo_gate.min_budget && !env->slo_gate.max_burn) return std::nullopt;
  auto st = status(d.app, d.env);
  if (st.status().code() == Code::kNotFound) return std::nullopt;  // no SLO: nothing to gate
  if (!st.ok()) return "store: " + st.status().message();
  auto why = slo::gate_wait_reason(env->slo_gate, *st);
  if (!why) return std::nullopt;
  return "SLO gate: " + *why + " (`ferry slo " + d.app + " --env " + d.env +
         "`; an admin may override it: `ferry override " + d.id + " --gate slo --reason ...`)";
}

std::optional<std::string> SloService::budget_guard(const DeploymentRecord& d,
                                                    int64_t traffic_since_ms) {
  if (traffic_since_ms <= 0) return std::nullopt;
  const auto config = deps_.config();
  const EnvironmentSpec* env = config->environment(d.env);
  if (!env || !env->slo_gate.max_budget_spend) return std::nullopt;
  auto spec = spec_for(d.app, d.env);
  if (!spec) return std::nullopt;
  const int64_t now = to_unix_ms(deps_.clock->now());
  auto b = window_buckets(d.app, d.env, *spec, traffic_since_ms, now);
  if (!b.ok()) return std::nullopt;  // the store is away: no verdict (the runner holds writes)
  const int64_t from_minute = slo::minute_of(traffic_since_ms), to_minute = slo::minute_of(now);
  std::optional<double> spent;
  {
    std::lock_guard lk(cache_mu_);
    auto it = cache_.find({d.app, d.env});
    if (it != cache_.end() && it->second.buckets == *b && it->second.spent &&
        it->second.spent_from_minute == from_minute && it->second.spent_to_minute == to_minute &&
        same_spec(it->second.spent_spec, *spec))
      spent = it->second.spent;
  }
  if (!spent) {
    spent = slo::budget_spent(*spec, **b, traffic_since_ms, now);
    std::lock_guard lk(cache_mu_);
    auto it = cache_.find({d.app, d.env});
    if (it != cache_.end() && it->second.buckets == *b) {
      it->second.spent = spent;
      it->second.spent_from_minute = from_minute;
      it->second.spent_to_minute = to_minute;
      it->second.spent_spec = *spec;
    }
  }
  if (*spent <= *env->slo_gate.max_budget_spend) return std::nullopt;
  return fmt::format(
      "the deployment spent {} of the SLO's error budget since its traffic started, more than "
      "max_budget_spend {}",
      slo::percent(*spent), slo::percent(*env->slo_gate.max_budget_spend));
}

namespace {

// "1h" for 3,600,000 (slo::burn_windows()' names).
std::string window_label(int64_t ms) {
  for (const auto& [name, w] : slo::burn_windows())
    if (w == ms) return name;
  return std::to_string(ms / 60'000) + "m";
}

std::string alert_message(const slo::ObjectiveStatus& o, const slo::BurnAlert& a, bool firing) {
  const std::string lw = window_label(a.long_ms), sw = window_label(a.short_ms);
  return fmt::format(
      "the {} SLO's error budget {} at {:.1f}x over {} and {:.1f}x over {} ({} alert: both above "
      "{:g}x); {} of the budget left",
      slo::to_string(o.objective), firing ? "burns" : "no longer burns fast: it burns",
      o.burn_over(lw), lw, o.burn_over(sw), sw, a.name, a.factor, slo::percent(o.budget_remaining));
}

}  // namespace

void SloService::check_alerts() {
  using Key = std::tuple<std::string, std::string, std::string, std::string>;
  const auto config = deps_.config();
  std::vector<AlertChange> seen;
  std::set<AppEnv> unknown;  // status unreadable now: their alerts stay as they were
  for (const auto& env : config->environments)
    for (const auto& app : config->apps) {
      if (!config->app_for_env(app, env.name).slo) continue;
      auto st = status(app.name, env.name);
      if (!st.ok()) {
        unknown.insert({app.name, env.name});
        continue;
      }
      for (const auto& o : st->objectives)
        for (const auto& a : slo::burn_alerts()) {
          bool firing = false;
          for (const auto& [name, f] : o.alerts) firing |= name == a.name && f;
          seen.push_back({app.name, env.name, std::string(slo::to_string(o.objective)), a.name,
                          firing, alert_message(o, a, firing)});
        }
    }
  std::vector<AlertChange> report;
  {
    std::lock_guard lk(mu_);
    std::map<Key, bool> next;
    for (auto& c : seen) {
      const Key k{c.app, c.env, c.objective, c.alert};
      auto it = alerts_.find(k);
      const bool was = it != alerts_.end() && it->second;
      next[k] = c.firing;
      // The first check announces what fires; later ones report every change.
      if (c.firing != was && (c.firing || alerts_known_)) report.push_back(std::move(c));
    }
    for (const auto& [k, v] : alerts_)
      if (unknown.count({std::get<0>(k), std::get<1>(k)})) next[k] = v;
    // An SLO that left the configuration takes its alerts along, without a resolve.
    alerts_ = std::move(next);
    alerts_known_ = true;
  }
  for (const auto& c : report) {
    deps_.log->info(
        c.firing ? "SLO burn alert fires" : "SLO burn alert resolved",
        {{"app", c.app}, {"env", c.env}, {"objective", c.objective}, {"alert", c.alert}});
    if (deps_.on_alert) deps_.on_alert(c);
  }
}

std::optional<int64_t> SloService::traffic_started_ms(const DeploymentRecord& d) {
  auto events = deps_.store->list_events(d.id, 0, 1000);
  // Unreadable: the whole deployment counts (as the runner does after a restart).
  if (!events.ok()) return d.created_at_ms;
  for (const auto& e : *events) {
    if (e.type != EventType::kStepStarted || !e.data.is_object()) continue;
    PlanStep step;
    try {
      from_json(e.data, step);
    } catch (const std::exception&) {
      continue;  // not a step this server wrote
    }
    if (sends_traffic(step, d.previous_release.empty())) return e.time_ms;
  }
  // A full page without it: cut events, count the whole deployment.
  if (events->size() >= 1000) return d.created_at_ms;
  return std::nullopt;
}

std::map<std::string, SloService::Spend> SloService::spend(
    const std::vector<DeploymentRecord>& deployments) {
  std::map<std::string, Spend> out;
  const int64_t now = to_unix_ms(deps_.clock->now());
  // One read of the buckets per app and environment, from the oldest deployment's window.
  std::map<std::pair<std::string, std::string>, std::vector<const DeploymentRecord*>> groups;
  for (const auto& d : deployments) groups[{d.app, d.env}].push_back(&d);
  for (const auto& [key, list] : groups) {
    auto spec = spec_for(key.first, key.second);
    if (!spec) continue;
    int64_t from = now;
    for (const auto* d : list) from = std::min(from, d->created_at_ms);
    auto b = buckets(key.first, key.second, from - spec->window_ms - kHourMs, now + 60'000);
    if (!b.ok()) continue;
    for (const auto* d : list) {
      const int64_t end = d->finished_at_ms > 0 ? d->finished_at_ms : now;
      Spend s;
      // Counted from its first traffic, as the budget guard counts (none: it spent nothing).
      const std::optional<int64_t> since = traffic_started_ms(*d);
      if (!since) {
        s.after_complete = d->finished_at_ms > 0 && now >= end + kHourMs;
        out[d->id] = s;
        continue;
      }
      s.traffic_since_ms = *since;
      s.during = slo::budget_spent(*spec, *b, *since, end);
      if (d->finished_at_ms > 0) {
        // The hour after starts with the minute after the one the deployment ended in.
        const int64_t after_from = slo::minute_of(end) + 60'000;
        const int64_t after_to = std::min(now, end + kHourMs);
        if (after_to >= after_from) s.after = slo::budget_spent(*spec, *b, after_from, after_to);
        s.after_complete = now >= end + kHourMs;
      }
      out[d->id] = s;
    }
  }
  return out;
}

}  // namespace ferry
