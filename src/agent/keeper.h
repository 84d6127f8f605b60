// Keeper: the `ferry agent` process keeps the agent's listening sockets open across a
// crash of the agent, and starts the agent again at once.
//
// `ferry agent` runs as two processes of the one binary, as nginx's master and worker do:
// the keeper, a single-threaded process that only waits, and the worker it forks, which is
// the agent (instances, health checks, routers, agent API). The worker sends the keeper a
// duplicate of every router's listening socket, of the agent API's listening socket and of
// the locked data-dir lock file whenever that set changes (send_kept()). When the worker
// dies (kill -9, OOM, a crash), the sockets stay open in the keeper: clients that connect
// meanwhile wait in the listening sockets' backlogs instead of being refused, and the data
// dir stays locked. The keeper forks the next worker at once; it is a copy of the keeper
// (no exec, no dynamic linking: the start-up is the agent's own), inherits the kept
// descriptors and serves on them, re-adopting the instances from the state file.
//
// The keeper ends when its worker ends on purpose (exit code 0: stopped by SIGTERM/SIGINT,
// or handed over to a next agent process in a planned restart, agent/handoff.h), and with
// the worker's code when the first worker fails before it ever served (bad flags, a data
// dir held by another agent). A worker that dies is restarted: the first time at once, and
// while it keeps dying (within `stable_ms` of its start) after a delay that doubles from
// `backoff_min_ms` to `backoff_max_ms`; after `give_up_after` deaths in a row the keeper
// exits with an error (the service manager sees a failed service) rather than spin.
// SIGTERM and SIGINT are passed to the worker (the keeper exits once it has stopped);
// SIGHUP too (the worker starts a planned restart). A worker learns of its keeper's death
// by SIGTERM (PR_SET_PDEATHSIG) and stops like on SIGTERM.
//
// A worker handing over to a successor (a planned restart, agent/handoff.h) tells the
// keeper first (send_handing_over()). If it dies from then until it sends the keeper its
// sockets again (the handoff failed and it serves on), it is not restarted: the successor
// holds the same sockets and the same lock file and goes on as the agent (after "commit",
// or when this one died before deciding), and a restarted copy would serve beside it. The
// keeper then ends with the worker's code.
#pragma once

#include <functional>
#include <vector>

#include "agent/handoff.h"
#include "common/log.h"
#include "common/status.h"

namespace ferry {

// Keeper frames (agent/handoff.h framing): at most this many listeners per frame.
inline constexpr size_t kKeptPerFrame = 60;

struct KeeperOptions {
  // Runs the agent in the forked worker and returns its exit code. `kept`: what the
  // previous worker left with the keeper (empty at the first start; the worker owns the
  // descriptors); `link`: the worker's end of the socket to the keeper (for send_kept);
  // `restart`: how many workers ran before this one.
  std::function<int(Handover kept, int link, int restart)> worker;
  int backoff_min_ms = 100;
  int backoff_max_ms = 10'000;
  int stable_ms = 10'000;  // a worker that lived this long resets the backoff
  int give_up_after = 8;   // deaths in a row, each within stable_ms of its start
  Logger* log = nullptr;
};

// Runs the keeper in this process, which must have no other thread and have SIGINT,
// SIGTERM, SIGHUP and SIGUSR1 blocked; returns the process's exit code. The worker runs
// with this process's signal mask (SIGCHLD, which the keeper blocks, unblocked).
int run_keeper(const KeeperOptions& options);

// The worker's side: the keeper holds these from now on, in place of what it held
// (descriptors are duplicated by the kernel; the caller keeps its own). `lock_fd`/`api_fd`
// -1: none. Errors name what failed.
Status send_kept(int link, const std::vector<HandedListener>& listeners, int lock_fd, int api_fd);

// The worker's side: it starts handing its sockets to a successor (see above). Errors
// name what failed.
Status send_handing_over(int link);

// The keeper's side of one frame, public for tests: folds a frame from the worker into
// `pending` and, on its last frame, moves the complete set into `held` (closing what that
// held). Descriptors that do not match the frame are closed and an error returned; nothing
// held changes then.
Status take_kept_frame(const Json& frame, std::vector<int> fds, Handover* pending, Handover* held);

}  // namespace ferry
