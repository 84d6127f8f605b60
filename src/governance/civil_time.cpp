#include "governance/civil_time.h"

#include <fmt/format.h>

namespace ferry {

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool is_leap_year(int64_t year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return 0;
  if (month == 2 && is_leap_year(year)) return 29;
  return kDays[month - 1];
}

// The calendar repeats every 400 years (146097 days). Counting years from March makes
// the leap day the last day of the counted year, so month lengths follow a fixed
// pattern: (153 * m + 2) / 5 gives the days before month m (March = 0).
int64_t days_from_civil(int64_t year, int month, int day) {
  const int64_t y = month <= 2 ? year - 1 : year;
  const int64_t era = floor_div(y, 400);
  const int64_t year_of_era = y - era * 400;                       // 0-399
  const int64_t m = month > 2 ? month - 3 : month + 9;              // March = 0
  const int64_t day_of_year = (153 * m + 2) / 5 + day - 1;          // 0-365
  const int64_t day_of_era =
      year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  // 719468 days separate 0000-03-01 (the start of era 0) from 1970-01-01.
  return era * 146097 + day_of_era - 719468;
}

CivilTime civil_from_days(int64_t days) {
  const int64_t z = days + 719468;
  const int64_t era = floor_div(z, 146097);
  const int64_t day_of_era = z - era * 146097;  // 0-146096
  const int64_t year_of_era =
      (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
  const int64_t day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  const int64_t mp = (5 * day_of_year + 2) / 153;  // March = 0
  CivilTime c;
  c.day = static_cast<int>(day_of_year - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = year_of_era + era * 400 + (c.month <= 2 ? 1 : 0);
  return c;
}

int weekday_from_days(int64_t days) {
  // 1970-01-01 was a Thursday.
  int64_t w = (days + 4) % 7;
  if (w < 0) w += 7;
  return static_cast<int>(w);
}

int64_t civil_to_seconds(const CivilTime& c) {
  return days_from_civil(c.year, c.month, c.day) * 86400 + int64_t{c.hour} * 3600 +
         int64_t{c.minute} * 60 + c.second;
}

CivilTime civil_from_seconds(int64_t seconds) {
  const int64_t days = floor_div(seconds, 86400);
  int64_t rest = seconds - days * 86400;
  CivilTime c = civil_from_days(days);
  c.hour = static_cast<int>(rest / 3600);
  rest %= 3600;
  c.minute = static_cast<int>(rest / 60);
  c.second = static_cast<int>(rest % 60);
  return c;
}

bool valid_civil(const CivilTime& c) {
  return c.month >= 1 && c.month <= 12 && c.day >= 1 && c.day <= days_in_month(c.year, c.month) &&
         c.hour >= 0 && c.hour <= 23 && c.minute >= 0 && c.minute <= 59 && c.second >= 0 &&
         c.second <= 59;
}

namespace {

// Reads exactly `width` digits at `pos`; -1 when any is not a digit.
int read_digits(std::string_view s, size_t pos, size_t width) {
  if (pos + width > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + width; ++i) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

std::string quoted(std::string_view text) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (char ch : text.substr(0, kMax)) out += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  if (text.size() > kMax) out += "...";
  return out + "\"";
}

}  // namespace

Result<ParsedCivil> parse_iso_civil(std::string_view text) {
  const auto bad = [&](std::string_view what) {
    return invalid_argument(fmt::format(
        "{} is not a date or date-time ({}); expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or "
        "YYYY-MM-DDTHH:MM:SS in the given time zone",
        quoted(text), what));
  };
  if (text.size() != 10 && text.size() != 16 && text.size() != 19) return bad("wrong length");
  ParsedCivil p;
  const int y = read_digits(text, 0, 4), mo = read_digits(text, 5, 2), d = read_digits(text, 8, 2);
  if (y < 0 || mo < 0 || d < 0 || text[4] != '-' || text[7] != '-') return bad("bad date");
  p.time.year = y;
  p.time.month = mo;
  p.time.day = d;
  if (text.size() >= 16) {
    if (text[10] != 'T' && text[10] != 't' && text[10] != ' ') return bad("expected T after the date");
    const int h = read_digits(text, 11, 2), mi = read_digits(text, 14, 2);
    if (h < 0 || mi < 0 || text[13] != ':') return bad("bad time of day");
    p.time.hour = h;
    p.time.minute = mi;
    p.precision = CivilPrecision::kMinute;
  }
  if (text.size() == 19) {
    const int s = read_digits(text, 17, 2);
    if (s < 0 || text[16] != ':') return bad("bad seconds");
    p.time.second = s;
    p.precision = CivilPrecision::kSecond;
  }
  if (!valid_civil(p.time)) return bad("no such date or time of day");
  return p;
}

std::string format_civil(const CivilTime& c, bool with_seconds) {
  if (with_seconds) {
    return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", c.year, c.month, c.day, c.hour,
                       c.minute, c.second);
  }
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute);
}

}  // namespace ferry
