#include "config/values.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace ferry::config {
namespace {

std::string quote(std::string_view s) {
  std::string out = "\"";
  out.append(s.substr(0, 80));
  if (s.size() > 80) out += "…";
  return out + "\"";
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

std::optional<int> day_index(std::string_view name) {
  static constexpr std::array<std::string_view, 7> kShort = {"sun", "mon", "tue", "wed",
                                                             "thu", "fri", "sat"};
  static constexpr std::array<std::string_view, 7> kLong = {
      "sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"};
  std::string n = lower(trim(name));
  for (int i = 0; i < 7; ++i)
    if (n == kShort[i] || n == kLong[i]) return i;
  return std::nullopt;
}

}  // namespace

Parsed<int64_t> parse_duration(std::string_view text) {
  const std::string bad = quote(text) +
                          " is not a duration: use a number with a unit (ms, s, m, h, d), "
                          "e.g. 500ms, 30s, 5m, 1h30m";
  std::string_view s = trim(text);
  if (s.empty()) return bad;
  double total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == start) return bad;
    double n = 0;
    auto [p, ec] = std::from_chars(s.data() + start, s.data() + i, n);
    if (ec != std::errc() || p != s.data() + i) return bad;
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    double scale = 0;
    if (unit == "ms")
      scale = 1;
    else if (unit == "s")
      scale = 1000;
    else if (unit == "m")
      scale = 60'000;
    else if (unit == "h")
      scale = 3'600'000;
    else if (unit == "d")
      scale = 86'400'000;
    else
      return bad;
    total += n * scale;
    if (total > 1e13) return quote(text) + " is too long a duration";
  }
  return static_cast<int64_t>(total + 0.5);
}

Parsed<double> parse_fraction(std::string_view text) {
  std::string_view s = trim(text);
  bool percent = !s.empty() && s.back() == '%';
  if (percent) s = trim(s.substr(0, s.size() - 1));
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return quote(text) +
           " is not a fraction: use a number from 0 to 1 (0.05) or a percentage "
           "(\"5%\")";
  if (percent) v /= 100;
  if (!(v >= 0 && v <= 1))
    return quote(text) + " is out of range: allowed 0 to 1 (or \"0%\" to \"100%\")";
  return v;
}

Parsed<std::vector<int>> parse_days(std::string_view text) {
  std::array<bool, 7> on{};
  std::string_view rest = text;
  bool any = false;
  while (true) {
    size_t comma = rest.find(',');
    std::string_view part = trim(rest.substr(0, comma));
    size_t dash = part.find('-');
    std::optional<int> a = day_index(part.substr(0, dash));
    std::optional<int> b = dash == std::string_view::npos ? a : day_index(part.substr(dash + 1));
    if (!a || !b)
      return quote(part) +
             " is not a day or day range: use Mon, Tue, Wed, Thu, Fri, Sat, Sun, a range such as "
             "Mon-Fri, or a list such as Mon,Wed,Fri";
    for (int d = *a;; d = (d + 1) % 7) {  // a range may wrap: Fri-Mon
      on[d] = true;
      any = true;
      if (d == *b) break;
    }
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  if (!any) return std::string("no days given: use e.g. Mon-Fri");
  std::vector<int> days;
  for (int d = 0; d < 7; ++d)
    if (on[d]) days.push_back(d);
  return days;
}

Parsed<int> parse_clock(std::string_view text) {
  std::string_view s = trim(text);
  int h = 0, m = 0;
  bool shape = (s.size() == 5 && digits(s, 0, 2, h) && s[2] == ':' && digits(s, 3, 2, m)) ||
               (s.size() == 4 && digits(s, 0, 1, h) && s[1] == ':' && digits(s, 2, 2, m));
  if (!shape || m > 59 || h > 24 || (h == 24 && m != 0))
    return quote(text) + " is not a time of day: use HH:MM from 00:00 to 24:00, e.g. \"09:30\"";
  return h * 60 + m;
}

Parsed<DateKey> parse_date_time(std::string_view text, bool end_of_day) {
  std::string_view s = trim(text);
  const std::string bad = quote(text) +
                          " is not a date or date-time: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS], "
                          "e.g. 2026-12-24 or 2026-12-24T18:00";
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
  if (!(s.size() >= 10 && digits(s, 0, 4, y) && s[4] == '-' && digits(s, 5, 2, mo) && s[7] == '-' &&
        digits(s, 8, 2, d)))
    return bad;
  static constexpr std::array<int, 12> kDays = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (mo < 1 || mo > 12 || d < 1 || d > kDays[mo - 1] || (mo == 2 && d == 29 && !leap))
    return quote(text) + " is not a calendar date";
  if (s.size() == 10) {
    if (end_of_day) h = 23, mi = 59, sec = 59;
  } else {
    if (!((s[10] == 'T' || s[10] == ' ') && digits(s, 11, 2, h) && s.size() >= 16 && s[13] == ':' &&
          digits(s, 14, 2, mi)))
      return bad;
    if (s.size() == 19) {
      if (s[16] != ':' || !digits(s, 17, 2, sec)) return bad;
    } else if (s.size() != 16) {
      return bad;
    }
    if (h > 23 || mi > 59 || sec > 59) return quote(text) + " is not a valid time of day";
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, sec);
  return DateKey{buf};
}

std::optional<std::string> check_timezone(std::string_view name) {
  const std::string help =
      " is not a known time zone: use an IANA name such as UTC, Europe/Berlin or "
      "America/Los_Angeles (from the tz database)";
  if (name == "UTC") return std::nullopt;
  bool shape = !name.empty() && name.size() <= 64 && name.front() != '/' &&
               name.find("..") == std::string_view::npos;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
          c == '+'))
      shape = false;
  if (!shape) return quote(name) + help;
  const char* dir = std::getenv("TZDIR");
  std::string path =
      std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + std::string(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return quote(name) + help;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  if (!in || std::string_view(magic, 4) != "TZif") return quote(name) + help;
  return std::nullopt;
}

Parsed<std::vector<std::string>> split_command(std::string_view text) {
  std::vector<std::string> args;
  std::string cur;
  bool in_arg = false;
  char q = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (q == '\'') {
      if (c == '\'')
        q = 0;
      else
        cur += c;
    } else if (q == '"') {
      if (c == '"')
        q = 0;
      else if (c == '\\' && i + 1 < text.size())
        cur += text[++i];
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      q = c;
      in_arg = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
      in_arg = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_arg) args.push_back(std::move(cur));
      cur.clear();
      in_arg = false;
    } else {
      cur += c;
      in_arg = true;
    }
  }
  if (q) return std::string("the command has an unterminated ") + q + " quote";
  if (in_arg) args.push_back(std::move(cur));
  return args;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t prev = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cur = row[j];
      size_t cost = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                            std::tolower(static_cast<unsigned char>(b[j - 1]))
                        ? 0
                        : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, prev + cost});
      prev = cur;
    }
  }
  return row[b.size()];
}

std::string suggest(std::string_view name, const std::vector<std::string_view>& candidates) {
  if (name.size() > 64) return "";
  std::string_view best;
  size_t best_d = SIZE_MAX;
  for (auto c : candidates) {
    size_t d = edit_distance(name, c);
    if (d < best_d) best_d = d, best = c;
  }
  size_t limit = std::max<size_t>(2, name.size() / 3);
  if (best.empty() || best_d > limit || best_d >= name.size()) return "";
  return " (did you mean \"" + std::string(best) + "\"?)";
}

std::string join_quoted(const std::vector<std::string_view>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += i + 1 == items.size() ? " or " : ", ";
    out += "\"" + std::string(items[i]) + "\"";
  }
  return out;
}

}  // namespace ferry::config
