// Scheduled backups (ferry.yaml server.backups): every `every`, a backup, pruning to
// `keep`, and a restore drill of it; the outcome for /metrics, the log and notifications.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "core/spec.h"
#include "ops/backup.h"

namespace ferry::ops {

struct BackupOutcome {
  bool ok = false;
  std::string dir;    // the backup made (when one was)
  std::string error;  // why it failed (backup or drill)
  double backup_seconds = 0;
  double drill_seconds = 0;  // 0 when no drill ran
  int pruned = 0;
};

class BackupScheduler {
 public:
  // `on_outcome` runs on the scheduler's thread after every attempt.
  BackupScheduler(ServerSpec server, std::string config_path, std::string ferry_version,
                  std::function<void(const BackupOutcome&)> on_outcome);
  ~BackupScheduler();
  BackupScheduler(const BackupScheduler&) = delete;
  BackupScheduler& operator=(const BackupScheduler&) = delete;

  void start();
  void stop();
  // One backup (+ prune + drill) now, on the calling thread.
  BackupOutcome run_once();

  // For /metrics: unix seconds of the last good backup (0 = none yet), failures so far.
  double last_success_unix() const;
  double last_drill_seconds() const;
  int64_t failures() const;

 private:
  void loop();

  const ServerSpec server_;
  const std::string config_path_;
  const std::string version_;
  std::function<void(const BackupOutcome&)> on_outcome_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  double last_success_unix_ = 0;
  double last_drill_seconds_ = 0;
  int64_t failures_ = 0;
  std::thread thread_;
};

}  // namespace ferry::ops
