// StateFile: the agent's state (every app's desired state and the runtime handle of each
// instance), written atomically (temp file, fsync, rename) so a restarted agent re-adopts
// its instances. Environment values (the app's secrets among them) are never written in
// clear: each instance's `run.env` is sealed with AES-256-GCM under a key derived from
// the agent's token, so the file alone (a backup, a copy) tells nothing.
//
// Thread safety: save() and load() may be called from any thread; saves are serialised.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace ferry {

// The 32-byte sealing key for an agent token (HMAC-SHA-256 of the token, domain-separated).
std::string state_key_from_token(std::string_view token);

class StateFile {
 public:
  // `key`: 32 bytes (state_key_from_token).
  StateFile(std::string path, std::string key);

  // Writes {"version": 2, "apps": apps} with every env sealed. Disk I/O: call it with no
  // agent lock held. An error names the file.
  Status save(const Json& apps);
  // The apps of the file with env values opened; nullopt when there is no file yet.
  // kInvalidArgument names the file when it is malformed or sealed under another key.
  Result<std::optional<Json>> load() const;

  const std::string& path() const { return path_; }

  // Exposed for tests: seal/open one env object.
  Result<std::string> seal(const Json& env) const;
  Result<Json> open(const std::string& sealed) const;

 private:
  Status transform(Json& apps, bool sealing) const;

  std::string path_;
  std::string key_;
  std::mutex save_mu_;  // one writer of path.tmp at a time
};

}  // namespace ferry
