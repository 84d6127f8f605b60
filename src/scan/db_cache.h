// A cache of compiled Vectorscan databases on disk, so a `ferry scan` process does not pay
// the compile (about half of its start-up) for a rule set it has seen before.
//
// A database is stored under a key that is the SHA-256 of everything the compile depends
// on: Vectorscan's version, the host's platform (CPU features, tuning), the mode and every
// pattern with its flags and id. The file holds the key again and the SHA-256 of the
// serialized database. A cached database is used only when all of these hold; anything else
// is a miss and the caller compiles (a cache can make a scan faster, never blind):
//   - the directory is not a symlink, is owned by the effective user and is not writable by
//     group or others (a world-writable place such as /tmp itself is refused);
//   - the file is a regular file (not followed if a symlink), owned by the effective user,
//     not writable by group or others, at most kMaxDbCacheFile bytes;
//   - its key matches and its payload's SHA-256 matches (a truncated or edited file is
//     refused, and overwritten by the next store);
//   - Vectorscan accepts it (version and platform of the database).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct hs_database;

namespace ferry::scan {

constexpr uint64_t kMaxDbCacheFile = 64ull << 20;

// $XDG_CACHE_HOME/ferry, else $HOME/.cache/ferry; empty when neither is set (no cache).
std::string default_db_cache_dir();

std::string db_cache_key(const std::vector<std::string>& patterns,
                         const std::vector<unsigned>& flags, unsigned mode);

// The cached database for `key`, or nullptr (a miss or a refused file; `why` says which,
// for tests and debugging). The caller owns the database (hs_free_database).
hs_database* db_cache_load(const std::string& dir, const std::string& key, std::string* why);

// Stores `db` under `key`: created in a private temporary file and renamed into place, in
// `dir` (created with mode 0700 when missing; nothing is written when the directory fails
// the checks above). Best effort: false when nothing was stored. Keeps at most
// kMaxDbCacheEntries databases, removing the oldest.
constexpr size_t kMaxDbCacheEntries = 16;
bool db_cache_store(const std::string& dir, const std::string& key, const hs_database* db);

}  // namespace ferry::scan
