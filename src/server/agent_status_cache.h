// What /metrics says about the agents (up, router and instance figures of every app),
// read from them in the background every few seconds rather than at scrape time.
//
// A scrape that called the agents waited on the slowest of them: one unreachable agent
// (a 3 s call timeout) or a busy one (an agent starting instances on a loaded host) made
// ferry's own /metrics slower than Prometheus' scrape timeout, so Prometheus recorded
// ferry itself as down (`up == 0`) exactly while a deployment ran, and a PromQL analysis
// that asked for ferry's `up` failed a good release. Now a scrape reads the last snapshot
// and never waits on an agent; `ferry_agent_status_age_seconds` says how old it is.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "core/agent_api.h"

namespace ferry {

class AgentStatusCache {
 public:
  // One agent to read: its health, then the status of each of its apps.
  struct Target {
    AgentClient* client = nullptr;
    struct App {
      std::string app, env;  // as ferry.yaml names them (the agent's name is "app.env")
    };
    std::vector<App> apps;
  };
  using Targets = std::function<std::vector<Target>()>;

  struct AppRead {
    std::string agent, app, env;
    AppStatus status;
  };
  struct Snapshot {
    std::map<std::string, bool> agent_up;  // by agent name
    std::vector<AppRead> apps;             // the apps whose status was read this round
    int64_t read_at_ms = 0;                // steady clock, ms; 0: never read
  };

  // `targets` is asked at every round (the configuration may have changed since).
  AgentStatusCache(Targets targets, int every_ms);
  ~AgentStatusCache();
  AgentStatusCache(const AgentStatusCache&) = delete;
  AgentStatusCache& operator=(const AgentStatusCache&) = delete;

  // Reads every agent once (in parallel, each bounded by its client's timeout) and then
  // every `every_ms` until stop().
  void start();
  void stop();
  // One round now, in the caller's thread (tests; start() runs rounds in its own).
  void refresh();
  // The last round's answers (empty before the first round ended). Never blocks on an
  // agent: at most on the swap of a pointer.
  std::shared_ptr<const Snapshot> snapshot() const;
  // Seconds since the last round ended (-1: never).
  double age_seconds() const;

 private:
  void run();

  Targets targets_;
  const int every_ms_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const Snapshot> snapshot_ FERRY_GUARDED_BY(mu_);
  bool stopping_ FERRY_GUARDED_BY(mu_) = false;
  Mutex refresh_mu_;  // one round at a time
  std::thread thread_;
};

}  // namespace ferry
