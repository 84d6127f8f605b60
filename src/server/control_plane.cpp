#include "server/control_plane.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "agent/agent_server.h"
#include "common/crypto.h"
#include "common/tls.h"
#include "config/loader.h"
#include "governance/approvals.h"
#include "governance/audit_chain.h"
#include "governance/windows.h"
#include "server/agent_trust.h"
#include "server/enrollment.h"
#include "server/revocation_push.h"

namespace ferry {

namespace {

std::string self_binary() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("ferry") : p.string();
}

}  // namespace

ControlPlane::ControlPlane(ServerOptions options) : opts_(std::move(options)) {}

ControlPlane::~ControlPlane() {
  stop();
}

std::shared_ptr<const Config> ControlPlane::config() const {
  return engine_->config();
}

Result<std::unique_ptr<ControlPlane>> ControlPlane::create(ServerOptions options) {
  std::unique_ptr<ControlPlane> cp(new ControlPlane(std::move(options)));
  auto cfg = load_config(cp->opts_.config_path);
  if (!cfg.ok()) return cfg.status();
  auto config = std::make_shared<Config>(std::move(*cfg));
  if (!cp->opts_.listen.empty()) config->server.listen = cp->opts_.listen;
  if (!cp->opts_.store_url.empty()) config->server.store = cp->opts_.store_url;
  cp->config_ = config;
  auto level = parse_log_level(cp->opts_.log_level);
  if (!level.ok()) return level.status();
  cp->log_ = std::make_unique<Logger>("server", *level, cp->opts_.log_file);
  cp->masker_ = cp->log_->masker();
  if (!cp->masker_) {
    cp->masker_ = std::make_shared<Masker>();
    cp->log_->set_masker(cp->masker_);
  }
  std::error_code ec;
  std::filesystem::create_directories(config->server.data_dir, ec);
  if (ec)
    return invalid_argument("server.data_dir " + config->server.data_dir +
                            " cannot be created: " + ec.message());
  std::filesystem::permissions(config->server.data_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  if (!config->server.scan_ignore_file.empty()) {
    std::ifstream ignore(config->server.scan_ignore_file);
    if (!ignore)
      return invalid_argument("server.scan_ignore_file " + config->server.scan_ignore_file +
                              " cannot be read");
  }
  // One server per data dir and store: taken before the store is opened (and migrated).
  auto locks = DataDirLock::acquire_for_server(config->server.data_dir, config->server.store);
  if (!locks.ok()) return locks.status();
  cp->locks_ = std::move(*locks);
  auto store = open_store(config->server.store);
  if (!store.ok()) return store.status().with_context("server.store");
  cp->store_ = std::move(*store);
  if (Status h = cp->store_->health(); !h.ok())
    cp->log_->error("store is corrupted; new deployments are stopped",
                    {{"error", h.message()}, {"restore", cp->store_->restore_steps()}});
  cp->ha_ = cp->store_->leader_lease().ok();  // a store with a leader lease: PostgreSQL
  if (cp->ha_) {
    // The elector renews over a connection of its own (server/leader.h).
    auto lease_store = open_store(config->server.store);
    if (!lease_store.ok()) return lease_store.status().with_context("server.store (leader lease)");
    LeaderOptions lo;
    lo.lease_ms = config->server.lease_ms;
    ControlPlane* me = cp.get();
    lo.on_elected = [me](int64_t token) { me->start_leader_work(token); };
    lo.on_lost = [me](const std::string& why) { me->stop_leader_work(why); };
    cp->leader_ =
        std::make_unique<LeaderElector>(*cp->store_, std::move(*lease_store), lo, cp->log_.get());
  }
  cp->auth_ = std::make_unique<Authenticator>(cp->store_.get());
  // Secrets at rest: the key file named in ferry.yaml, else one made in data_dir.
  std::string key_file = config->server.secrets_key_file;
  if (key_file.empty()) {
    key_file = config->server.data_dir + "/secrets.key";
    if (!std::filesystem::exists(key_file))
      if (Status s = SecretBox::create_key_file(key_file); !s.ok()) return s;
  }
  auto box = SecretBox::from_key_file(key_file);
  if (!box.ok()) return box.status().with_context("server.secrets_key_file");
  cp->secret_box_ = std::make_unique<SecretBox>(std::move(*box));
  // The audit chain's key, outside the store. Made on the first start of a keyed server:
  // an existing (unkeyed) chain is then re-sealed by one marked entry.
  const std::string audit_key_file = config->server.audit_key_file.empty()
                                         ? config->server.data_dir + "/audit.key"
                                         : config->server.audit_key_file;
  bool key_created = false;
  auto audit_key = load_or_create_audit_key(audit_key_file, &key_created);
  if (!audit_key.ok()) return audit_key.status().with_context("server.audit_key_file");
  cp->audit_key_ = std::move(*audit_key);
  if (key_created) {
    auto head = cp->store_->audit_head();
    if (!head.ok()) return head.status().with_context("reading the audit head");
    if (head->seq > 0)
      cp->audit("server", kAuditResealAction, "", "", "", "",
                Json{{"from", "sha256 (ferry-audit-v1)"},
                     {"to", "hmac-sha256 (ferry-audit-v2)"},
                     {"resealed_entries", head->seq},
                     {"v1_head_hash", head->hash},
                     {"key_file", audit_key_file}});
  }
  // Every stored secret value is masked in logs, events and hook output from the start.
  for (const auto& app : config->apps)
    for (const auto& env : config->environments)
      for (const auto& [name, value] : cp->secrets_for(app.name, env.name)) cp->masker_->add(value);

  EngineContext ctx;
  ControlPlane* self = cp.get();
  ctx.store = cp->store_.get();
  ctx.clock = &cp->clock_;
  ctx.log = cp->log_.get();
  ctx.masker = cp->masker_;
  ctx.prom = &cp->prom_;
  ctx.agents = [self](const std::string& env) { return self->agents_for(env); };
  ctx.secrets = [self](const std::string& app, const std::string& env) {
    return self->secrets_for(app, env);
  };
  ctx.gates = [self](const DeploymentRecord& d) { return self->check_gates(d); };
  cp->slo_ = std::make_unique<SloService>(
      SloService::Deps{.store = cp->store_.get(),
                       .clock = &cp->clock_,
                       .log = cp->log_.get(),
                       .config = [self] { return self->config(); },
                       .agents = [self](const std::string& env) { return self->agents_for(env); },
                       .on_alert =
                           [self](const SloService::AlertChange& c) {
                             // Burn alerts go out like deployment events (docs/slo.md).
                             NotificationEvent n = slo_alert_notification(c, self->clock_.now());
                             n.reason = self->masker_->mask(n.reason);
                             n.url = self->http_ ? "http://" + self->http_->address() + "/#/slo/" +
                                                       c.app + "/" + c.env
                                                 : "";
                             n.audit_head = self->audit_head_text();
                             if (self->notifier_) self->notifier_->notify(n);
                           }},
      SloService::Options{.collect_every_ms = cp->opts_.slo_collect_ms});
  ctx.budget_guard = [self](const DeploymentRecord& d, int64_t since) {
    return self->slo_->budget_guard(d, since);
  };
  cp->chaos_ = std::make_unique<ChaosService>(ChaosService::Deps{
      .store = cp->store_.get(),
      .clock = &cp->clock_,
      .log = cp->log_.get(),
      .config = [self] { return self->config(); },
      .agents = [self](const std::string& env) { return self->agents_for(env); },
      .audit =
          [self](const std::string& actor, const std::string& action, const std::string& app,
                 const std::string& env, const std::string& source, Json details) {
            self->audit(actor, action, app, env, "", source, std::move(details));
          },
      .state_file = config->server.data_dir + "/chaos.json"});
  ctx.on_event = [self](const DeploymentEvent& e, const DeploymentRecord& d) {
    self->handle_event(e, d);
  };
  ctx.audit = [self](const std::string& action, const DeploymentRecord& d, const Json& details) {
    Json det = details;
    det["deployment_id"] = d.id;
    if (!d.reason.empty()) det["reason"] = d.reason;
    self->audit("engine", action, d.app, d.env, d.release, "", det);
  };
  cp->engine_ = std::make_unique<Engine>(ctx, config);
  cp->metrics_ = std::make_unique<ServerMetrics>(*cp);
  DispatcherOptions dopts;
  dopts.masker = cp->masker_;
  dopts.clock = &cp->clock_;
  dopts.on_delivery = [self](const DeliveryRecord& r) {
    self->metrics_->on_delivery(r);
    if (r.final)
      self->log_->log(r.ok ? LogLevel::kInfo : LogLevel::kWarn, "notification",
                      {{"sink", r.sink},
                       {"result", std::string(r.result())},
                       {"attempt", r.attempt},
                       {"http_status", r.http_status},
                       {"error", r.error},
                       {"deployment_id", r.event.deployment_id}});
  };
  auto notifier = Dispatcher::create(config->notifications, dopts);
  if (!notifier.ok()) return notifier.status().with_context("notifications");
  cp->notifier_ = std::move(*notifier);
  return cp;
}

std::map<std::string, std::string> ControlPlane::secrets_for(const std::string& app,
                                                             const std::string& env) {
  std::map<std::string, std::string> out;
  auto list = store_->list_secrets(app, env);
  if (!list.ok()) return out;
  for (const auto& r : *list) {
    auto v = open_secret(*secret_box_, r);
    if (v.ok())
      out[r.name] = *v;
    else
      log_->error("secret cannot be decrypted", {{"app", app}, {"env", env}, {"name", r.name}});
  }
  return out;
}

std::vector<std::pair<std::string, HttpAgentClient*>> ControlPlane::agent_clients() {
  std::vector<std::pair<std::string, HttpAgentClient*>> out;
  for (auto& [name, c] : agents_) out.emplace_back(name, c.get());
  return out;
}

std::vector<AgentClient*> ControlPlane::agents_for(const std::string& env) {
  std::vector<AgentClient*> out;
  auto config = this->config();
  const EnvironmentSpec* e = config->environment(env);
  if (e && !e->agents.empty()) {
    for (const auto& name : e->agents)
      if (auto it = agents_.find(name); it != agents_.end()) out.push_back(it->second.get());
  } else if (auto it = agents_.find("local"); it != agents_.end()) {
    out.push_back(it->second.get());
  }
  return out;
}

Status ControlPlane::start() {
  auto config = config_;
  // "HOST:0" (tests, --listen) binds a free port; anything else must be a full address.
  const std::string& addr = config->server.listen;
  auto listen = addr.ends_with(":0") ? parse_endpoint(addr.substr(0, addr.size() - 2) + ":1")
                                     : parse_endpoint(addr);
  if (!listen.ok()) return listen.status().with_context("server.listen");
  if (addr.ends_with(":0")) listen->port = 0;
  if (opts_.local_agent && config->server.start_local_agent) {
    // The local agent is called in clear (its token, the apps' secrets): loopback or a
    // Unix socket only.
    if (!opts_.agent_listen.empty() && !loopback_address(opts_.agent_listen))
      return invalid_argument("--agent-listen " + opts_.agent_listen +
                              " is not a loopback address or unix:PATH: the server calls its "
                              "local agent over plain HTTP; run a remote agent with --tls-dir "
                              "and list it under agents: with tls: true instead");
    // The local agent's API is a Unix socket in the data dir unless --agent-listen says
    // HOST:PORT (or unix:PATH).
    std::vector<std::string> private_env{"FERRY_TOKEN"};
    for (const auto& n : config->notifications)
      for (const auto* name : {&n.url_env, &n.routing_key_env, &n.secret_env})
        if (!name->empty()) private_env.push_back(*name);
    local_agent_ =
        std::make_unique<LocalAgent>(self_binary(), config->server.data_dir, opts_.agent_listen,
                                     private_env, config->local_agent);
    FERRY_RETURN_IF_ERROR(local_agent_->ensure_running());
    agents_["local"] = local_agent_->client();
    log_->info("local agent ready",
               {{"address", local_agent_->address()}, {"started", local_agent_->started_by_us()}});
  }
  // How each remote agent is called (server/agent_trust.h): mutual TLS once enrolled, read
  // live; plain HTTP only on loopback or with `insecure: true`; else nothing is sent.
  agent_trust_ = std::make_unique<AgentTrust>(config->server.data_dir + "/tls", clock_);
  for (const auto& a : config->agents) {
    auto ep = parse_endpoint(a.address);
    if (!ep.ok()) return ep.status().with_context("agent " + a.name);
    auto token = read_token_file(a.token_file);
    if (!token.ok()) return token.status().with_context("agent " + a.name);
    auto client = std::make_unique<HttpAgentClient>(*ep, *token, 3000, a.name);
    client->set_tls_source([trust = agent_trust_.get(), a] { return trust->context_for(a); });
    if (auto how = agent_trust_->context_for(a); !how.ok())
      log_->warn("agent cannot be called yet",
                 {{"agent", a.name}, {"error", how.status().message()}});
    agents_[a.name] = std::move(client);
  }
  // Revocations reach every enrolled agent, retried until each took them.
  RevocationPusher::Options ro;
  ro.revoked_path = config->server.data_dir + "/tls/revoked";
  ro.agents = agent_clients();
  ro.enrolled = [trust = agent_trust_.get()](const std::string& n) { return trust->enrolled(n); };
  ro.delivered = [this](const std::string& agent, size_t added, size_t total) {
    audit("server", "agent.revocations_delivered", "", "", "", "",
          Json{{"agent", agent}, {"added", added}, {"serials", total}});
  };
  ro.log = log_.get();
  revocation_push_ = std::make_unique<RevocationPusher>(std::move(ro));
  revocation_push_->start();

  HttpServerOptions ho;
  ho.host = listen->host;
  ho.port = listen->port;
  http_ = std::make_unique<HttpServer>(ho);
  chaos_->start();  // before the API: a restarted server knows its experiments at once
  add_routes();
  FERRY_RETURN_IF_ERROR(http_->start());
  metrics_->start();  // reads the agents' figures for /metrics in the background
  if (local_agent_)
    watchdog_ = std::thread([this] {
      std::unique_lock lk(watch_mu_);
      while (!stopping_) {
        lk.unlock();
        // Wakes the moment the agent process ends (kill -9, crash), else every 250 ms.
        local_agent_->wait_for_exit(250);
        auto r = local_agent_->restart_if_down();
        if (!r.ok())
          log_->error("local agent is down and could not be restarted",
                      {{"error", r.status().message()}});
        else if (*r)
          audit("server", "agent.restarted", "", "", "", "",
                Json{{"address", local_agent_->address()}});
        lk.lock();
      }
    });
  // Another copy of the audit head, in the log (shipped off the host by the log pipeline).
  head_logger_ = std::thread([this] {
    std::unique_lock lk(watch_mu_);
    do {
      lk.unlock();
      auto h = audit_head();
      if (h.ok()) log_->info("audit head", {{"seq", h->seq}, {"hash", h->hash}});
      lk.lock();
    } while (!watch_cv_.wait_for(lk, std::chrono::milliseconds(opts_.audit_head_log_ms),
                                 [this] { return stopping_; }));
  });
  if (config->server.backups.every_ms > 0)
    backups_ = std::make_unique<ops::BackupScheduler>(
        config->server, config->path, "", [this](const ops::BackupOutcome& o) { on_backup(o); });
  for (auto& l : locks_) (void)l.describe_owner(http_->address());  // only improves a message
  audit("server", "server.start", "", "", "", "",
        Json{{"listen", http_->address()}, {"config", config->path}});
  log_->info("ferry server listening", {{"address", http_->address()}});
  if (!ha_) {
    start_leader_work(0);  // SQLite: the data-dir lock made this server the only one
    return Status::Ok();
  }
  // PostgreSQL: several servers may share the store; the elected one does the work.
  if (local_agent_)
    log_->warn(
        "a local agent with a shared PostgreSQL store: after a leader change the new leader "
        "drives its own local agent; list the agents in ferry.yaml and set "
        "server.start_local_agent: false when several servers share the store");
  leader_->set_address(config->server.advertise.empty() ? http_->address()
                                                        : config->server.advertise);
  leader_->start();
  return Status::Ok();
}

void ControlPlane::start_leader_work(int64_t token) {
  if (leader_) {
    const LeaderLease seen = leader_->last_seen();
    audit("server", "leader.elected", "", "", "", "",
          Json{{"holder", leader_->holder()}, {"token", token}, {"address", seen.address}});
  }
  // Resumes every deployment the store has open (a leader that died mid-step left them).
  engine_->start();
  if (backups_) backups_->start();
  slo_->start();
}

void ControlPlane::stop_leader_work(const std::string& why) {
  log_->warn("stopping the engine: this server is now a standby", {{"why", why}});
  if (backups_) backups_->stop();
  slo_->stop();
  // Runner threads end; deployments stay open in the store for the next leader.
  engine_->stop();
}

HttpResponse ControlPlane::forward_to_leader(const HttpRequest& req) {
  const LeaderLease lease = leader_ ? leader_->last_seen() : LeaderLease{};
  const std::string retry =
      "; retry in a few seconds (`ferry` servers elect a leader within the lease, " +
      std::to_string(config_->server.lease_ms) + " ms)";
  if (lease.holder.empty() || lease.address.empty() || lease.remaining_ms <= 0 ||
      lease.holder == (leader_ ? leader_->holder() : ""))
    return HttpResponse::error(
        unavailable("this server is a standby and no leader is elected right now" + retry));
  // One hop only: two servers with stale views of the lease never pass a request around.
  if (!req.header("x-ferry-forwarded-by").empty())
    return HttpResponse::error(
        unavailable("this server is a standby and the request was "
                    "already forwarded once (the leader changed)" +
                    retry));
  auto ep = parse_endpoint(lease.address);
  if (!ep.ok())
    return HttpResponse::error(unavailable("the leader's address '" + lease.address.substr(0, 64) +
                                           "' is not HOST:PORT (server.advertise of the leader)"));
  HttpClient c(*ep, {.timeout_ms = 60'000});
  if (auto a = req.header("authorization"); !a.empty()) c.set_header("Authorization", a);
  if (!req.request_id.empty()) c.set_header("X-Request-Id", req.request_id);
  c.set_header("X-Ferry-Forwarded-By", leader_->holder());
  auto content_type = req.header("content-type");
  auto r = c.request(req.method, req.target, req.body,
                     content_type.empty() ? "application/json" : content_type);
  if (!r.ok())
    return HttpResponse::error(unavailable("this server is a standby and the leader at " +
                                           lease.address + " did not answer (" +
                                           r.status().message() + ")" + retry));
  HttpResponse out;
  out.status = r->status;
  out.body = r->body;
  out.content_type = r->content_type;
  out.headers.push_back({"X-Ferry-Leader", lease.address});
  return out;
}

void ControlPlane::stop() {
  {
    std::lock_guard lk(watch_mu_);
    stopping_ = true;
  }
  watch_cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
  if (head_logger_.joinable()) head_logger_.join();
  if (revocation_push_) revocation_push_->stop();
  if (backups_) backups_->stop();
  if (slo_) slo_->stop();
  if (chaos_) chaos_->stop();
  if (metrics_) metrics_->stop();
  hub_.close_all();
  if (http_) http_->stop();
  // Steps down and resigns the lease (a standby takes over at once), then the engine.
  if (leader_) leader_->stop();
  if (engine_) engine_->stop();
  if (notifier_) notifier_->stop();
}

void ControlPlane::audit(const std::string& actor, const std::string& action,
                         const std::string& app, const std::string& env, const std::string& release,
                         const std::string& source, Json details) {
  AuditRecord a;
  a.time_ms = to_unix_ms(clock_.now());
  a.actor = actor;
  a.action = action;
  a.app = app;
  a.env = env;
  a.release = release;
  a.source_addr = source;
  if (!release.empty() && !app.empty()) {
    auto rel = store_->get_release(app, release);
    if (rel.ok()) a.git_sha = rel->git_sha;
  }
  // Details may quote user input or hook output: masked before they are sealed.
  auto masked = parse_json(masker_->mask(dump_json(details)));
  a.details = masked.ok() ? *masked : Json::object();
  auto r =
      store_->append_audit(a, [this](AuditRecord& e) { seal_audit_record_keyed(e, audit_key_); });
  if (!r.ok())
    log_->error("audit entry not written", {{"action", action}, {"error", r.status().message()}});
}

Result<AuditRecord> ControlPlane::audit_head() {
  return store_->audit_head();
}

std::string ControlPlane::audit_head_text() {
  auto h = store_->audit_head();
  if (!h.ok() || h->seq == 0) return "";
  return std::to_string(h->seq) + ":" + h->hash;
}

void ControlPlane::on_backup(const ops::BackupOutcome& o) {
  if (o.ok) {
    log_->info("backup made", {{"dir", o.dir},
                               {"seconds", o.backup_seconds},
                               {"drill_seconds", o.drill_seconds},
                               {"pruned", o.pruned}});
    audit("server", "backup.created", "", "", "", "",
          Json{{"dir", o.dir}, {"drill_seconds", o.drill_seconds}});
    return;
  }
  log_->error("backup failed", {{"dir", o.dir}, {"error", o.error}});
  audit("server", "backup.failed", "", "", "", "", Json{{"dir", o.dir}, {"error", o.error}});
  if (!notifier_) return;
  NotificationEvent n;
  n.kind = EventKind::kBackupFailed;
  n.actor = "ferry";
  n.reason = masker_->mask(o.error);
  n.audit_head = audit_head_text();
  n.time = clock_.now();
  notifier_->notify(n);
}

void ControlPlane::handle_event(const DeploymentEvent& e, const DeploymentRecord& d) {
  Json j = event_json(e);
  j["app"] = d.app;
  j["env"] = d.env;
  j["release"] = d.release;
  j["state"] = d.state;
  hub_.publish(j);
  metrics_->on_event(e, d);
  std::optional<EventKind> kind;
  if (e.type == EventType::kGatesPassed) kind = EventKind::kDeploymentStarted;
  if (e.type == EventType::kStepFinished) kind = EventKind::kStepPassed;
  if (e.type == EventType::kAnalysis && e.data.value("verdict", "") == "fail")
    kind = EventKind::kAnalysisFailed;
  if (e.type == EventType::kRolledBack) kind = EventKind::kRolledBack;
  if (d.state == DeploymentState::kSucceeded && e.type == EventType::kStepFinished)
    kind = EventKind::kSucceeded;
  if (d.state == DeploymentState::kFailed &&
      (e.type == EventType::kFailed || e.type == EventType::kGateRefused ||
       e.type == EventType::kRolledBack))
    kind = EventKind::kFailed;
  if (e.type == EventType::kGateWaiting && d.reason.find("approv") != std::string::npos) {
    std::lock_guard lk(watch_mu_);
    if (approval_notified_.insert(d.id).second) kind = EventKind::kApprovalNeeded;
  }
  if (!kind || !notifier_) return;
  NotificationEvent n;
  n.kind = *kind;
  n.app = d.app;
  n.env = d.env;
  n.release = d.release;
  n.deployment_id = d.id;
  n.actor = *kind == EventKind::kDeploymentStarted ? d.requested_by : "ferry";
  n.reason = masker_->mask(d.reason.empty() ? e.message : d.reason);
  n.url = http_ ? "http://" + http_->address() + "/#/deployments/" + d.id : "";
  n.audit_head = audit_head_text();
  n.time = clock_.now();
  notifier_->notify(n);
}

GateDecision ControlPlane::check_gates(const DeploymentRecord& d) {
  auto config = this->config();
  const EnvironmentSpec* env = config->environment(d.env);
  if (!env) return {GateDecision::Verdict::kRefuse, "environment " + d.env + " is not configured"};
  // Lifecycle: the release must have succeeded where this environment requires.
  for (const auto& req : env->requires_envs) {
    auto ok = store_->release_succeeded_in(d.app, d.release, req);
    if (!ok.ok()) return {GateDecision::Verdict::kWait, "store: " + ok.status().message()};
    if (!*ok)
      return {GateDecision::Verdict::kRefuse, "release " + d.release + " has not succeeded in " +
                                                  req + " (required before " + d.env + ")"};
  }
  // Scan: checked when the deployment was asked for; again here for deployments a
  // previous version of the server created, unless the created event holds an override.
  if (config->scan_required(d.env)) {
    auto rel = store_->get_release(d.app, d.release);
    if (!rel.ok()) return {GateDecision::Verdict::kWait, "store: " + rel.status().message()};
    if (Status s = check_scan_gate(*config, d.env, *rel); !s.ok()) {
      auto events = store_->list_events(d.id, 0, 1000);
      bool excused = false;
      if (events.ok())
        for (const auto& e : *events)
          excused |= e.type == EventType::kCreated &&
                     (e.data.contains("scan_override") || e.data.value("rollback", false));
      if (!excused) return {GateDecision::Verdict::kRefuse, s.message()};
    }
  }
  const int64_t now = to_unix_ms(clock_.now());
  // Approvals: N people other than the requester, not expired.
  if (env->approvals > 0) {
    auto list = store_->list_approvals(d.app, d.env, d.release);
    if (!list.ok()) return {GateDecision::Verdict::kWait, "store: " + list.status().message()};
    ApprovalCheck a = check_approvals(*env, d.requested_by, *list, now);
    if (!a.satisfied) {
      std::string why = a.reasons.empty() ? "waiting for approvals" : a.reasons.back();
      return {GateDecision::Verdict::kWait,
              why + " (`ferry approve " + d.app + " " + d.release + " --env " + d.env + "`)"};
    }
  }
  // Windows and freezes, unless an admin overrode them for this deployment.
  WindowCheck w = check_windows(env->windows, env->freezes, now);
  if (!w.open) {
    auto events = store_->list_events(d.id, 0, 1000);
    bool overridden = false;
    if (events.ok())
      for (const auto& e : *events) overridden |= is_override_of(e, "window");
    if (!overridden) return {GateDecision::Verdict::kWait, w.reason};
  }
  // The error budget (environments.ENV.slo_gate), unless an admin overrode it.
  if (auto why = slo_->gate(d)) {
    auto events = store_->list_events(d.id, 0, 1000);
    bool overridden = false;
    if (events.ok())
      for (const auto& e : *events) overridden |= is_override_of(e, "slo");
    if (!overridden) return {GateDecision::Verdict::kWait, *why};
  }
  return {};
}

}  // namespace ferry
