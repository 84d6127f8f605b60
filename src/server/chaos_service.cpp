#include "server/chaos_service.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "common/crypto.h"
#include "core/deployment_state.h"
#include "core/fault_spec.h"

namespace ferry {

namespace fs = std::filesystem;

std::string_view to_string(ChaosKind k) {
  switch (k) {
    case ChaosKind::kKillInstance:
      return "kill_instance";
    case ChaosKind::kLatency:
      return "latency";
    case ChaosKind::kErrors:
      return "errors";
  }
  return "errors";
}

struct ChaosService::Experiment {
  std::string id, app, env, kind;
  int latency_ms = 0;
  double share = 0;
  int error_status = 503;
  std::string instance;  // asked to kill ("": any)
  std::string killed_instance, killed_on;
  int64_t started_at_ms = 0, ends_at_ms = 0, ended_at_ms = 0;
  std::string state = "running";  // running | ended | stopped | aborted
  std::string started_by, ended_by, error;
  std::vector<std::string> targets;  // agent names that run the app here
  Json baseline = Json::object();    // per agent: instance restarts and release counters
  Json report;                       // set once it ended

  bool faults() const { return kind != "kill_instance"; }

  Json to_json() const {
    Json j{{"id", id},
           {"app", app},
           {"env", env},
           {"kind", kind},
           {"state", state},
           {"started_at_ms", started_at_ms},
           {"ends_at_ms", ends_at_ms},
           {"ended_at_ms", ended_at_ms},
           {"started_by", started_by},
           {"ended_by", ended_by},
           {"targets", targets},
           {"baseline", baseline}};
    if (kind == "latency") j["latency_ms"] = latency_ms;
    if (faults()) j["share"] = share;
    if (kind == "errors") j["error_status"] = error_status;
    if (kind == "kill_instance") {
      j["instance"] = instance;
      j["killed_instance"] = killed_instance;
      j["killed_on"] = killed_on;
    }
    if (!error.empty()) j["error"] = error;
    if (!report.is_null()) j["report"] = report;
    return j;
  }

  static Experiment from_json(const Json& j) {
    Experiment e;
    e.id = j.at("id").get<std::string>();
    e.app = j.at("app").get<std::string>();
    e.env = j.at("env").get<std::string>();
    e.kind = j.at("kind").get<std::string>();
    e.state = j.at("state").get<std::string>();
    e.started_at_ms = j.at("started_at_ms").get<int64_t>();
    e.ends_at_ms = j.at("ends_at_ms").get<int64_t>();
    e.ended_at_ms = j.value("ended_at_ms", int64_t{0});
    e.started_by = j.value("started_by", "");
    e.ended_by = j.value("ended_by", "");
    e.targets = j.value("targets", std::vector<std::string>{});
    e.baseline = j.value("baseline", Json::object());
    e.latency_ms = j.value("latency_ms", 0);
    e.share = j.value("share", 0.0);
    e.error_status = j.value("error_status", 503);
    e.instance = j.value("instance", "");
    e.killed_instance = j.value("killed_instance", "");
    e.killed_on = j.value("killed_on", "");
    e.error = j.value("error", "");
    if (j.contains("report")) e.report = j.at("report");
    return e;
  }
};

namespace {

// Agent clients that can take part in game days (core/fault_spec.h); null otherwise.
FaultControl* chaos_control(AgentClient* a) {
  return dynamic_cast<FaultControl*>(a);
}

bool chaos_name_ok(const std::string& s) {
  return !s.empty() && s.size() <= 128;
}

// The upper bound (ms) of the bucket holding quantile q of a latency histogram (counts per
// latency_buckets_ms() plus overflow); -1 when empty, and the last bound + 1 for overflow.
double chaos_quantile(const std::vector<uint64_t>& counts, double q) {
  uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return -1;
  const auto& bounds = latency_buckets_ms();
  const auto want = static_cast<uint64_t>(std::ceil(q * static_cast<double>(total)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    seen += counts[i];
    if (seen >= want) return i < bounds.size() ? bounds[i] : bounds.back() + 1;
  }
  return bounds.back() + 1;
}

uint64_t chaos_delta(const Json& now, const Json& before, const char* key, bool* reset) {
  const uint64_t a = now.value(key, uint64_t{0});
  const uint64_t b = before.is_object() ? before.value(key, uint64_t{0}) : 0;
  if (a < b) {
    *reset = true;  // the agent restarted: its counters began again from zero
    return a;
  }
  return a - b;
}

}  // namespace

ChaosService::ChaosService(Deps deps) : deps_(std::move(deps)) {}

ChaosService::~ChaosService() {
  stop();
}

void ChaosService::start() {
  load();
  {
    std::lock_guard lk(mu_);
    stopping_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void ChaosService::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ChaosService::run() {
  std::unique_lock lk(mu_);
  while (!stopping_) {
    cv_.wait_for(lk, std::chrono::milliseconds(250));
    if (stopping_) break;
    lk.unlock();
    finish_due();
    lk.lock();
  }
}

void ChaosService::finish_due() {
  const int64_t now = to_unix_ms(deps_.clock->now());
  std::vector<std::string> due;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : experiments_)
      if (e->state == "running" && e->ends_at_ms <= now) due.push_back(id);
  }
  for (const auto& id : due) finish(id, "ended", "chaos", "");
}

// Every agent of the environment that runs the app: its instances' restarts and its
// router's counters per release.
Json ChaosService::snapshot_of(const std::string& app, const std::string& env) {
  Json out = Json::object();
  for (AgentClient* a : deps_.agents(env)) {
    auto s = a->app_status(agent_app_name(app, env));
    if (!s.ok()) continue;
    Json inst = Json::object(), rel = Json::object();
    for (const auto& i : s->instances) inst[i.id] = i.restarts;
    for (const auto& r : s->releases)
      rel[r.release] = Json{{"requests", r.requests},
                            {"status_5xx", r.status_5xx},
                            {"upstream_errors", r.upstream_errors},
                            {"latency_counts", r.latency_counts}};
    out[a->name()] = Json{{"instances", inst}, {"releases", rel}};
  }
  return out;
}

Json ChaosService::report_of(const Experiment& e) {
  const int64_t window_end = e.ended_at_ms ? e.ended_at_ms : to_unix_ms(deps_.clock->now());
  const Json now = snapshot_of(e.app, e.env);
  // What ferry did: instance restarts the supervisors made, per agent.
  Json restarts = Json::array();
  int64_t restart_total = 0;
  bool counters_reset = false;
  uint64_t requests = 0, errors_5xx = 0, upstream_errors = 0;
  std::vector<uint64_t> hist;
  for (const auto& [agent, snap] : now.items()) {
    const Json before = e.baseline.value(agent, Json::object());
    const Json before_inst = before.value("instances", Json::object());
    // Named: items() of a temporary would dangle inside the loop.
    const Json instances = snap.value("instances", Json::object());
    for (const auto& [id, r] : instances.items()) {
      const int64_t was = before_inst.value(id, int64_t{0});
      const int64_t d = r.get<int64_t>() - was;
      if (d > 0) {
        restarts.push_back(Json{{"agent", agent}, {"instance", id}, {"restarts", d}});
        restart_total += d;
      }
    }
    const Json before_rel = before.value("releases", Json::object());
    const Json releases = snap.value("releases", Json::object());
    for (const auto& [rel, c] : releases.items()) {
      const Json b = before_rel.value(rel, Json());
      requests += chaos_delta(c, b, "requests", &counters_reset);
      errors_5xx += chaos_delta(c, b, "status_5xx", &counters_reset);
      upstream_errors += chaos_delta(c, b, "upstream_errors", &counters_reset);
      const auto counts = c.value("latency_counts", std::vector<uint64_t>{});
      const auto was = b.is_object() ? b.value("latency_counts", std::vector<uint64_t>{})
                                     : std::vector<uint64_t>{};
      if (hist.size() < counts.size()) hist.resize(counts.size());
      for (size_t i = 0; i < counts.size(); ++i) {
        const uint64_t w = i < was.size() ? was[i] : 0;
        hist[i] += counts[i] >= w ? counts[i] - w : counts[i];
      }
    }
  }
  // The faults the routers injected for this experiment.
  FaultCounters injected;
  Json unreachable = Json::array();
  if (e.faults())
    for (AgentClient* a : deps_.agents(e.env)) {
      if (std::find(e.targets.begin(), e.targets.end(), a->name()) == e.targets.end()) continue;
      FaultControl* fc = chaos_control(a);
      auto r = fc ? fc->fault_report(agent_app_name(e.app, e.env))
                  : Result<FaultReport>(failed_precondition("agent does not inject faults"));
      if (!r.ok()) {
        unreachable.push_back(Json{{"agent", a->name()}, {"error", r.status().message()}});
        continue;
      }
      if (r->setting.experiment != e.id) continue;  // the agent restarted: its counts are gone
      injected.seen += r->counters.seen;
      injected.delayed += r->counters.delayed;
      injected.errored += r->counters.errored;
      injected.delay_ms_total += r->counters.delay_ms_total;
    }
  // Deployments of the app in the environment that ran during the window: rollbacks and
  // the alerts ferry sent for them (analysis failures, rollbacks, failures).
  Json deployments = Json::array(), alerts = Json::array();
  int rollbacks = 0;
  auto list = deps_.store->list_deployments({.app = e.app, .env = e.env, .limit = 20});
  if (list.ok())
    for (const auto& d : *list) {
      if (d.created_at_ms > window_end) continue;
      if (d.finished_at_ms != 0 && d.finished_at_ms < e.started_at_ms) continue;
      bool rolled_back = false;
      auto events = deps_.store->list_events(d.id, 0, 1000);
      if (events.ok())
        for (const auto& ev : *events) {
          if (ev.time_ms < e.started_at_ms || ev.time_ms > window_end) continue;
          std::string kind;
          if (ev.type == EventType::kAnalysis && ev.data.value("verdict", "") == "fail")
            kind = "analysis_failed";
          if (ev.type == EventType::kRolledBack) kind = "rolled_back";
          if (ev.type == EventType::kFailed) kind = "failed";
          if (ev.type == EventType::kRollbackStarted) rolled_back = true;
          if (ev.type == EventType::kRolledBack) rolled_back = true;
          if (!kind.empty())
            alerts.push_back(Json{{"deployment", d.id}, {"alert", kind}, {"at_ms", ev.time_ms}});
        }
      rollbacks += rolled_back ? 1 : 0;
      deployments.push_back(Json{{"id", d.id},
                                 {"release", d.release},
                                 {"state", std::string(to_string(d.state))},
                                 {"rolled_back", rolled_back}});
    }
  // What clients saw: requests the routers served plus the ones they answered with an
  // injected error (those never reached an instance, so the release counters lack them).
  const uint64_t client_requests = requests + injected.errored;
  const uint64_t client_errors = errors_5xx + injected.errored;
  Json clients{{"requests", client_requests},
               {"errors_5xx", client_errors},
               {"error_rate", client_requests ? static_cast<double>(client_errors) /
                                                    static_cast<double>(client_requests)
                                              : 0.0},
               {"upstream_errors", upstream_errors},
               {"injected_errors", injected.errored},
               {"delayed", injected.delayed},
               {"injected_delay_ms", e.latency_ms},
               {"latency_p50_ms", chaos_quantile(hist, 0.5)},
               {"latency_p99_ms", chaos_quantile(hist, 0.99)}};
  if (counters_reset) clients["counters_reset"] = true;
  Json did{{"instance_restarts", restart_total},
           {"restarts", restarts},
           {"rollbacks", rollbacks},
           {"deployments", deployments},
           {"alerts", alerts}};
  if (!e.killed_instance.empty())
    did["killed"] = Json{{"instance", e.killed_instance}, {"agent", e.killed_on}};
  Json out{{"window_ms", std::max<int64_t>(0, window_end - e.started_at_ms)},
           {"ferry_did", did},
           {"clients_saw", clients}};
  if (!unreachable.empty()) out["agents_unreachable"] = unreachable;
  return out;
}

Result<Json> ChaosService::start_experiment(const ChaosRequest& r) {
  if (!chaos_name_ok(r.app)) return invalid_argument("app: 1-128 characters are needed");
  if (!chaos_name_ok(r.env)) return invalid_argument("env: 1-128 characters are needed");
  if (r.kind == ChaosKind::kLatency && (r.latency_ms < 1 || r.latency_ms > kMaxFaultLatencyMs))
    return invalid_argument("latency_ms " + std::to_string(r.latency_ms) +
                            " is out of range (1 to " + std::to_string(kMaxFaultLatencyMs) + ")");
  if (r.kind != ChaosKind::kKillInstance &&
      !(std::isfinite(r.share) && r.share > 0 && r.share <= 1))
    return invalid_argument("share must be above 0% and at most 100%");
  if (r.kind == ChaosKind::kErrors && (r.error_status < 500 || r.error_status > 599))
    return invalid_argument("error_status " + std::to_string(r.error_status) +
                            " must be a 5xx status (500-599)");
  if (r.duration_ms != 0 && (r.duration_ms < kMinDurationMs || r.duration_ms > kMaxFaultDurationMs))
    return invalid_argument("duration_ms " + std::to_string(r.duration_ms) +
                            " is out of range (1 s to 1 h)");
  if (r.instance.size() > 256) return invalid_argument("instance: at most 256 characters");
  auto cfg = deps_.config();
  if (!cfg->app(r.app)) return not_found("app '" + r.app + "' is not configured in ferry.yaml");
  const EnvironmentSpec* env = cfg->environment(r.env);
  if (!env) return not_found("environment '" + r.env + "' is not configured in ferry.yaml");
  if (!env->chaos_allowed)
    return failed_precondition("environment '" + r.env +
                               "' does not allow chaos experiments: add `chaos: allowed` under "
                               "environments." +
                               r.env + " in ferry.yaml");

  auto e = std::make_shared<Experiment>();
  e->id = random_id("chaos-", 6);
  e->app = r.app;
  e->env = r.env;
  e->kind = std::string(to_string(r.kind));
  e->latency_ms = r.kind == ChaosKind::kLatency ? r.latency_ms : 0;
  e->share = r.kind == ChaosKind::kKillInstance ? 0 : r.share;
  e->error_status = r.error_status;
  e->instance = r.instance;
  e->started_by = r.actor;
  e->state = "starting";
  {
    // One experiment per app and environment: the place is taken before any agent call.
    std::lock_guard lk(mu_);
    for (const auto& [id, other] : experiments_)
      if (other->app == r.app && other->env == r.env &&
          (other->state == "running" || other->state == "starting"))
        return conflict("experiment " + id + " (" + other->kind + ") is running on " + r.app +
                        " in " + r.env + "; stop it first: ferry chaos " + r.app + " --env " +
                        r.env + " --stop");
    experiments_[e->id] = e;
  }
  auto give_up = [&](Status s) -> Status {
    std::lock_guard lk(mu_);
    experiments_.erase(e->id);
    return s;
  };
  std::vector<std::string> names;
  for (AgentClient* a : deps_.agents(r.env))
    if (a->app_status(agent_app_name(r.app, r.env)).ok()) names.push_back(a->name());
  if (names.empty())
    return give_up(failed_precondition("app '" + r.app + "' runs on no agent of environment '" +
                                       r.env + "' (deploy it first)"));
  Json baseline = snapshot_of(r.app, r.env);
  const int64_t duration =
      r.duration_ms ? r.duration_ms
                    : (r.kind == ChaosKind::kKillInstance ? kDefaultKillWatchMs : kDefaultFaultMs);
  {
    std::lock_guard lk(mu_);
    e->targets = std::move(names);
    e->baseline = std::move(baseline);
    e->started_at_ms = to_unix_ms(deps_.clock->now());
    e->ends_at_ms = e->started_at_ms + duration;
  }
  Json details{{"experiment", e->id},
               {"kind", e->kind},
               {"duration_ms", duration},
               {"ends_at_ms", e->ends_at_ms},
               {"targets", e->targets}};
  if (e->faults()) details["share"] = e->share;
  if (r.kind == ChaosKind::kLatency) details["latency_ms"] = e->latency_ms;
  if (r.kind == ChaosKind::kErrors) details["error_status"] = e->error_status;
  // Recorded before acting: a crash from here on still leaves an audited experiment.
  deps_.audit(r.actor, "chaos.start", r.app, r.env, r.source, details);
  {
    std::lock_guard lk(mu_);
    e->state = "running";
  }
  save();

  Status applied = Status::Ok();
  const std::string agent_app = agent_app_name(r.app, r.env);
  std::vector<AgentClient*> targets;
  for (AgentClient* a : deps_.agents(r.env))
    if (std::find(e->targets.begin(), e->targets.end(), a->name()) != e->targets.end())
      targets.push_back(a);
  if (e->faults()) {
    FaultSetting f;
    f.experiment = e->id;
    f.duration_ms = duration;
    if (r.kind == ChaosKind::kLatency) {
      f.latency_ms = e->latency_ms;
      f.latency_share = e->share;
    } else {
      f.error_share = e->share;
      f.error_status = e->error_status;
    }
    for (AgentClient* a : targets) {
      FaultControl* fc = chaos_control(a);
      if (Status s = fc ? fc->set_fault(agent_app, f)
                        : failed_precondition("agent " + a->name() + " does not inject faults");
          !s.ok()) {
        applied = s;
        break;
      }
    }
    if (!applied.ok())
      for (AgentClient* a : targets)
        if (FaultControl* fc = chaos_control(a)) (void)fc->clear_fault(agent_app, e->id);
  } else {
    applied = failed_precondition("no instance of " + r.app + " to kill in " + r.env);
    for (AgentClient* a : targets) {
      FaultControl* fc = chaos_control(a);
      if (!fc) continue;
      auto killed = fc->kill_instance(agent_app, r.instance);
      if (killed.ok()) {
        std::lock_guard lk(mu_);
        e->killed_instance = *killed;
        e->killed_on = a->name();
        applied = Status::Ok();
        break;
      }
      applied = killed.status();
    }
  }
  if (!applied.ok()) {
    {
      std::lock_guard lk(mu_);
      e->error = applied.message();
    }
    finish(e->id, "aborted", "chaos", "");
    return failed_precondition("experiment " + e->id + " aborted: " + applied.message());
  }
  if (!e->killed_instance.empty()) {
    deps_.audit(
        r.actor, "chaos.kill", r.app, r.env, r.source,
        Json{{"experiment", e->id}, {"instance", e->killed_instance}, {"agent", e->killed_on}});
    save();
  }
  Json out;
  {
    std::lock_guard lk(mu_);
    out = e->to_json();
  }
  out.erase("baseline");
  if (deps_.publish)
    deps_.publish(
        Json{{"type", "chaos.start"}, {"app", r.app}, {"env", r.env}, {"experiment", out}});
  cv_.notify_all();
  return out;
}

void ChaosService::finish(const std::string& id, const std::string& state, const std::string& actor,
                          const std::string& source) {
  std::shared_ptr<Experiment> e;
  {
    std::lock_guard lk(mu_);
    auto it = experiments_.find(id);
    if (it == experiments_.end() || it->second->state != "running") return;
    e = it->second;
    e->state = "ending";
  }
  const int64_t now = to_unix_ms(deps_.clock->now());
  // The agents end the faults by themselves at ends_at; ended early, they are told now.
  if (e->faults())
    for (AgentClient* a : deps_.agents(e->env))
      if (std::find(e->targets.begin(), e->targets.end(), a->name()) != e->targets.end())
        if (FaultControl* fc = chaos_control(a))
          (void)fc->clear_fault(agent_app_name(e->app, e->env), e->id);
  Experiment copy;
  {
    std::lock_guard lk(mu_);
    e->ended_at_ms = state == "ended" ? std::min(now, e->ends_at_ms) : now;
    copy = *e;
  }
  Json report = report_of(copy);
  // Audited before anyone can read it as ended: a reader who sees the end finds its entry.
  Json details{{"experiment", e->id}, {"kind", e->kind}, {"state", state}, {"report", report}};
  if (!copy.error.empty()) details["error"] = copy.error;
  deps_.audit(actor, state == "ended" ? "chaos.end" : "chaos.abort", e->app, e->env, source,
              details);
  {
    std::lock_guard lk(mu_);
    e->report = report;
    e->state = state;
    e->ended_by = actor;
    // Finished experiments are kept for their reports, the newest kKeptFinished.
    std::vector<std::pair<int64_t, std::string>> finished;
    for (const auto& [fid, x] : experiments_)
      if (x->state != "running" && x->state != "starting" && x->state != "ending")
        finished.push_back({x->started_at_ms, fid});
    std::sort(finished.begin(), finished.end());
    for (size_t i = 0; i + kKeptFinished < finished.size(); ++i)
      experiments_.erase(finished[i].second);
  }
  save();
  if (deps_.publish)
    deps_.publish(Json{{"type", "chaos.end"},
                       {"app", e->app},
                       {"env", e->env},
                       {"experiment", Json{{"id", e->id}, {"state", state}}}});
}

Result<Json> ChaosService::stop_experiment(const std::string& id, const std::string& actor,
                                           const std::string& source) {
  {
    std::lock_guard lk(mu_);
    auto it = experiments_.find(id);
    if (it == experiments_.end())
      return not_found("experiment '" + id.substr(0, 64) + "' is not known");
    if (it->second->state != "running")
      return failed_precondition("experiment " + id + " is " + it->second->state + ", not running");
  }
  finish(id, "stopped", actor, source);
  return get(id);
}

Result<Json> ChaosService::get(const std::string& id) {
  Experiment copy;
  {
    std::lock_guard lk(mu_);
    auto it = experiments_.find(id);
    if (it == experiments_.end())
      return not_found("experiment '" + id.substr(0, 64) + "' is not known");
    copy = *it->second;
  }
  Json out = copy.to_json();
  out.erase("baseline");
  if (copy.report.is_null() && copy.state == "running") out["report"] = report_of(copy);
  return out;
}

Json ChaosService::list(const std::string& app, const std::string& env, bool running_only) {
  std::vector<Experiment> all;
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : experiments_) {
      if (!app.empty() && e->app != app) continue;
      if (!env.empty() && e->env != env) continue;
      if (running_only && e->state != "running") continue;
      all.push_back(*e);
    }
  }
  std::sort(all.begin(), all.end(), [](const Experiment& a, const Experiment& b) {
    return a.started_at_ms > b.started_at_ms;
  });
  Json out = Json::array();
  for (const auto& e : all) {
    Json j = e.to_json();
    j.erase("baseline");
    j.erase("report");
    out.push_back(std::move(j));
  }
  return out;
}

void ChaosService::save() {
  if (deps_.state_file.empty()) return;
  std::lock_guard sk(save_mu_);
  Json all = Json::array();
  {
    std::lock_guard lk(mu_);
    for (const auto& [id, e] : experiments_)
      if (e->state != "starting") all.push_back(e->to_json());
  }
  const std::string tmp = deps_.state_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << Json{{"experiments", all}}.dump() << "\n";
    if (!f.good()) {
      if (deps_.log) deps_.log->error("chaos state not written", {{"file", tmp}});
      return;
    }
  }
  ::chmod(tmp.c_str(), 0600);
  std::error_code ec;
  fs::rename(tmp, deps_.state_file, ec);
  if (ec && deps_.log)
    deps_.log->error("chaos state not written",
                     {{"file", deps_.state_file}, {"error", ec.message()}});
}

void ChaosService::load() {
  if (deps_.state_file.empty()) return;
  std::error_code ec;
  if (!fs::exists(deps_.state_file, ec)) return;
  std::ifstream f(deps_.state_file);
  std::string text((std::istreambuf_iterator<char>(f)), {});
  std::map<std::string, std::shared_ptr<Experiment>> loaded;
  try {
    auto j = parse_json(text, deps_.state_file);
    if (!j.ok()) throw std::runtime_error(j.status().message());
    for (const auto& x : j->at("experiments")) {
      auto e = std::make_shared<Experiment>(Experiment::from_json(x));
      // One that was ending when the server stopped ends again.
      if (e->state == "ending") e->state = "running";
      loaded[e->id] = e;
    }
  } catch (const std::exception& e) {
    if (deps_.log)
      deps_.log->error(
          "chaos state file unreadable, set aside",
          {{"file", deps_.state_file}, {"error", std::string(e.what()).substr(0, 200)}});
    fs::rename(deps_.state_file, deps_.state_file + ".bad", ec);
    return;
  }
  std::lock_guard lk(mu_);
  experiments_ = std::move(loaded);
}

}  // namespace ferry
