#include "agent/app_manager.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <future>
#include <random>
#include <thread>

#include "agent/acme_manager.h"
#include "agent/instance_supervisor.h"
#include "agent/prober.h"
#include "router/fault.h"
#include "router/router.h"
#include "router/tls_challenges.h"

namespace ferry {

namespace asio = boost::asio;

bool safe_name(const std::string& n) {
  if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '+'))
      return false;
  return true;
}

namespace {

// Releases without instance or weight whose router counters are kept (within the window).
constexpr size_t kReleasesLeftKept = 4;

constexpr const char* kHandingOver =
    "the agent is handing over to its next process; try again in a moment";

// Whether `port` can be bound on loopback now (nobody listens on it or holds it).
bool port_free(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

bool same_run(const InstanceSpec& a, const InstanceSpec& b) {
  Json ja, jb;
  to_json(ja, a.run);
  to_json(jb, b.run);
  return ja == jb && a.release == b.release && (b.port == 0 || a.port == b.port);
}

bool has_probes(const InstanceSpec& s) {
  return s.checks.readiness.kind != ProbeSpec::Kind::kNone ||
         s.checks.liveness.kind != ProbeSpec::Kind::kNone;
}

}  // namespace

// One app: its instances, router and timer. State changes run on `strand`; `mu` lets
// status readers see a consistent picture.
struct AppManager::App : std::enable_shared_from_this<App> {
  struct Slot {
    std::unique_ptr<InstanceSupervisor> sup;
    std::string replaced_by;     // its successor (same id, new run): retire once that is ready
    bool queued = false;         // a successor waiting: replacements go one at a time
    bool pending_start = false;  // accepted, started by apply() on the strand
    uint64_t serial = 0;         // unique in the agent: probe results find their slot by it
    bool superseded = false;     // replaced and draining: the next replacement waits for it
    bool own_port = false;       // the port came from the agent's range (released with it)
    std::shared_ptr<Prober> prober;
    uint64_t prober_run = 0;
    // Readable once the run's process ended (Runtime::exit_fd): wakes the app, so its end
    // is seen at once without polling. Null with watch_run == run: polled (no exit_fd).
    std::unique_ptr<asio::posix::stream_descriptor> exit_watch;
    uint64_t watch_run = 0;    // the run exit_watch (or the attempt at one) is for
    bool watch_fired = false;  // ended: polled until exit_status() reports it
  };

  App(AppManager& m, std::string n)
      : mgr(m), name(std::move(n)), strand(asio::make_strand(m.io_)), timer(strand) {}

  AppManager& mgr;
  const std::string name;
  asio::strand<asio::io_context::executor_type> strand;
  asio::steady_timer timer;  // strand only
  bool timer_armed = false;  // strand only
  int64_t timer_due = 0;     // strand only
  int64_t last_housekeeping = 0;

  mutable Mutex mu;
  AppDesiredState desired FERRY_GUARDED_BY(mu);  // the latest accepted
  int64_t applied_generation FERRY_GUARDED_BY(mu) = 0;
  bool apply_pending FERRY_GUARDED_BY(mu) = false;
  bool removing FERRY_GUARDED_BY(mu) = false;
  std::atomic<bool> gone{false};  // shut down or left the agent (read without mu by put)
  std::map<std::string, Slot> instances FERRY_GUARDED_BY(mu);
  std::unique_ptr<Router> router FERRY_GUARDED_BY(mu);
  std::string router_host FERRY_GUARDED_BY(mu);
  uint16_t router_port FERRY_GUARDED_BY(mu) = 0;
  std::pair<TlsSpec, AccessLogSpec> router_edge
      FERRY_GUARDED_BY(mu);  // the running router's tls and access_log
  std::string router_error FERRY_GUARDED_BY(mu);
  std::shared_ptr<AcmeChallengeBook> acme_book;  // HTTP-01 answers for tls.acme (made once)
  std::map<std::string, int64_t> release_seen
      FERRY_GUARDED_BY(mu);  // release → when it last had instance or weight
  uint64_t replace_seq FERRY_GUARDED_BY(mu) = 0;
  // Game-day faults (router/fault.h): outlive any one router of the app.
  std::shared_ptr<FaultInjector> faults = std::make_shared<FaultInjector>();

  int64_t now() const { return mgr.clock_.monotonic_ms(); }

  void routers_changed() const {
    if (mgr.opts_.routers_changed) mgr.opts_.routers_changed();
  }

  // mu held. `from`: the listening sockets a previous agent process handed over.
  Status bind_router(std::vector<HandedListener>* from = nullptr) FERRY_REQUIRES(mu) {
    const auto& d = desired;
    if (d.listen_port == 0) {
      if (router) {
        router->release_port();
        routers_changed();
      }
      router.reset();
      return Status::Ok();
    }
    const bool same_port = router && router_host == d.listen_host && router_port == d.listen_port;
    if (same_port && router_edge == std::make_pair(d.router.tls, d.router.access_log))
      return Status::Ok();
    std::vector<ReleaseStats> carried;
    int same_socket = -1;
    if (same_port) {
      // New tls or access_log settings on the same port: the old router hands its
      // listening socket (clients queue in its backlog meanwhile) and its counters on, and
      // its connections close.
      carried = router->stats();
      same_socket = router->duplicate_listener();
      router->stop();
      router.reset();
    }
    RouterOptions ro;
    ro.tls = d.router.tls;
    if (d.router.tls.acme.enabled()) {
      // The certificate comes from the ACME manager's bundle file (a placeholder until the
      // first is issued); renewals replace the file and the router reloads it.
      if (mgr.opts_.acme == nullptr)
        return failed_precondition("app " + name + ": tls.acme needs the agent's ACME client");
      if (!acme_book) acme_book = std::make_shared<AcmeChallengeBook>();
      auto bundle = mgr.opts_.acme->ensure(name, d.router.tls.acme, acme_book);
      if (!bundle.ok()) {
        router_error = bundle.status().message();
        return bundle.status();
      }
      ro.tls.certificates = {TlsCertSpec{*bundle, *bundle}};
      ro.acme_challenges = acme_book;
      ro.tls_reload_interval_ms = 1000;  // a renewed bundle serves within a second (one stat)
    }
    ro.access_log = d.router.access_log;
    ro.host = d.listen_host;
    ro.port = d.listen_port;
    ro.threads = mgr.opts_.router_threads;
    ro.io_pool = mgr.opts_.router_io;  // shared: threads grow with cores, not with apps
    ro.app = d.app;  // signed pin tokens and affinity cookies are valid for this app only
    ro.key_file = mgr.opts_.router_key_file;
    ro.faults = faults;
    ro.listen_fd = same_socket;
    if (from && same_socket < 0) {
      const std::string host = d.listen_host;
      const uint16_t port = d.listen_port;
      auto it = std::find_if(from->begin(), from->end(), [&](const HandedListener& l) {
        return l.fd >= 0 && l.app == name && l.host == host && l.port == port;
      });
      if (it != from->end()) {
        ro.listen_fd = std::exchange(it->fd, -1);
        carried = std::move(it->stats);
      }
    }
    auto r = std::make_unique<Router>(ro);
    // The table and counters before the first connection is accepted: a handed-over
    // socket has clients waiting in its backlog, who must not get "no ready backend".
    if (!carried.empty()) r->seed_stats(carried);
    r->set_table(current_table());
    if (Status s = r->start(); !s.ok()) {
      router_error = s.message();
      if (same_port) routers_changed();  // the keeper lets go of the old socket too
      return unavailable("app " + name + ": " + s.message());
    }
    if (router) router->release_port();  // the app moved to another address
    router = std::move(r);
    routers_changed();
    router_host = d.listen_host;
    router_port = d.listen_port;
    router_edge = {d.router.tls, d.router.access_log};
    router_error.clear();
    update_router();
    return Status::Ok();
  }

  // mu held.
  void update_router() FERRY_REQUIRES(mu) {
    prune_release_stats();
    if (router) router->set_table(current_table());
  }

  // Notes which releases have instances or weight now, and drops the router counters of
  // every other release once the analysis window (release_stats_keep_ms) has passed since
  // it lost both: an app's counters stay bounded however many releases it ever had (the
  // engine keeps each deployment's totals in the store). mu held.
  void prune_release_stats() FERRY_REQUIRES(mu) {
    const int64_t t = now();
    std::set<std::string> live;
    for (const auto& [rel, w] : desired.weights)
      if (w > 0) live.insert(rel);
    for (const auto& [key, slot] : instances) live.insert(slot.sup->spec().release);
    for (const auto& rel : live) release_seen[rel] = t;
    std::erase_if(release_seen,
                  [&](const auto& kv) { return t - kv.second > mgr.opts_.release_stats_keep_ms; });
    // Deployments faster than the window would still pile up releases inside it: only the
    // few that left last are kept (a deployment reads its previous release's counters while
    // that one still runs, and its totals right after it stopped).
    std::vector<std::pair<int64_t, std::string>> left;
    for (const auto& [rel, seen] : release_seen)
      if (!live.count(rel)) left.emplace_back(seen, rel);
    if (left.size() > kReleasesLeftKept) {
      std::sort(left.begin(), left.end());
      for (size_t i = 0; i + kReleasesLeftKept < left.size(); ++i)
        release_seen.erase(left[i].second);
    }
    if (!router) return;
    std::set<std::string> keep;
    for (const auto& [rel, seen] : release_seen) keep.insert(rel);
    router->retain_stats(keep);
  }

  // The routing table of the desired state and the routable instances. mu held.
  RouteTable current_table() const FERRY_REQUIRES(mu) {
    RouteTable table;
    table.weights = desired.weights;
    table.policy = desired.router;
    table.stable = desired.stable_release;
    for (const auto& [key, slot] : instances)
      if (slot.sup->routable())
        table.backends.push_back(RouteBackend{key, slot.sup->spec().release,
                                              mgr.opts_.instance_host, slot.sup->status().port});
    return table;
  }

  void post_apply() {
    asio::post(strand, [self = shared_from_this()] { self->apply(); });
  }

  // Matches the slots to the desired state: new instances get a slot (started later on the
  // strand by apply()), instances no longer listed are retired. No I/O. mu held.
  void reconcile() FERRY_REQUIRES(mu) {
    std::set<std::string> ids;
    for (const auto& spec : desired.instances) {
      ids.insert(spec.id);
      auto it = instances.find(spec.id);
      if (it != instances.end() && !it->second.sup->retiring() &&
          same_run(it->second.sup->spec(), spec))
        continue;
      bool replacing = false;
      if (it != instances.end()) {
        // Same id, different run (a rotated secret, say): the new one starts beside the
        // old one, which serves until the new one is ready and then drains.
        Slot old = std::move(it->second);
        instances.erase(it);
        const bool never_started = old.pending_start || old.queued;
        replacing = !old.sup->retiring() && !never_started;
        if (replacing) old.replaced_by = spec.id;
        if (never_started) old.sup->retire();  // nothing to replace: it just goes
        old.pending_start = old.queued = false;
        instances[spec.id + "~" + std::to_string(++replace_seq)] = std::move(old);
      }
      Slot slot;
      slot.serial = ++mgr.serial_;
      slot.sup =
          std::make_unique<InstanceSupervisor>(spec.id, name, spec, mgr.runtime_, mgr.clock_);
      if (spec.port == 0) {
        slot.sup->set_port(mgr.allocate_port());
        slot.own_port = true;
      }
      // A replacement waits its turn (tick()); anything else starts on the strand (apply()).
      (replacing ? slot.queued : slot.pending_start) = true;
      instances[spec.id] = std::move(slot);
    }
    for (auto& [key, slot] : instances)
      if (!ids.count(key) && !slot.sup->retiring() &&
          !(!slot.replaced_by.empty() && ids.count(slot.replaced_by))) {
        slot.pending_start = slot.queued = false;
        slot.sup->retire();
      }
  }

  // Starts the instances the last accepted desired state added (strand).
  void apply() {
    {
      MutexLock lk(mu);
      if (gone || !apply_pending || mgr.frozen_) return;  // thaw() applies again
      apply_pending = false;
      for (auto& [key, slot] : instances)
        if (slot.pending_start) {
          slot.pending_start = false;
          slot.sup->start();
        }
      applied_generation = std::max(applied_generation, desired.generation);
      update_router();
    }
    mgr.state_changed_();
    tick();
  }

  // A probe result of the slot `serial` (its key changes when it is replaced in place).
  void on_probe(uint64_t serial, uint64_t run, ProbeRole role, bool ok,
                const std::string& message) {
    bool changed = false;
    {
      MutexLock lk(mu);
      auto it = std::find_if(instances.begin(), instances.end(),
                             [&](const auto& kv) { return kv.second.serial == serial; });
      if (gone || mgr.frozen_ || it == instances.end()) return;
      auto& sup = *it->second.sup;
      if (!ok && mgr.probe_failures_ && run == sup.run())
        mgr.probe_failures_
            ->with({name, sup.spec().id, role == ProbeRole::kReadiness ? "readiness" : "liveness"})
            .inc();
      const auto before = sup.status().state;
      sup.on_probe(role, run, ok, message);
      changed = sup.take_changed();
      if (before != sup.status().state) update_router();
    }
    if (changed) mgr.state_changed_();
    if (role == ProbeRole::kLiveness && !ok) schedule(0);
  }

  // mu held: starts, restarts or stops the prober of a slot to match its run.
  void sync_prober(Slot& slot) FERRY_REQUIRES(mu) {
    auto& sup = *slot.sup;
    const bool want = sup.probed() && has_probes(sup.spec());
    if (slot.prober && (!want || slot.prober_run != sup.run())) {
      slot.prober->stop();
      slot.prober.reset();
    }
    if (!want || slot.prober) return;
    ProbeTarget target{mgr.opts_.instance_host, sup.status().port, sup.env()};
    const uint64_t run = sup.run(), serial = slot.serial;
    std::weak_ptr<App> weak = shared_from_this();
    // The prober runs on this app's strand: its results arrive here without a hop (and the
    // wakeup of another io thread) per probe.
    slot.prober =
        Prober::create(strand, sup.spec().checks, std::move(target), sup.started_mono_ms(), now(),
                       [weak, serial, run](ProbeRole role, bool ok, const std::string& message) {
                         if (auto self = weak.lock())
                           self->on_probe(serial, run, role, ok, message);
                       });
    slot.prober_run = run;
    slot.prober->start();
  }

  // mu held, strand: keeps a wakeup armed on the end of the slot's process, one per run.
  // Returns how soon the slot needs a tick of its own for its end to be seen: never (0)
  // while the watch waits, steady_tick_ms without a watch or once it fired, busy_tick_ms
  // when the process ended before the wait was armed.
  int64_t sync_exit_watch(Slot& slot) FERRY_REQUIRES(mu) {
    const InstanceSupervisor& sup = *slot.sup;
    if (sup.handle().empty()) {
      slot.exit_watch.reset();
      slot.watch_run = 0;
      return 0;
    }
    if (slot.watch_run != sup.run()) {
      slot.exit_watch.reset();
      slot.watch_run = sup.run();
      slot.watch_fired = false;
      if (const int fd = mgr.runtime_.exit_fd(sup.handle()); fd >= 0) {
        auto watch = std::make_unique<asio::posix::stream_descriptor>(strand);
        boost::system::error_code ec;
        watch->assign(fd, ec);
        if (ec) {
          ::close(fd);
        } else {
          std::weak_ptr<App> weak = shared_from_this();
          watch->async_wait(asio::posix::stream_descriptor::wait_read,
                            [weak, serial = slot.serial](const boost::system::error_code& e) {
                              if (e == asio::error::operation_aborted) return;
                              if (auto self = weak.lock()) self->on_exit_signal(serial);
                            });
          slot.exit_watch = std::move(watch);
          // The reactor is edge-triggered: an end before the wait was queued may have been
          // signalled to no one. Look once.
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 0) > 0) {
            slot.watch_fired = true;
            asio::post(strand, [weak, serial = slot.serial] {
              if (auto self = weak.lock()) self->on_exit_signal(serial);
            });
            return mgr.opts_.busy_tick_ms;
          }
        }
      }
    }
    return !slot.exit_watch || slot.watch_fired ? mgr.opts_.steady_tick_ms : 0;
  }

  // The process of the slot `serial` ended (strand): tick now to reap it.
  void on_exit_signal(uint64_t serial) {
    {
      MutexLock lk(mu);
      for (auto& [key, slot] : instances)
        if (slot.serial == serial) slot.watch_fired = true;
    }
    tick();
  }

  // Advances every instance (strand).
  void tick() {
    bool changed = false, leave = false;
    int64_t next = 0;
    std::vector<std::string> current;
    {
      MutexLock lk(mu);
      // `gone` first: after AppManager::shutdown the manager may no longer exist.
      if (gone || mgr.frozen_) return;  // thaw() ticks again
      next = mgr.opts_.idle_tick_ms;
      if (!router && desired.listen_port != 0 && !removing) {
        (void)bind_router();
        if (!router) next = std::min(next, mgr.opts_.steady_tick_ms);  // tried again then
      }
      // Rolling replacement: the next queued successor starts once no other is on its way,
      // and a superseded instance is gone before the next starts (one extra process).
      bool replacing = false;
      for (const auto& [key, slot] : instances) {
        if (!slot.replaced_by.empty() && !slot.sup->retiring()) {
          auto nx = instances.find(slot.replaced_by);
          replacing |= nx != instances.end() && !nx->second.queued;
        }
        replacing |= slot.superseded && !slot.sup->stopped();
      }
      if (!replacing)
        for (auto& [key, slot] : instances)
          if (slot.queued) {
            slot.queued = false;
            slot.sup->start();
            break;
          }
      const int64_t t = now();
      for (auto& [key, slot] : instances) {
        if (slot.queued) continue;
        auto& sup = *slot.sup;
        const auto before = sup.status().state;
        sup.tick(sup.retiring() && router ? router->in_flight(key) : 0);
        if (!slot.replaced_by.empty() && !sup.retiring()) {
          auto nx = instances.find(slot.replaced_by);
          if (nx == instances.end() || nx->second.sup->status().state == InstanceState::kReady) {
            slot.replaced_by.clear();
            slot.superseded = true;
            sup.retire();
          }
        }
        changed |= sup.take_changed();
        if (before != sup.status().state) changed = true;
        sync_prober(slot);
        if (const int64_t poll_in = sync_exit_watch(slot); poll_in > 0)
          next = std::min(next, poll_in);
        const auto st = sup.status().state;
        if (sup.retiring() || st == InstanceState::kStarting || !slot.replaced_by.empty())
          next = std::min(next, mgr.opts_.busy_tick_ms);
        if (const int64_t d = sup.next_deadline_ms(); d > 0)
          next = std::min(next, std::max<int64_t>(mgr.opts_.busy_tick_ms, d - t));
      }
      for (auto it = instances.begin(); it != instances.end();) {
        if (it->second.sup->stopped()) {
          if (it->second.prober) it->second.prober->stop();
          // Its probe-failure series go with it: one per instance ever started would grow
          // /metrics with every deployment.
          if (mgr.probe_failures_)
            for (const char* role : {"readiness", "liveness"})
              mgr.probe_failures_->remove({name, it->second.sup->spec().id, role});
          if (it->second.own_port) mgr.release_port(it->second.sup->status().port);
          it = instances.erase(it);
          changed = true;
        } else {
          current.push_back(it->second.sup->key());
          ++it;
        }
      }
      if (std::any_of(instances.begin(), instances.end(),
                      [](const auto& kv) { return kv.second.queued; }))
        next = std::min(next, mgr.opts_.busy_tick_ms);
      if (changed)
        update_router();
      else
        prune_release_stats();  // a window may have passed since the last change
      if (removing && instances.empty()) {
        if (router) {
          router->release_port();
          routers_changed();
        }
        router.reset();
        if (mgr.opts_.acme != nullptr) mgr.opts_.acme->forget(name);
        gone = leave = true;
      }
    }
    if (changed || leave) mgr.state_changed_();
    if (leave) {
      {
        MutexLock lk(mgr.mu_);
        auto it = mgr.apps_.find(name);
        if (it != mgr.apps_.end() && it->second.get() == this) mgr.apps_.erase(it);
      }
      mgr.runtime_.housekeeping(name, {});
      return;
    }
    // Log rotation and cleanup: disk I/O, with no lock held.
    const int64_t t = now();
    if (t - last_housekeeping >= mgr.opts_.housekeeping_ms) {
      last_housekeeping = t;
      mgr.runtime_.housekeeping(name, current);
    }
    schedule(next);
  }

  // Arms the timer to tick in `ms` unless it is due sooner already (strand).
  void schedule(int64_t ms) {
    const int64_t due = now() + ms;
    if (timer_armed && timer_due <= due) return;
    timer_armed = true;
    timer_due = due;
    timer.expires_after(std::chrono::milliseconds(ms));
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->timer_armed = false;
      self->tick();
    });
  }

  void post_tick() {
    asio::post(strand, [self = shared_from_this()] {
      {
        MutexLock lk(self->mu);
        if (self->gone) return;  // the manager may be gone too
      }
      self->schedule(0);
    });
  }
};

AppManager::AppManager(asio::io_context& io, Runtime& runtime, const Clock& clock,
                       AppManagerOptions options, std::function<void()> state_changed,
                       metrics::CounterFamily* probe_failures)
    : io_(io),
      runtime_(runtime),
      clock_(clock),
      opts_(std::move(options)),
      state_changed_(std::move(state_changed)),
      probe_failures_(probe_failures) {
  // Agents on one host that share the range would otherwise all hand out its first ports
  // in the same order, and two instances would be given one port before either binds it.
  const uint32_t span = uint32_t{opts_.instance_ports.last} - opts_.instance_ports.first + 1;
  std::random_device seed;
  next_port_ = std::uniform_int_distribution<uint32_t>(0, span - 1)(seed);
}

AppManager::~AppManager() {
  shutdown(false);
}

uint16_t AppManager::allocate_port() {
  MutexLock lk(ports_mu_);
  const uint32_t span = uint32_t{opts_.instance_ports.last} - opts_.instance_ports.first + 1;
  for (uint32_t i = 0; i < span; ++i) {
    const auto port = static_cast<uint16_t>(opts_.instance_ports.first + (next_port_ + i) % span);
    if (used_ports_.count(port) || !port_free(port)) continue;
    next_port_ = (next_port_ + i + 1) % span;
    used_ports_.insert(port);
    return port;
  }
  return 0;
}

void AppManager::release_port(uint16_t port) {
  MutexLock lk(ports_mu_);
  used_ports_.erase(port);
}

std::shared_ptr<AppManager::App> AppManager::find(const std::string& name) const {
  MutexLock lk(mu_);
  auto it = apps_.find(name);
  return it == apps_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<AppManager::App>> AppManager::app_list() const {
  std::vector<std::shared_ptr<App>> out;
  out.reserve(apps_.size());
  for (const auto& [name, app] : apps_) out.push_back(app);
  return out;
}

std::vector<std::shared_ptr<AppManager::App>> AppManager::all_apps() const {
  MutexLock lk(mu_);
  return app_list();
}

Result<int64_t> AppManager::put(const AppDesiredState& state) {
  if (!safe_name(state.app))
    return invalid_argument("app name '" + state.app.substr(0, 128) +
                            "' must be 1-128 letters, digits, . _ - +");
  std::set<std::string> ids;
  for (const auto& i : state.instances) {
    if (!safe_name(i.id))
      return invalid_argument("app " + state.app + ": instance id '" + i.id.substr(0, 128) +
                              "' must be 1-128 letters, digits, . _ - +");
    if (!ids.insert(i.id).second)
      return invalid_argument("app " + state.app + ": instance id " + i.id + " is listed twice");
    if (i.run.command.empty() && i.run.image.empty())
      return invalid_argument("app " + state.app + ": instance " + i.id + " has no command");
  }
  for (const auto& [rel, w] : state.weights)
    if (w < 0) return invalid_argument("app " + state.app + ": weight of " + rel + " is negative");
  // An app that is just leaving (removed, all stopped) is replaced by a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::shared_ptr<App> app;
    bool created = false;
    {
      MutexLock lk(mu_);
      if (shut_down_) return unavailable("the agent is stopping");
      if (frozen_) return unavailable(kHandingOver);
      auto& slot = apps_[state.app];
      if (!slot || (attempt > 0 && slot->gone)) {
        slot = std::make_shared<App>(*this, state.app);
        created = true;
      }
      app = slot;
    }
    MutexLock lk(app->mu);
    if (frozen_) {  // froze while this put waited
      if (created) {
        MutexLock mk(mu_);
        apps_.erase(state.app);
      }
      return unavailable(kHandingOver);
    }
    if (app->gone) continue;
    if (!created && state.generation < app->desired.generation) return app->desired.generation;
    const AppDesiredState before = app->desired;
    app->desired = state;
    // The public port is bound now and held from here on, even with 0 instances.
    if (Status s = app->bind_router(); !s.ok()) {
      app->desired = before;
      if (created) {
        MutexLock mk(mu_);
        apps_.erase(state.app);
      }
      return s;
    }
    app->removing = false;
    app->apply_pending = true;
    app->reconcile();
    app->update_router();  // weights take effect at once for the instances already ready
    app->post_apply();
    state_changed_();
    return state.generation;
  }
  return unavailable("app " + state.app + " is being removed; try again");
}

Result<int64_t> AppManager::set_weights(const std::string& name, int64_t generation,
                                        const std::map<std::string, int>& weights) {
  for (const auto& [rel, w] : weights)
    if (w < 0) return invalid_argument("app " + name + ": weight of " + rel + " is negative");
  auto app = find(name);
  if (!app) return not_found("app " + name + " is not on this agent");
  {
    MutexLock lk(app->mu);
    if (frozen_) return unavailable(kHandingOver);
    if (generation < app->desired.generation) return app->desired.generation;
    app->desired.generation = generation;
    app->desired.weights = weights;
    if (!app->apply_pending) app->applied_generation = generation;
    app->update_router();  // traffic moves now; the state file follows
  }
  state_changed_();
  return generation;
}

Result<AppStatus> AppManager::status(const std::string& name) const {
  auto app = find(name);
  if (!app) return not_found("app " + name + " is not on this agent");
  MutexLock lk(app->mu);
  AppStatus s;
  s.app = name;
  s.generation = app->desired.generation;
  s.applied_generation = app->applied_generation;
  s.weights = app->desired.weights;
  s.instances.reserve(app->instances.size());
  for (const auto& [key, slot] : app->instances) {
    InstanceStatus st = slot.sup->status();
    if (slot.sup->retiring() && st.state != InstanceState::kStopped)
      st.state = InstanceState::kStopping;
    if (slot.queued) st.message = "waiting to replace the running instance";
    if (slot.pending_start) st.message = "accepted, starting";
    s.instances.push_back(std::move(st));
  }
  if (app->router) {
    // Only releases that run, have weight, or lost both within the analysis window: the
    // answer stays O(current instances) however many releases were ever deployed.
    std::set<std::string> live;
    for (const auto& [rel, w] : app->desired.weights)
      if (w > 0) live.insert(rel);
    for (const auto& [key, slot] : app->instances) live.insert(slot.sup->spec().release);
    const int64_t now = clock_.monotonic_ms();
    for (auto& r : app->router->stats()) {
      auto seen = app->release_seen.find(r.release);
      if (live.count(r.release) ||
          (seen != app->release_seen.end() && now - seen->second <= opts_.release_stats_keep_ms))
        s.releases.push_back(std::move(r));
    }
    s.edge.tls = app->router_edge.first.enabled();
    s.edge.access_log = !app->router_edge.second.path.empty();
    s.edge.tls_reloads = app->router->tls_reloads();
    s.edge.tls_reload_failures = app->router->tls_reload_failures();
    s.edge.tls_error = app->router->tls_error();
    s.edge.access_log_written = app->router->access_log_written();
    s.edge.access_log_dropped = app->router->access_log_dropped();
    const Router::H2Abuse abuse = app->router->h2_abuse();
    s.edge.h2_abuse_rapid_reset = abuse.rapid_reset;
    s.edge.h2_abuse_flood = abuse.flood;
    s.edge.h2_abuse_protocol_error = abuse.protocol_error;
  }
  s.edge.router_error = app->router_error;
  if (opts_.acme != nullptr) opts_.acme->fill_status(name, s.edge);
  return s;
}

Status AppManager::remove(const std::string& name) {
  auto app = find(name);
  if (!app) return Status::Ok();
  {
    MutexLock lk(app->mu);
    if (frozen_) return unavailable(kHandingOver);
    app->removing = true;
    app->apply_pending = false;
    app->desired.instances.clear();
    for (auto& [key, slot] : app->instances) {
      slot.queued = slot.pending_start = false;
      slot.sup->retire();
    }
    app->update_router();
  }
  app->post_tick();
  state_changed_();
  return Status::Ok();
}

std::vector<std::string> AppManager::names() const {
  MutexLock lk(mu_);
  std::vector<std::string> out;
  out.reserve(apps_.size());
  for (const auto& [name, app] : apps_) out.push_back(name);
  return out;
}

std::map<std::string, int64_t> AppManager::generations() const {
  const auto apps = all_apps();
  std::map<std::string, int64_t> out;
  for (const auto& app : apps) {
    MutexLock lk(app->mu);
    out[app->name] = app->desired.generation;
  }
  return out;
}

size_t AppManager::router_counters(const std::string& name) const {
  auto app = find(name);
  if (!app) return 0;
  MutexLock lk(app->mu);
  return app->router ? app->router->stats().size() : 0;
}

Json AppManager::snapshot() const {
  const auto apps = all_apps();
  Json out = Json::array();
  for (const auto& app : apps) {
    MutexLock lk(app->mu);
    Json a;
    to_json(a["desired"], app->desired);
    a["removing"] = app->removing;
    a["applied_generation"] = app->applied_generation;
    Json insts = Json::array();
    for (const auto& [key, slot] : app->instances) {
      Json i;
      to_json(i["spec"], slot.sup->spec());
      to_json(i["status"], slot.sup->status());
      i["key"] = key;
      i["start_ticks"] = slot.sup->handle().start_ticks;
      i["runtime_id"] = slot.sup->handle().id;
      i["retiring"] = slot.sup->retiring();
      i["replaced_by"] = slot.replaced_by;
      i["queued"] = slot.queued;
      i["pending_start"] = slot.pending_start;
      i["superseded"] = slot.superseded;
      i["own_port"] = slot.own_port;
      insts.push_back(std::move(i));
    }
    a["instances"] = std::move(insts);
    out.push_back(std::move(a));
  }
  return out;
}

int AppManager::restore(const Json& apps, std::vector<HandedListener>* inherited) {
  int adopted = 0;
  std::vector<std::shared_ptr<App>> restored;
  for (const auto& a : apps) {
    AppDesiredState desired;
    from_json(a.at("desired"), desired);
    if (!safe_name(desired.app)) throw std::runtime_error("bad app name " + desired.app);
    auto app = std::make_shared<App>(*this, desired.app);
    MutexLock lk(app->mu);
    app->desired = desired;
    app->removing = a.value("removing", false);
    app->applied_generation = a.value("applied_generation", desired.generation);
    for (const auto& i : a.at("instances")) {
      InstanceSpec spec;
      InstanceStatus st;
      from_json(i.at("spec"), spec);
      from_json(i.at("status"), st);
      const std::string key = i.value("key", spec.id);
      if (!safe_name(spec.id)) throw std::runtime_error("bad instance id " + spec.id);
      App::Slot slot;
      slot.serial = ++serial_;
      slot.sup = std::make_unique<InstanceSupervisor>(spec.id, desired.app, spec, runtime_, clock_);
      slot.sup->set_port(st.port);
      slot.replaced_by = i.value("replaced_by", "");
      slot.queued = i.value("queued", false);
      slot.pending_start = i.value("pending_start", false);
      slot.superseded = i.value("superseded", false);
      slot.own_port = i.value("own_port", spec.port == 0);
      if (slot.pending_start) app->apply_pending = true;
      if (!slot.queued && !slot.pending_start) {
        const RuntimeHandle h{st.pid, i.value("start_ticks", uint64_t{0}),
                              i.value("runtime_id", "")};
        slot.sup->adopt(st, h, i.value("retiring", i.value("removing", false)));
        if (slot.sup->status().pid > 0) ++adopted;
      }
      if (slot.own_port && st.port != 0) {
        MutexLock pk(ports_mu_);
        used_ports_.insert(st.port);
      }
      app->instances[key] = std::move(slot);
    }
    if (Status s = app->bind_router(inherited); !s.ok() && opts_.log)
      opts_.log->warn("router not started", {{"app", desired.app}, {"error", s.message()}});
    app->update_router();
    restored.push_back(app);
  }
  {
    MutexLock lk(mu_);
    for (auto& app : restored) apps_[app->name] = app;
  }
  for (auto& app : restored) {
    app->post_apply();
    app->post_tick();
  }
  return adopted;
}

namespace {

// One entry per app with a router, read under that app's lock (which also waits for a put,
// weight change or tick already running): its name and address, completed by `fill` with
// what the caller hands on (the listening socket, the counters); kept when `fill` says so.
template <class Apps, class Fill>
std::vector<HandedListener> router_entries(const Apps& apps, Fill fill) {
  std::vector<HandedListener> out;
  for (const auto& app : apps) {
    MutexLock lk(app->mu);
    if (!app->router) continue;
    HandedListener l;
    l.app = app->name;
    l.host = app->router_host;
    l.port = app->router_port;
    if (fill(*app->router, l)) out.push_back(std::move(l));
  }
  return out;
}

}  // namespace

std::vector<HandedListener> AppManager::freeze() {
  std::vector<std::shared_ptr<App>> apps;
  {
    MutexLock lk(mu_);
    frozen_ = true;
    apps = app_list();
  }
  return router_entries(apps, [](Router& r, HandedListener& l) {
    r.pause_accepting();
    l.fd = r.duplicate_listener();
    l.stats = r.stats();
    return l.fd >= 0;
  });
}

std::vector<HandedListener> AppManager::router_counts() {
  const auto apps = all_apps();
  return router_entries(apps, [](Router& r, HandedListener& l) {
    l.stats = r.stats();
    return true;
  });
}

std::vector<HandedListener> AppManager::listeners() {
  const auto apps = all_apps();
  return router_entries(apps, [](Router& r, HandedListener& l) {
    l.fd = r.duplicate_listener();
    return l.fd >= 0;
  });
}

int AppManager::add_router_counts(const std::vector<HandedListener>& counts) {
  int taken = 0;
  for (const auto& c : counts) {
    std::shared_ptr<App> app;
    {
      MutexLock lk(mu_);
      auto it = apps_.find(c.app);
      if (it != apps_.end()) app = it->second;
    }
    if (!app) continue;
    MutexLock lk(app->mu);
    if (!app->router || app->router_host != c.host || app->router_port != c.port) continue;
    app->router->seed_stats(c.stats);
    ++taken;
  }
  return taken;
}

void AppManager::thaw() {
  std::vector<std::shared_ptr<App>> apps;
  {
    MutexLock lk(mu_);
    frozen_ = false;
    apps = app_list();
  }
  for (auto& app : apps) {
    {
      MutexLock lk(app->mu);
      if (app->router) app->router->resume_accepting();
    }
    app->post_apply();
    app->post_tick();
  }
}

void AppManager::drain(int64_t max_ms) {
  const auto apps = all_apps();
  auto open = [&] {
    int n = 0;
    for (auto& app : apps) {
      MutexLock lk(app->mu);
      if (app->router) n += app->router->connections();
    }
    return n;
  };
  for (auto& app : apps) {
    MutexLock lk(app->mu);
    if (app->router) app->router->drain();
  }
  // Real time: this waits for clients, whatever clock the agent is tested with.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(max_ms);
  while (open() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

void AppManager::shutdown(bool stop_instances) {
  std::vector<std::shared_ptr<App>> apps;
  {
    MutexLock lk(mu_);
    if (shut_down_ && !stop_instances) return;
    shut_down_ = true;
    apps = app_list();
  }
  std::vector<std::pair<RuntimeHandle, int>> running;  // handle, stop_grace_ms
  for (auto& app : apps) {
    MutexLock lk(app->mu);
    app->gone = true;
    for (auto& [key, slot] : app->instances) {
      if (slot.prober) slot.prober->stop();
      slot.prober.reset();
      slot.exit_watch.reset();
      if (stop_instances && !slot.sup->handle().empty())
        running.emplace_back(slot.sup->handle(), slot.sup->spec().run.stop_grace_ms);
    }
    if (app->router) app->router->stop();
    app->router.reset();
  }
  // Every handler that starts on an app's strand from now on sees `gone` and leaves the
  // manager alone; one already running may still use it (a tick reads the options and the
  // clock): each strand is drained before shutdown returns, so the manager outlives them.
  // Not from one of those strands (it would wait for itself), nor when the io context is
  // stopped (then nothing runs on it either), and never for longer than a second.
  for (auto& app : apps) {
    if (app->strand.running_in_this_thread() || io_.stopped()) {
      app->timer.cancel();
      continue;
    }
    auto drained = std::make_shared<std::promise<void>>();
    auto done = drained->get_future();
    asio::post(app->strand, [app, drained] {
      app->timer.cancel();
      drained->set_value();
    });
    done.wait_for(std::chrono::seconds(1));
  }
  if (!stop_instances) return;
  for (auto& [h, grace] : running) runtime_.stop(h, StopMode::kGraceful);
  // Real time, not clock_: this waits for processes, whatever clock the machine is tested with.
  const auto start = std::chrono::steady_clock::now();
  for (auto& [h, grace] : running) {
    while (!runtime_.exit_status(h) && std::chrono::steady_clock::now() - start <
                                           std::chrono::milliseconds(std::min(grace, 2000)))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (runtime_.alive(h)) {
      runtime_.stop(h, StopMode::kKill);
      for (int i = 0; i < 100 && !runtime_.exit_status(h); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  MutexLock lk(mu_);
  apps_.clear();
}

// Game days (`ferry chaos`, router/fault.h).
Status AppManager::set_fault(const std::string& name, const FaultSetting& setting) {
  auto app = find(name);
  if (!app) return not_found("app " + name + " is not on this agent");
  return app->faults->set(setting);
}

bool AppManager::clear_fault(const std::string& name, const std::string& experiment) {
  auto app = find(name);
  return app && app->faults->clear(experiment);
}

Result<FaultReport> AppManager::fault_report(const std::string& name) const {
  auto app = find(name);
  if (!app) return not_found("app " + name + " is not on this agent");
  return app->faults->report();
}

Result<std::string> AppManager::kill_instance(const std::string& name, const std::string& id) {
  auto app = find(name);
  if (!app) return not_found("app " + name + " is not on this agent");
  std::string killed;
  {
    MutexLock lk(app->mu);
    if (frozen_) return unavailable(kHandingOver);
    for (auto& [key, slot] : app->instances) {
      const InstanceStatus& st = slot.sup->status();
      if (slot.sup->retiring() || slot.sup->handle().empty()) continue;
      if (id.empty() ? st.state != InstanceState::kReady : st.id != id) continue;
      // Killed behind the supervisor's back: it sees an exit it did not ask for, as after
      // a crash, and restarts the instance by its usual rules.
      runtime_.stop(slot.sup->handle(), StopMode::kKill);
      killed = st.id;
      break;
    }
  }
  if (killed.empty())
    return id.empty() ? failed_precondition("app " + name + " has no ready instance to kill")
                      : not_found("app " + name + " has no running instance '" + id + "'");
  app->post_tick();
  return killed;
}

}  // namespace ferry
