// The POSIX TZ rule string that ends a TZif v2+ file ("PST8PDT,M3.2.0,M11.1.0"): it
// gives local time for instants after the file's last listed transition. Parsed
// per POSIX with the RFC 8536 extensions (quoted <+03> names, rule times -167h..167h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace ferry {

// One kind of local time: its offset east of UTC, whether it is daylight saving time,
// and its abbreviation ("PDT", "CET", "+0530").
struct LocalType {
  int32_t utc_offset = 0;  // seconds east of UTC
  bool is_dst = false;
  std::string abbreviation;
  bool operator==(const LocalType&) const = default;
};

// A change of local time: from `at` (Unix seconds) on, `after` applies.
struct ZoneTransition {
  int64_t at = 0;
  LocalType after;
};

class PosixTz {
 public:
  // Fails on anything POSIX does not allow, naming the offending part, and on a rule
  // with daylight saving time but no ",start,end" part (the default is unspecified).
  static Result<PosixTz> parse(std::string_view spec);

  // The local time type in effect at `unix_seconds`.
  LocalType at(int64_t unix_seconds) const;
  // Appends, in time order, the changes of local time type in (from, to]. Ranges
  // longer than 400 years are cut to the first 400.
  void transitions(int64_t from, int64_t to, std::vector<ZoneTransition>& out) const;

  bool has_dst() const { return has_dst_; }
  const std::string& spec() const { return spec_; }

 private:
  // A date in a year: Jn (1-365, Feb 29 never counted), n (0-365), or Mm.w.d.
  struct Rule {
    enum class Kind { kJulian1, kJulian0, kMonthWeekDay };
    Kind kind = Kind::kMonthWeekDay;
    int day = 0;      // Jn / n
    int month = 0;    // Mm.w.d
    int week = 0;     // 1-5, 5 = last
    int weekday = 0;  // 0 = Sunday
    int32_t time = 2 * 3600;  // local seconds after midnight of that date
  };
  struct Event {
    int64_t at;
    bool to_dst;
  };

  int64_t rule_day(const Rule& r, int64_t year) const;
  // The DST start and end instants of years [first, last], sorted (ends before starts
  // at the same instant, so a rule with DST all year stays in DST).
  std::vector<Event> events(int64_t first_year, int64_t last_year) const;
  int64_t year_of(int64_t unix_seconds) const;

  std::string spec_;
  LocalType std_;
  LocalType dst_;
  bool has_dst_ = false;
  Rule start_;
  Rule end_;

  friend class PosixTzParser;
};

}  // namespace ferry
