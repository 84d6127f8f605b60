// Internal: parsers of the scalar forms ferry.yaml uses (durations, percentages, days,
// clock times, dates, time zones, commands) and the "did you mean" suggestion. Each returns
// the value, or an error text that names the value and what is allowed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ferry::config {

// A value or the reason there is none.
template <typename T>
using Parsed = std::variant<T, std::string>;

// "500ms", "30s", "5m", "1h", "1h30m", "1.5s", "2d" → milliseconds.
Parsed<int64_t> parse_duration(std::string_view text);
// "5%" → 0.05, "0.05" → 0.05; result within [0, 1].
Parsed<double> parse_fraction(std::string_view text);
// "Mon-Fri", "Sat,Sun", "Fri-Mon" (wraps), "Monday" → sorted days, 0 = Sunday … 6 = Saturday.
Parsed<std::vector<int>> parse_days(std::string_view text);
// "09:00" → 540; "24:00" → 1440.
Parsed<int> parse_clock(std::string_view text);
// "2026-12-24", "2026-12-24T18:00" or "2026-12-24 18:00:30" → a sortable key
// "YYYY-MM-DDTHH:MM:SS"; a date alone is its first second, or its last when `end_of_day`.
struct DateKey {
  std::string key;
};
Parsed<DateKey> parse_date_time(std::string_view text, bool end_of_day);
// An IANA time zone name that exists in the tz database ($TZDIR or /usr/share/zoneinfo).
std::optional<std::string> check_timezone(std::string_view name);
// Splits a command line on blanks; '…' and "…" quote, backslash escapes inside "…" and
// outside quotes. No variable or glob expansion.
Parsed<std::vector<std::string>> split_command(std::string_view text);

// Levenshtein distance, bounded inputs only (names and keys).
size_t edit_distance(std::string_view a, std::string_view b);
// ` (did you mean "x"?)` for the closest candidate when close enough, else "".
std::string suggest(std::string_view name, const std::vector<std::string_view>& candidates);
// "a", "b" or "c" — for "allowed: …" messages.
std::string join_quoted(const std::vector<std::string_view>& items);

}  // namespace ferry::config
