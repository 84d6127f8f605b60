// Backups of the control plane: a consistent online copy of the store, the keys that open
// it kept in their own 0600 files, the configuration, and a manifest (checksums, row counts,
// the audit head) that a restore and a drill check against.
//
// A backup is a directory:
//   ferry-backup-20261201T153000Z/
//     manifest.json   what is inside, with SHA-256 of every file
//     ferry.db        the store (SQLite's online backup API: consistent while the server runs)
//     ferry.yaml      the configuration the server ran with (when known)
//     keys/secrets.key, keys/audit.key   (0600; --keys-to puts them elsewhere)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "core/spec.h"

namespace ferry::ops {

inline constexpr const char* kBackupPrefix = "ferry-backup-";

struct BackupFile {
  std::string name;  // relative to the backup (or to the keys folder for keys/…)
  std::string sha256;
  int64_t bytes = 0;
};

struct BackupManifest {
  int format = 1;
  std::string created_at;  // RFC 3339, UTC
  std::string ferry_version;
  std::string store_kind;  // "sqlite"
  int schema_version = 0;
  std::map<std::string, int64_t> counts;  // rows per table
  int64_t audit_seq = 0;                  // the audit chain's head at the time of the copy
  std::string audit_hash;
  std::vector<BackupFile> files;
  std::string keys_dir;  // where the keys went when not inside ("" = keys/ inside)
};

Json manifest_to_json(const BackupManifest& m);
Result<BackupManifest> manifest_from_json(const Json& j);

struct BackupOptions {
  std::string to_dir;         // where the backup folder is made ("" = server.backups.dir)
  std::string keys_to;        // "" = keys/ inside the backup
  std::string config_path;    // copied in when set
  std::string ferry_version;  // written to the manifest
};

struct BackupResult {
  std::string dir;
  BackupManifest manifest;
  double seconds = 0;
};

// Where scheduled and default backups go: server.backups.dir, else <data_dir>/backups.
std::string backups_dir(const ServerSpec& server);
// The files holding the secrets key and the audit key for these settings.
std::string secrets_key_path(const ServerSpec& server);
std::string audit_key_path(const ServerSpec& server);

// Copies the store (online), keys and config into a new folder under the target directory.
Result<BackupResult> create_backup(const ServerSpec& server, const BackupOptions& options);

struct VerifyReport {
  bool ok = false;
  std::vector<std::string> problems;      // each names the file, table or entry
  std::map<std::string, int64_t> counts;  // as found in the copy
  int64_t audit_entries = 0;
  int64_t secrets_opened = 0;
  double seconds = 0;
};

// Checks a backup folder: every file's checksum, the row counts, the audit chain up to the
// recorded head (with the audit key), and that every secret decrypts with the secrets key.
// `keys_dir` overrides where the keys are looked for.
VerifyReport verify_backup(const std::string& backup_dir, const std::string& keys_dir = "");

struct RestoreOptions {
  std::string keys_dir;  // where the backup's keys are ("" = as the manifest says)
};

// Puts a verified backup in place of the store and keys of `server`. Refuses while a
// server holds the data directory, and when the backup does not verify. The files it
// replaces are kept beside them as *.before-restore-<time>.
Result<VerifyReport> restore_backup(const ServerSpec& server, const std::string& backup_dir,
                                    const RestoreOptions& options);

struct DrillReport {
  std::string backup;      // the folder drilled
  double restore_seconds;  // copy into a fresh store + open + verify: the recovery time
  VerifyReport verify;
};

// Restores the newest backup in `dir` into a temporary folder and verifies it there.
Result<DrillReport> drill_backup(const std::string& dir, const std::string& keys_dir = "");

// Backup folders in `dir`, newest first.
std::vector<std::string> list_backups(const std::string& dir);
// Removes all but the newest `keep` backups; returns how many went.
int prune_backups(const std::string& dir, int keep);

// True when a running `ferry server` holds the data directory's lock.
bool server_holds(const ServerSpec& server);

}  // namespace ferry::ops
