#include "ops/backup_scheduler.h"

#include <chrono>
#include <filesystem>

namespace ferry::ops {

BackupScheduler::BackupScheduler(ServerSpec server, std::string config_path,
                                 std::string ferry_version,
                                 std::function<void(const BackupOutcome&)> on_outcome)
    : server_(std::move(server)),
      config_path_(std::move(config_path)),
      version_(std::move(ferry_version)),
      on_outcome_(std::move(on_outcome)) {
  // A backup that existed before this server started counts as the last good one.
  for (const std::string& b : list_backups(backups_dir(server_))) {
    std::error_code ec;
    const auto t = std::filesystem::last_write_time(b, ec);
    if (ec) continue;
    const auto sys = std::chrono::file_clock::to_sys(t);
    last_success_unix_ = std::chrono::duration<double>(sys.time_since_epoch()).count();
    break;
  }
}

BackupScheduler::~BackupScheduler() {
  stop();
}

void BackupScheduler::start() {
  if (server_.backups.every_ms <= 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { loop(); });
}

void BackupScheduler::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackupScheduler::loop() {
  const auto every = std::chrono::milliseconds(server_.backups.every_ms);
  std::unique_lock lk(mu_);
  // The first backup one interval after start, unless the newest one is older than that.
  auto next = std::chrono::steady_clock::now() + every;
  const double now_unix =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  if (now_unix - last_success_unix_ >= std::chrono::duration<double>(every).count())
    next = std::chrono::steady_clock::now();
  while (!stopping_) {
    if (cv_.wait_until(lk, next, [this] { return stopping_; })) break;
    lk.unlock();
    (void)run_once();
    lk.lock();
    next = std::chrono::steady_clock::now() + every;
  }
}

BackupOutcome BackupScheduler::run_once() {
  BackupOutcome out;
  BackupOptions o;
  o.config_path = config_path_;
  o.ferry_version = version_;
  auto made = create_backup(server_, o);
  if (!made.ok()) {
    out.error = made.status().message();
  } else {
    out.dir = made->dir;
    out.backup_seconds = made->seconds;
    out.pruned = prune_backups(backups_dir(server_), server_.backups.keep);
    out.ok = true;
    if (server_.backups.drill) {
      auto d = drill_backup(backups_dir(server_));
      if (!d.ok()) {
        out.ok = false;
        out.error = "drill: " + d.status().message();
      } else {
        out.drill_seconds = d->restore_seconds;
        if (!d->verify.ok) {
          out.ok = false;
          out.error = "drill of " + d->backup + ": " +
                      (d->verify.problems.empty() ? "failed" : d->verify.problems.front());
        }
      }
    }
  }
  {
    std::lock_guard lk(mu_);
    if (out.ok) {
      last_success_unix_ =
          std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
              .count();
      if (out.drill_seconds > 0) last_drill_seconds_ = out.drill_seconds;
    } else {
      ++failures_;
    }
  }
  if (on_outcome_) on_outcome_(out);
  return out;
}

double BackupScheduler::last_success_unix() const {
  std::lock_guard lk(mu_);
  return last_success_unix_;
}

double BackupScheduler::last_drill_seconds() const {
  std::lock_guard lk(mu_);
  return last_drill_seconds_;
}

int64_t BackupScheduler::failures() const {
  std::lock_guard lk(mu_);
  return failures_;
}

}  // namespace ferry::ops
