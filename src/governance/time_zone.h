// Time zones from the system's tz database ($TZDIR or /usr/share/zoneinfo, TZif files of RFC
// 8536, versions 1-4): Unix time to local civil time and back, the POSIX TZ footer
// rule for instants after a file's last transition, and a thread-safe cache.
//
// Local → Unix rule (documented for users in docs/governance.md):
//   * a civil time that exists once maps to that instant;
//   * one that occurs twice (clocks set back: 01:30 on a fall-back day) maps to the
//     earlier instant by default, or the later with Choose::kLatest;
//   * one that does not exist (clocks set forward: 02:30 on a spring-forward day) maps
//     to the instant of the jump, the first local time that exists after it (03:00).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "governance/civil_time.h"
#include "governance/posix_tz.h"

namespace ferry {

// Local time at one instant in one zone.
struct LocalTime {
  CivilTime civil;
  int32_t utc_offset = 0;  // seconds east of UTC
  bool is_dst = false;
  std::string abbreviation;
  int weekday = 4;         // 0 = Sunday ... 6 = Saturday
};

// How a civil time maps to instants in a zone (see the rule above).
struct CivilResolution {
  enum class Kind { kUnique, kRepeated, kSkipped };
  Kind kind = Kind::kUnique;
  int64_t earliest = 0;  // Unix seconds
  int64_t latest = 0;    // == earliest unless kRepeated
};

// An immutable, loaded time zone. Safe to share between threads.
class TimeZone {
 public:
  enum class Choose { kEarliest, kLatest };

  // Parses the bytes of a TZif file. `name` is only used for messages and name().
  // Refuses malformed files and files with leap-second records ("right/" zones).
  static Result<std::shared_ptr<const TimeZone>> from_tzif(std::string name, std::string_view bytes);
  // UTC without touching the file system.
  static std::shared_ptr<const TimeZone> utc();

  const std::string& name() const { return name_; }
  // The TZif version: 1, 2, 3 or 4.
  int version() const { return version_; }

  LocalType type_at(int64_t unix_seconds) const;
  LocalTime to_local(int64_t unix_seconds) const;
  // `c` must be valid_civil(); others are read by plain arithmetic.
  CivilResolution resolve(const CivilTime& c) const;
  int64_t to_unix(const CivilTime& c, Choose choose = Choose::kEarliest) const;
  // The changes of local time type in (from, to], in time order.
  std::vector<ZoneTransition> transitions(int64_t from, int64_t to) const;

 private:
  TimeZone() = default;

  std::string name_;
  int version_ = 1;
  std::vector<int64_t> at_;        // transition instants, strictly increasing
  std::vector<uint8_t> type_idx_;  // index into types_ for each transition
  std::vector<LocalType> types_;   // at least one
  std::optional<PosixTz> footer_;
};

// "2026-11-30 09:00 PST" (seconds shown when asked).
std::string format_local(const LocalTime& t, bool with_seconds = false);

// A zone name is 1-128 characters of A-Z a-z 0-9 / _ + -, with no empty, "." or ".."
// component and no leading '/' or '-'. The error quotes the name.
Status validate_zone_name(std::string_view name);

// Loads zones by name from a tz database directory and keeps them; thread-safe.
// "UTC" and "Etc/UTC" work even without a tz database installed.
class ZoneDb {
 public:
  explicit ZoneDb(std::string root = "/usr/share/zoneinfo");

  // Errors: invalid_argument for a bad name or a damaged file; not_found, naming the
  // zone and the directory, for a zone the database does not have.
  Result<std::shared_ptr<const TimeZone>> load(std::string_view name);
  size_t cached() const;

  static constexpr size_t kMaxFileBytes = 256 * 1024;
  static constexpr size_t kMaxCached = 1024;

 private:
  std::string root_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const TimeZone>, std::less<>> cache_;
};

// The process-wide database over $TZDIR, or /usr/share/zoneinfo when it is unset (read
// at the first call).
ZoneDb& system_zones();

}  // namespace ferry
