// LeaderElector: one leader among the `ferry server`s that share one PostgreSQL store.
//
// The leader holds a lease row in the store (Store::try_lead) that it renews every
// lease_ms/3; standbys try to take it every lease_ms/6 and succeed once it has lapsed by
// the database's clock. Each takeover adds one to the lease's fencing token. While it
// leads, the server's own store carries that token (Store::set_fencing_token): every
// write checks it inside its transaction, so a leader that was stopped past its lease
// (SIGSTOP, a VM pause) and runs again cannot write a thing once another server has
// taken over; the refused write wakes the elector, which steps down.
//
// Why a lease row and not a session advisory lock: the lock lives as long as a TCP
// connection, which a paused or partitioned leader keeps open until keepalives give up
// (minutes), so a standby could not take over in seconds; and the lock alone gives no
// token to fence a leader that comes back. The lease's expiry is the database's clock, so
// the servers' clocks need not agree.
//
// The leader steps down (on_lost) when a renewal finds another holder, when a write was
// refused by the token, or when it has not renewed for a whole lease by its own monotonic
// clock (the database unreachable: it cannot know whether another server took over).
//
// The elector renews over its own store connection (`lease_store`), so a busy or stalled
// connection of the API and the engine never delays a renewal.
//
// Thread safety: public methods may be called from any thread. on_elected and on_lost
// run on the elector's thread, one at a time, never both at once; stop() waits for them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/log.h"
#include "store/store.h"

namespace ferry {

struct LeaderOptions {
  int64_t lease_ms = 3000;
  std::string holder;   // this server's id, unique among the servers (make_holder_id)
  std::string address;  // where this server serves the API (for forwarded writes)
  // Runs when this server becomes leader with `token` (start the engine and the jobs).
  std::function<void(int64_t token)> on_elected;
  // Runs when it stops leading (stop the engine and the jobs); `why` says what happened.
  std::function<void(const std::string& why)> on_lost;
};

// "HOST-PID-RANDOM": an id no other running server has.
std::string make_holder_id();

class LeaderElector {
 public:
  // `fenced` is the store the leader writes through (gets the token); `lease_store` is a
  // second connection to the same database, owned by the elector.
  LeaderElector(Store& fenced, std::unique_ptr<Store> lease_store, LeaderOptions options,
                Logger* log);
  ~LeaderElector();
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // The address written into the lease (before start()).
  void set_address(std::string address) { opts_.address = std::move(address); }
  // Makes the first attempt (on_elected may run on the caller's thread), then goes on in
  // the background.
  void start();
  // Steps down if leading (on_lost runs) and resigns the lease so a standby takes over at
  // once instead of after it lapses.
  void stop();

  bool is_leader() const;
  int64_t token() const;  // this server's token while it leads, else 0
  const std::string& holder() const { return opts_.holder; }
  // The lease as last read (holder, address, token); holder "" when none was read yet.
  LeaderLease last_seen() const;

 private:
  void loop(std::chrono::milliseconds first_wait);
  // One attempt to take or renew the lease; returns how long to wait before the next.
  std::chrono::milliseconds tick();
  void step_down(const std::string& why);

  Store& fenced_;
  std::unique_ptr<Store> lease_store_;
  LeaderOptions opts_;
  Logger* log_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;       // guarded by mu_
  bool fenced_signal_ = false;  // guarded by mu_: a write was refused by the token
  bool leader_ = false;         // guarded by mu_
  int64_t token_ = 0;           // guarded by mu_
  LeaderLease seen_;            // guarded by mu_
  std::chrono::steady_clock::time_point valid_until_;  // guarded by mu_: own-clock expiry
  std::thread thread_;
};

}  // namespace ferry
