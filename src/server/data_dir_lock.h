// DataDirLock: one `ferry server` per data dir (and per SQLite store). Two servers on one
// store would each run the engine and take over the other's deployments; the second one
// must refuse to start instead.
//
// The lock is an flock(2) on a file (`DATA_DIR/server.lock`, and `DB_PATH.server-lock`
// beside a SQLite database that lives elsewhere): the kernel drops it when the process
// exits, however it exits (kill -9 included), so a crashed server never leaves a stale
// lock. The file holds the owner's pid, listen address and start time, for the message
// the next server prints. Not thread-safe; the control plane owns it for its lifetime.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

class DataDirLock {
 public:
  // Takes the lock on `path` (created 0600 if missing). kFailedPrecondition when another
  // process holds it, naming the lock file and what that process wrote into it (pid,
  // address); other errors (kInternal) name the path and errno text.
  static Result<DataDirLock> acquire(const std::string& path);
  // Both locks of a server: its data dir's, and its SQLite store's when the store URL is
  // "sqlite:PATH" (other schemes: the data dir's only).
  static Result<std::vector<DataDirLock>> acquire_for_server(const std::string& data_dir,
                                                             const std::string& store_url);

  DataDirLock(DataDirLock&& o) noexcept;
  DataDirLock& operator=(DataDirLock&& o) noexcept;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

  // Rewrites the owner line (after the listen address is known). Errors are ignored by
  // callers on purpose: the line only improves a message.
  Status describe_owner(const std::string& listen);
  const std::string& path() const { return path_; }

 private:
  DataDirLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;
};

}  // namespace ferry
