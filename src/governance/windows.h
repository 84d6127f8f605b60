// Deployment windows and freezes: whether a deployment may start at an instant, why
// not, and when it next may. Pure logic over specs plus the tz database.
//
// Windows (WindowSpec):
//   * days are 0 = Sunday ... 6 = Saturday; an empty list means every day;
//   * a window is open from start_minute (inclusive) to end_minute (exclusive) of local
//     time in its zone: exactly at the start it is open, exactly at the end closed;
//   * end_minute <= start_minute is an overnight window: it opens at start_minute on a
//     listed day and closes at end_minute on the next day (22:00-02:00 on Fri runs into
//     Saturday 02:00). start == end (e.g. 00:00-00:00) is a full 24 hours;
//   * times are wall-clock times: on a spring-forward day a window 02:00-04:00 in
//     America/Los_Angeles opens at 03:00 PDT (one hour long); on a fall-back day
//     01:00-02:00 is open during both 01:00 hours.
//   * no windows at all: any time (only freezes apply).
// Freezes (FreezeSpec): from/to are "YYYY-MM-DD", "YYYY-MM-DDTHH:MM" or
// "YYYY-MM-DDTHH:MM:SS" local to the freeze's zone, both inclusive. `to` covers the
// whole unit written: a date its whole day, HH:MM that minute, HH:MM:SS that second.
// A civil time that a DST change skips or repeats is read by time_zone.h's rule
// (skipped: the instant of the jump; repeated: the earlier one).
// Any deployment is refused inside a freeze, whatever the windows say.
// A window or freeze that is invalid (unknown zone, bad date) closes the gate: fail
// closed, with the reason saying which one and why.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/spec.h"
#include "governance/time_zone.h"

namespace ferry {

struct WindowCheck {
  bool open = false;
  // Why it is closed, for people: "outside deployment window Mon-Fri 09:00-17:00
  // America/Los_Angeles; next opens 2026-11-30 09:00 PST". Empty when open.
  std::string reason;
  // When closed: the first instant after now at which it is open, if one is found
  // (none when a spec is invalid or no window ever opens).
  std::optional<int64_t> next_open_ms;
};

// Checks windows and freezes at `now_unix_ms` with zones from system_zones().
WindowCheck check_windows(const std::vector<WindowSpec>& windows,
                          const std::vector<FreezeSpec>& freezes, int64_t now_unix_ms);
// The same with zones from `zones` (tests, other tz database directories).
WindowCheck check_windows(const std::vector<WindowSpec>& windows,
                          const std::vector<FreezeSpec>& freezes, int64_t now_unix_ms,
                          ZoneDb& zones);

// Days 0-6, start_minute 0-1439, end_minute 0-1440, a known zone.
Status validate_window(const WindowSpec& w, ZoneDb& zones);
// from/to parse, a known zone, `to` not before `from`.
Status validate_freeze(const FreezeSpec& f, ZoneDb& zones);

// Whether `w` is open at `unix_seconds` in `tz` (which must be w's zone).
bool window_open_at(const WindowSpec& w, const TimeZone& tz, int64_t unix_seconds);

// The instants a freeze covers: [from_ms, until_ms).
struct FreezeSpan {
  int64_t from_ms = 0;
  int64_t until_ms = 0;
};
Result<FreezeSpan> freeze_span(const FreezeSpec& f, ZoneDb& zones);

// "Mon-Fri 09:00-17:00 America/Los_Angeles", "Fri,Sat 22:00-02:00 (next day) UTC",
// "every day 00:00-24:00 UTC".
std::string describe_window(const WindowSpec& w);

}  // namespace ferry
