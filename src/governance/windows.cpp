#include "governance/windows.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace ferry {
namespace {

constexpr const char* kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
// A window repeats weekly, but one occurrence can vanish in a DST gap: two weeks and
// a day always hold the next real opening.
constexpr int kSearchDays = 16;
// Each step of the next-opening search passes one freeze or one window start.
constexpr int kMaxSearchSteps = 1000;
constexpr size_t kMaxListed = 5;

bool has_day(const WindowSpec& w, int weekday) {
  return w.days.empty() || std::find(w.days.begin(), w.days.end(), weekday) != w.days.end();
}

std::string hhmm(int minute) { return fmt::format("{:02}:{:02}", minute / 60, minute % 60); }

std::string describe_days(const std::vector<int>& days) {
  bool on[7] = {};
  int count = 0;
  for (int d : days) {
    if (d >= 0 && d <= 6 && !on[d]) {
      on[d] = true;
      ++count;
    }
  }
  if (count == 0 || count == 7) return "every day";
  // Start after a day that is off, so a run across the weekend reads "Fri-Mon".
  int first = 0;
  while (on[first]) ++first;
  std::string out;
  for (int i = 0; i < 7;) {
    const int d = (first + i) % 7;
    if (!on[d]) {
      ++i;
      continue;
    }
    int len = 1;
    while (i + len < 7 && on[(first + i + len) % 7]) ++len;
    if (!out.empty()) out += ',';
    const int last = (d + len - 1) % 7;
    if (len >= 3) out += fmt::format("{}-{}", kDayNames[d], kDayNames[last]);
    else if (len == 2) out += fmt::format("{},{}", kDayNames[d], kDayNames[last]);
    else out += kDayNames[d];
    i += len;
  }
  return out;
}

std::string format_instant(const TimeZone& tz, int64_t ms) {
  const LocalTime lt = tz.to_local(floor_div(ms, 1000));
  return format_local(lt, lt.civil.second != 0);
}

struct LoadedWindow {
  const WindowSpec* spec;
  std::shared_ptr<const TimeZone> tz;
};

struct LoadedFreeze {
  const FreezeSpec* spec;
  std::shared_ptr<const TimeZone> tz;
  FreezeSpan span;
};

// The first instant (seconds) after `t` at which `w` opens, searching kSearchDays.
std::optional<int64_t> next_window_start(const LoadedWindow& w, int64_t t) {
  const WindowSpec& spec = *w.spec;
  const TimeZone& tz = *w.tz;
  const LocalTime now = tz.to_local(t);
  const int64_t today = days_from_civil(now.civil.year, now.civil.month, now.civil.day);
  std::optional<int64_t> best;
  // An opening is either a start time of day (once, or twice on a fall-back day) or a
  // DST jump that lands local time inside the window.
  for (int64_t d = today - 1; d <= today + kSearchDays && !best; ++d) {
    if (!has_day(spec, weekday_from_days(d))) continue;
    CivilTime c = civil_from_days(d);
    c.hour = spec.start_minute / 60;
    c.minute = spec.start_minute % 60;
    const CivilResolution r = tz.resolve(c);
    for (int64_t cand : {r.earliest, r.latest}) {
      if (cand > t && window_open_at(spec, tz, cand) && (!best || cand < *best)) best = cand;
    }
  }
  const int64_t horizon = best ? *best : t + int64_t{kSearchDays + 1} * 86400;
  for (const ZoneTransition& tr : tz.transitions(t, horizon)) {
    if (window_open_at(spec, tz, tr.at) && (!best || tr.at < *best)) {
      best = tr.at;
      break;
    }
  }
  return best;
}

// The first instant at or after `t` (ms) at which no freeze holds and a window (if
// any) is open.
std::optional<int64_t> next_open(const std::vector<LoadedWindow>& windows,
                                 const std::vector<LoadedFreeze>& freezes, int64_t t) {
  for (int step = 0; step < kMaxSearchSteps; ++step) {
    int64_t frozen_until = std::numeric_limits<int64_t>::min();
    for (const auto& f : freezes) {
      if (f.span.from_ms <= t && t < f.span.until_ms) frozen_until = std::max(frozen_until, f.span.until_ms);
    }
    if (frozen_until > t) {
      t = frozen_until;
      continue;
    }
    if (windows.empty()) return t;
    const int64_t secs = floor_div(t, 1000);
    std::optional<int64_t> soonest;
    for (const auto& w : windows) {
      if (window_open_at(*w.spec, *w.tz, secs)) return t;
      auto s = next_window_start(w, secs);
      if (s && (!soonest || *s < *soonest)) soonest = s;
    }
    if (!soonest) return std::nullopt;
    t = *soonest * 1000;
  }
  return std::nullopt;
}

WindowCheck closed(std::string reason) {
  WindowCheck c;
  c.open = false;
  c.reason = std::move(reason);
  return c;
}

}  // namespace

bool window_open_at(const WindowSpec& w, const TimeZone& tz, int64_t unix_seconds) {
  const LocalTime lt = tz.to_local(unix_seconds);
  const int sod = lt.civil.hour * 3600 + lt.civil.minute * 60 + lt.civil.second;
  const int start = w.start_minute * 60, end = w.end_minute * 60;
  if (start < end) return has_day(w, lt.weekday) && start <= sod && sod < end;
  // Overnight: the evening part belongs to today, the morning part to yesterday.
  return (has_day(w, lt.weekday) && sod >= start) || (has_day(w, (lt.weekday + 6) % 7) && sod < end);
}

std::string describe_window(const WindowSpec& w) {
  std::string times = hhmm(w.start_minute) + "-" + hhmm(w.end_minute);
  if (w.end_minute <= w.start_minute) times += " (next day)";
  return fmt::format("{} {} {}", describe_days(w.days), times, w.timezone);
}

Status validate_window(const WindowSpec& w, ZoneDb& zones) {
  for (int d : w.days) {
    if (d < 0 || d > 6) return invalid_argument(fmt::format("window day {} is not 0 (Sunday) to 6 (Saturday)", d));
  }
  if (w.start_minute < 0 || w.start_minute > 24 * 60 - 1)
    return invalid_argument(fmt::format("window start minute {} is not 0-1439", w.start_minute));
  if (w.end_minute < 0 || w.end_minute > 24 * 60)
    return invalid_argument(fmt::format("window end minute {} is not 0-1440", w.end_minute));
  auto tz = zones.load(w.timezone);
  return tz.ok() ? Status::Ok() : tz.status();
}

Result<FreezeSpan> freeze_span(const FreezeSpec& f, ZoneDb& zones) {
  auto tz = zones.load(f.timezone);
  if (!tz.ok()) return tz.status();
  auto from = parse_iso_civil(f.from);
  if (!from.ok()) return from.status().with_context("freeze from");
  auto to = parse_iso_civil(f.to);
  if (!to.ok()) return to.status().with_context("freeze to");
  // `to` is inclusive of the unit written, so the freeze ends one unit after it.
  int64_t unit = 1;
  if (to->precision == CivilPrecision::kDay) unit = 86400;
  if (to->precision == CivilPrecision::kMinute) unit = 60;
  const CivilTime end = civil_from_seconds(civil_to_seconds(to->time) + unit);
  FreezeSpan span;
  span.from_ms = (*tz)->to_unix(from->time) * 1000;
  span.until_ms = (*tz)->to_unix(end) * 1000;
  if (span.until_ms <= span.from_ms)
    return invalid_argument(fmt::format("freeze to \"{}\" is before from \"{}\"", f.to, f.from));
  return span;
}

Status validate_freeze(const FreezeSpec& f, ZoneDb& zones) { return freeze_span(f, zones).status(); }

WindowCheck check_windows(const std::vector<WindowSpec>& windows,
                          const std::vector<FreezeSpec>& freezes, int64_t now_unix_ms) {
  return check_windows(windows, freezes, now_unix_ms, system_zones());
}

WindowCheck check_windows(const std::vector<WindowSpec>& windows,
                          const std::vector<FreezeSpec>& freezes, int64_t now_ms, ZoneDb& zones) {
  constexpr const char* kFix = "; deployments are blocked until the configuration is fixed";
  // Keeps the search's arithmetic far from overflow; a clock outside this is broken.
  constexpr int64_t kLastMs = 253'402'300'799'999;  // 9999-12-31T23:59:59.999Z
  if (now_ms < 0 || now_ms > kLastMs)
    return closed(fmt::format("the clock reads {} ms since 1970, outside 1970-9999; deployments are "
                              "blocked until it is fixed", now_ms));
  std::vector<LoadedWindow> ws;
  for (size_t i = 0; i < windows.size(); ++i) {
    if (Status s = validate_window(windows[i], zones); !s.ok())
      return closed(fmt::format("deployment window #{} ({}) is invalid: {}{}", i + 1,
                                describe_window(windows[i]), s.message(), kFix));
    ws.push_back({&windows[i], *zones.load(windows[i].timezone)});
  }
  std::vector<LoadedFreeze> fs;
  for (size_t i = 0; i < freezes.size(); ++i) {
    auto span = freeze_span(freezes[i], zones);
    if (!span.ok())
      return closed(fmt::format("freeze #{} is invalid: {}{}", i + 1, span.status().message(), kFix));
    fs.push_back({&freezes[i], *zones.load(freezes[i].timezone), *span});
  }

  const std::optional<int64_t> next = next_open(ws, fs, now_ms);
  WindowCheck out;
  if (next && *next == now_ms) {
    out.open = true;
    return out;
  }
  out.next_open_ms = next;

  // The zone to show the next opening in: the window that is open then, else UTC.
  std::shared_ptr<const TimeZone> shown = TimeZone::utc();
  const LoadedFreeze* blocking = nullptr;
  for (const auto& f : fs) {
    if (f.span.from_ms <= now_ms && now_ms < f.span.until_ms &&
        (!blocking || f.span.until_ms > blocking->span.until_ms))
      blocking = &f;
  }
  if (blocking) shown = blocking->tz;
  if (next) {
    for (const auto& w : ws) {
      if (window_open_at(*w.spec, *w.tz, floor_div(*next, 1000))) {
        shown = w.tz;
        break;
      }
    }
  }
  std::string when = next ? "next opens " + format_instant(*shown, *next) : "no opening found";

  if (blocking) {
    const FreezeSpec& f = *blocking->spec;
    out.reason = fmt::format("deployment freeze until {} (from {} to {} {})",
                             format_instant(*blocking->tz, blocking->span.until_ms), f.from, f.to,
                             f.timezone);
    if (!f.reason.empty()) out.reason += ": " + f.reason;
    if (!next || *next != blocking->span.until_ms) out.reason += "; " + when;
    return out;
  }
  std::string list;
  for (size_t i = 0; i < ws.size() && i < kMaxListed; ++i)
    list += (i ? ", " : "") + describe_window(*ws[i].spec);
  if (ws.size() > kMaxListed) list += fmt::format(" and {} more", ws.size() - kMaxListed);
  out.reason = fmt::format("outside deployment window{} {}; {}", ws.size() > 1 ? "s" : "", list, when);
  return out;
}

}  // namespace ferry
