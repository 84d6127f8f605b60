#include "server/agent_status_cache.h"

#include <chrono>
#include <utility>

#include "engine/reconciler.h"

namespace ferry {

namespace {

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One agent's answers of a round.
struct AgentRound {
  std::string agent;
  bool up = false;
  std::vector<AgentStatusCache::AppRead> apps;
};

}  // namespace

AgentStatusCache::AgentStatusCache(Targets targets, int every_ms)
    : targets_(std::move(targets)), every_ms_(every_ms > 0 ? every_ms : 1000) {}

AgentStatusCache::~AgentStatusCache() {
  stop();
}

void AgentStatusCache::start() {
  if (thread_.joinable()) return;
  {
    MutexLock lk(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void AgentStatusCache::stop() {
  {
    MutexLock lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AgentStatusCache::run() {
  while (true) {
    refresh();
    MutexLock lk(mu_);
    if (lk.wait_for(cv_, std::chrono::milliseconds(every_ms_),
                    [this]() FERRY_REQUIRES(mu_) { return stopping_; }))
      return;
  }
}

void AgentStatusCache::refresh() {
  MutexLock one(refresh_mu_);
  const std::vector<Target> targets = targets_();
  // Agents in parallel, so the slowest agent (not the sum) bounds a round; each agent's
  // own calls one after the other on its connection.
  auto rounds = fan_out<AgentRound>(targets.size(), [&](size_t i) {
    const Target& t = targets[i];
    AgentRound r{.agent = t.client->name()};
    r.up = t.client->health().ok();
    if (!r.up) return r;  // its apps would each wait for the same timeout
    for (const auto& a : t.apps) {
      auto st = t.client->app_status(agent_app_name(a.app, a.env));
      if (st.ok()) r.apps.push_back({r.agent, a.app, a.env, std::move(*st)});
    }
    return r;
  });
  auto snap = std::make_shared<Snapshot>();
  for (auto& r : rounds) {
    snap->agent_up[r.agent] = r.up;
    for (auto& a : r.apps) snap->apps.push_back(std::move(a));
  }
  snap->read_at_ms = steady_ms();
  MutexLock lk(mu_);
  snapshot_ = std::move(snap);
}

std::shared_ptr<const AgentStatusCache::Snapshot> AgentStatusCache::snapshot() const {
  MutexLock lk(mu_);
  return snapshot_ ? snapshot_ : std::make_shared<const Snapshot>();
}

double AgentStatusCache::age_seconds() const {
  const auto s = snapshot();
  return s->read_at_ms == 0 ? -1.0 : (steady_ms() - s->read_at_ms) / 1000.0;
}

}  // namespace ferry
