// Civil (wall-clock) dates and times in the proleptic Gregorian calendar, with no time
// zone attached, and the arithmetic between them and day counts. Pure functions.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace ferry {

// A date and time of day as a clock on a wall shows it. Fields are not normalized:
// use valid_civil() before trusting one that came from outside.
struct CivilTime {
  int64_t year = 1970;
  int month = 1;   // 1-12
  int day = 1;     // 1-31
  int hour = 0;    // 0-23
  int minute = 0;  // 0-59
  int second = 0;  // 0-59 (no leap seconds)
  auto operator<=>(const CivilTime&) const = default;
};

bool is_leap_year(int64_t year);
// 28-31; 0 for a month outside 1-12.
int days_in_month(int64_t year, int month);
// Days since 1970-01-01 (negative before it) of a valid date.
int64_t days_from_civil(int64_t year, int month, int day);
// The date `days` after 1970-01-01; hour, minute and second are 0.
CivilTime civil_from_days(int64_t days);
// 0 = Sunday ... 6 = Saturday.
int weekday_from_days(int64_t days);
// Floor division for the negative side of the epoch.
int64_t floor_div(int64_t a, int64_t b);

// Seconds since 1970-01-01T00:00:00 of `c` read as if it were UTC. Tolerates fields out
// of range in the direction of normalization (hour 24, second 60 ...) by plain arithmetic.
int64_t civil_to_seconds(const CivilTime& c);
CivilTime civil_from_seconds(int64_t seconds);

// Whether every field is within its calendar range (and the day exists in the month).
bool valid_civil(const CivilTime& c);

// How much of a time of day an ISO text gave; a freeze's inclusive `to` covers the
// whole unit (see windows.h).
enum class CivilPrecision { kDay, kMinute, kSecond };

struct ParsedCivil {
  CivilTime time;
  CivilPrecision precision = CivilPrecision::kDay;
};

// Parses "YYYY-MM-DD", "YYYY-MM-DDTHH:MM" or "YYYY-MM-DDTHH:MM:SS" (a space may stand
// for the T). No zone offsets: the caller supplies the zone. The error quotes `text`
// (bounded) and names what is wrong.
Result<ParsedCivil> parse_iso_civil(std::string_view text);

// "2026-11-30 09:00", or with seconds "2026-11-30 09:00:05".
std::string format_civil(const CivilTime& c, bool with_seconds);

}  // namespace ferry
