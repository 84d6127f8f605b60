// Pushes the server's list of revoked certificate serials (DATA_DIR/tls/revoked, written by
// `ferry agents revoke NAME`) to every enrolled agent over the authenticated agent API
// (PUT /v1/revoked, mutual TLS and the agent token), so each agent refuses a revoked
// certificate without anyone writing a file on its host (docs/operations.md, "Revoking a
// certificate").
//
// An agent that did not take the current list (unreachable, stopped) is tried again on
// every tick (`interval_ms`) until it did; the server's list is the record, so an agent
// offline for days gets it when it comes back, and a restarted server pushes once to every
// agent (pushes are idempotent: the agent only adds). An agent that took the list is sent
// it again every `repush_ms` (default 60 s): an agent whose TLS_DIR/revoked was deleted or
// restored from an old backup gets the whole list back within that time, without a server
// restart (the serials it gains are audited like any delivery). Calls of one pass run in
// parallel (common/worker_pool.h), each bounded by the agent client's timeout.
//
// Thread safety: push_once, behind and poke may be called from any thread; one pass runs
// at a time.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/http_agent_client.h"
#include "common/log.h"

namespace ferry {

class RevocationPusher {
 public:
  struct Options {
    std::string revoked_path;  // DATA_DIR/tls/revoked
    // The agents to push to, by name (the pusher does not own them).
    std::vector<std::pair<std::string, HttpAgentClient*>> agents;
    std::function<bool(const std::string&)> enrolled;  // only enrolled agents are pushed to
    // Called once per agent that took new serials (the audit entry).
    std::function<void(const std::string& agent, size_t added, size_t total)> delivered;
    Logger* log = nullptr;
    int interval_ms = 5'000;
    int repush_ms = 60'000;  // an agent that took the list is sent it again this often
  };
  explicit RevocationPusher(Options options);
  ~RevocationPusher();

  void start();
  void stop();
  // Wakes the loop now (after a revocation).
  void poke();
  // One pass: pushes the current list to every enrolled agent that has not taken it.
  // Returns the agents still behind ("name: error").
  std::vector<std::string> push_once();
  // The agents that have not taken the current list (as of the last pass).
  std::vector<std::string> behind();

 private:
  Options opts_;
  std::mutex pass_mu_;  // one pass at a time
  std::mutex mu_;       // guards what follows
  struct Taken {
    std::string digest;  // of the list it took
    std::chrono::steady_clock::time_point at;
  };
  std::map<std::string, Taken> taken_;  // by agent
  std::map<std::string, std::string> errors_;
  bool stopping_ = false;
  bool poked_ = false;
  std::condition_variable cv_;
  std::thread thread_;
};

}  // namespace ferry
