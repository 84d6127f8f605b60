#include "governance/posix_tz.h"

#include <fmt/format.h>

#include <algorithm>

#include "governance/civil_time.h"

namespace ferry {

// Recursive-descent reader over the TZ string; each method consumes its part or
// returns an error naming it.
class PosixTzParser {
 public:
  explicit PosixTzParser(std::string_view s) : s_(s) {}

  Result<PosixTz> parse() {
    PosixTz tz;
    tz.spec_ = std::string(s_);
    FERRY_RETURN_IF_ERROR(name(tz.std_.abbreviation));
    int32_t off = 0;
    FERRY_RETURN_IF_ERROR(hms(off, 24, "standard time offset"));
    tz.std_.utc_offset = -off;  // POSIX offsets count west of UTC
    if (done()) return tz;
    tz.has_dst_ = true;
    tz.dst_.is_dst = true;
    FERRY_RETURN_IF_ERROR(name(tz.dst_.abbreviation));
    tz.dst_.utc_offset = tz.std_.utc_offset + 3600;
    if (!done() && peek() != ',') {
      FERRY_RETURN_IF_ERROR(hms(off, 24, "daylight saving time offset"));
      tz.dst_.utc_offset = -off;
    }
    if (done()) return error("daylight saving time without a ,start,end rule");
    FERRY_RETURN_IF_ERROR(expect(','));
    FERRY_RETURN_IF_ERROR(rule(tz.start_));
    FERRY_RETURN_IF_ERROR(expect(','));
    FERRY_RETURN_IF_ERROR(rule(tz.end_));
    if (!done()) return error("unexpected text after the end rule");
    return tz;
  }

 private:
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  static bool is_digit(char c) { return c >= '0' && c <= '9'; }
  static bool is_alpha(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

  Status error(std::string_view what) const {
    return invalid_argument(fmt::format("TZ rule \"{}\": {} at offset {}", s_.substr(0, 80), what, pos_));
  }
  Status expect(char c) {
    if (peek() != c) return error(fmt::format("expected '{}'", c));
    ++pos_;
    return Status::Ok();
  }

  Status name(std::string& out) {
    out.clear();
    if (peek() == '<') {
      ++pos_;
      while (!done() && peek() != '>') {
        const char c = peek();
        if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-') return error("bad character in <name>");
        out += c;
        ++pos_;
      }
      FERRY_RETURN_IF_ERROR(expect('>'));
    } else {
      while (is_alpha(peek())) out += s_[pos_++];
    }
    if (out.size() < 3) return error("time zone abbreviation shorter than 3 characters");
    return Status::Ok();
  }

  Result<int> number(int max_value) {
    if (!is_digit(peek())) return error("expected a number");
    int v = 0;
    while (is_digit(peek())) {
      v = v * 10 + (s_[pos_++] - '0');
      if (v > max_value) return error(fmt::format("number above {}", max_value));
    }
    return v;
  }

  // [+-]hh[:mm[:ss]] in seconds.
  Status hms(int32_t& out, int max_hours, std::string_view what) {
    int sign = 1;
    if (peek() == '+' || peek() == '-') sign = s_[pos_++] == '-' ? -1 : 1;
    if (!is_digit(peek())) return error(fmt::format("expected the {}", what));
    auto h = number(max_hours);
    if (!h.ok()) return h.status();
    int m = 0, sec = 0;
    if (peek() == ':') {
      ++pos_;
      auto mm = number(59);
      if (!mm.ok()) return mm.status();
      m = *mm;
      if (peek() == ':') {
        ++pos_;
        auto ss = number(59);
        if (!ss.ok()) return ss.status();
        sec = *ss;
      }
    }
    out = sign * (*h * 3600 + m * 60 + sec);
    return Status::Ok();
  }

  Status rule(PosixTz::Rule& r) {
    using Kind = PosixTz::Rule::Kind;
    if (peek() == 'J') {
      ++pos_;
      r.kind = Kind::kJulian1;
      auto d = number(365);
      if (!d.ok()) return d.status();
      if (*d < 1) return error("Jn day must be 1-365");
      r.day = *d;
    } else if (peek() == 'M') {
      ++pos_;
      r.kind = Kind::kMonthWeekDay;
      auto m = number(12);
      if (!m.ok()) return m.status();
      FERRY_RETURN_IF_ERROR(expect('.'));
      auto w = number(5);
      if (!w.ok()) return w.status();
      FERRY_RETURN_IF_ERROR(expect('.'));
      auto d = number(6);
      if (!d.ok()) return d.status();
      if (*m < 1 || *w < 1) return error("Mm.w.d needs month 1-12 and week 1-5");
      r.month = *m;
      r.week = *w;
      r.weekday = *d;
    } else {
      r.kind = Kind::kJulian0;
      auto d = number(365);
      if (!d.ok()) return d.status();
      r.day = *d;
    }
    r.time = 2 * 3600;
    if (peek() == '/') {
      ++pos_;
      FERRY_RETURN_IF_ERROR(hms(r.time, 167, "rule time"));
    }
    return Status::Ok();
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Result<PosixTz> PosixTz::parse(std::string_view spec) {
  if (spec.size() > 256) return invalid_argument("TZ rule longer than 256 characters");
  return PosixTzParser(spec).parse();
}

int64_t PosixTz::rule_day(const Rule& r, int64_t year) const {
  const int64_t jan1 = days_from_civil(year, 1, 1);
  switch (r.kind) {
    case Rule::Kind::kJulian1:
      // Jn never counts Feb 29: day 60 is always March 1.
      return jan1 + r.day - 1 + (is_leap_year(year) && r.day >= 60 ? 1 : 0);
    case Rule::Kind::kJulian0:
      return jan1 + r.day;
    case Rule::Kind::kMonthWeekDay: {
      const int64_t first = days_from_civil(year, r.month, 1);
      int mday = 1 + (r.weekday - weekday_from_days(first) + 7) % 7 + (r.week - 1) * 7;
      while (mday > days_in_month(year, r.month)) mday -= 7;  // week 5: the last one
      return first + mday - 1;
    }
  }
  return jan1;
}

std::vector<PosixTz::Event> PosixTz::events(int64_t first_year, int64_t last_year) const {
  std::vector<Event> out;
  for (int64_t y = first_year; y <= last_year; ++y) {
    // A start is written in standard local time, an end in daylight saving local time.
    out.push_back({rule_day(start_, y) * 86400 + start_.time - std_.utc_offset, true});
    out.push_back({rule_day(end_, y) * 86400 + end_.time - dst_.utc_offset, false});
  }
  std::sort(out.begin(), out.end(), [](const Event& a, const Event& b) {
    return a.at != b.at ? a.at < b.at : (!a.to_dst && b.to_dst);
  });
  return out;
}

int64_t PosixTz::year_of(int64_t unix_seconds) const {
  return civil_from_seconds(unix_seconds + std_.utc_offset).year;
}

LocalType PosixTz::at(int64_t unix_seconds) const {
  if (!has_dst_) return std_;
  const int64_t y = year_of(unix_seconds);
  const std::vector<Event> ev = events(y - 1, y + 1);
  // Three years of events always hold one at or before an instant of the middle year.
  bool dst = !ev.front().to_dst;
  for (const Event& e : ev) {
    if (e.at > unix_seconds) break;
    dst = e.to_dst;
  }
  return dst ? dst_ : std_;
}

void PosixTz::transitions(int64_t from, int64_t to, std::vector<ZoneTransition>& out) const {
  if (!has_dst_ || to <= from) return;
  const int64_t first = year_of(from) - 1;
  const int64_t last = std::min(year_of(to) + 1, first + 400);
  bool dst = at(from).is_dst;
  const std::vector<Event> ev = events(first, last);
  for (size_t i = 0; i < ev.size(); ++i) {
    // Events at one instant (a rule with DST all year: an end and the next start
    // coincide) change nothing unless the last of them differs from now.
    if (i + 1 < ev.size() && ev[i + 1].at == ev[i].at) continue;
    if (ev[i].at <= from) continue;
    if (ev[i].at > to) break;
    if (ev[i].to_dst == dst) continue;
    dst = ev[i].to_dst;
    out.push_back({ev[i].at, dst ? dst_ : std_});
  }
}

}  // namespace ferry
