// The scalar forms of ferry.yaml: durations, fractions, days, times, dates, zones, commands.
#include "config/values.h"

#include <gtest/gtest.h>

namespace ferry::config {
namespace {

int64_t ms(std::string_view s) {
  auto r = parse_duration(s);
  EXPECT_TRUE(std::holds_alternative<int64_t>(r)) << s << ": " << std::get<std::string>(r);
  return std::holds_alternative<int64_t>(r) ? std::get<int64_t>(r) : -1;
}

bool bad_duration(std::string_view s) {
  return std::holds_alternative<std::string>(parse_duration(s));
}

TEST(ConfigValues, Durations) {
  EXPECT_EQ(ms("500ms"), 500);
  EXPECT_EQ(ms("30s"), 30'000);
  EXPECT_EQ(ms("5m"), 300'000);
  EXPECT_EQ(ms("1h"), 3'600'000);
  EXPECT_EQ(ms("1h30m"), 5'400'000);
  EXPECT_EQ(ms("1.5s"), 1500);
  EXPECT_EQ(ms("2d"), 172'800'000);
  EXPECT_EQ(ms("0s"), 0);
  for (auto s : {"", "30", "s", "5 minutes", "1x", "-5s", "1h30", "ms5", "1..5s"})
    EXPECT_TRUE(bad_duration(s)) << s;
  EXPECT_TRUE(bad_duration("99999999999999d"));
  auto r = parse_duration("5x");
  EXPECT_NE(std::get<std::string>(r).find("\"5x\" is not a duration"), std::string::npos);
}

TEST(ConfigValues, Fractions) {
  EXPECT_DOUBLE_EQ(std::get<double>(parse_fraction("0.05")), 0.05);
  EXPECT_DOUBLE_EQ(std::get<double>(parse_fraction("5%")), 0.05);
  EXPECT_DOUBLE_EQ(std::get<double>(parse_fraction("100%")), 1.0);
  for (auto s : {"5", "150%", "-1%", "abc", "%", ""})
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_fraction(s))) << s;
}

TEST(ConfigValues, Days) {
  using V = std::vector<int>;
  EXPECT_EQ(std::get<V>(parse_days("Mon-Fri")), (V{1, 2, 3, 4, 5}));
  EXPECT_EQ(std::get<V>(parse_days("sat,SUN")), (V{0, 6}));
  EXPECT_EQ(std::get<V>(parse_days("Fri-Mon")), (V{0, 1, 5, 6}));
  EXPECT_EQ(std::get<V>(parse_days("Wednesday")), (V{3}));
  EXPECT_EQ(std::get<V>(parse_days("Sun-Sat")), (V{0, 1, 2, 3, 4, 5, 6}));
  for (auto s : {"", "Mon-", "Moon", "Mon-Fry", "1-5", "Mon,,Tue"})
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_days(s))) << s;
}

TEST(ConfigValues, ClockTimes) {
  EXPECT_EQ(std::get<int>(parse_clock("09:00")), 540);
  EXPECT_EQ(std::get<int>(parse_clock("9:30")), 570);
  EXPECT_EQ(std::get<int>(parse_clock("00:00")), 0);
  EXPECT_EQ(std::get<int>(parse_clock("24:00")), 1440);
  for (auto s : {"24:01", "25:00", "12:60", "1200", "12:0", "noon", ""})
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_clock(s))) << s;
}

TEST(ConfigValues, Dates) {
  EXPECT_EQ(std::get<DateKey>(parse_date_time("2026-12-24", false)).key, "2026-12-24T00:00:00");
  EXPECT_EQ(std::get<DateKey>(parse_date_time("2026-12-24", true)).key, "2026-12-24T23:59:59");
  EXPECT_EQ(std::get<DateKey>(parse_date_time("2026-12-24T18:05", false)).key,
            "2026-12-24T18:05:00");
  EXPECT_EQ(std::get<DateKey>(parse_date_time("2028-02-29 01:02:03", false)).key,
            "2028-02-29T01:02:03");
  for (auto s : {"2026-02-29", "2026-13-01", "2026-12-32", "24.12.2026", "2026-12-24T25:00",
                 "2026-12-24T18", "2026-12-24T18:00Z"})
    EXPECT_TRUE(std::holds_alternative<std::string>(parse_date_time(s, false))) << s;
}

TEST(ConfigValues, TimeZones) {
  EXPECT_FALSE(check_timezone("UTC").has_value());
  EXPECT_FALSE(check_timezone("Europe/Berlin").has_value());
  EXPECT_FALSE(check_timezone("America/Los_Angeles").has_value());
  for (auto s : {"Mars/Base", "", "../../etc/passwd", "/etc/localtime", "Europe", "Europe/Berlin "})
    EXPECT_TRUE(check_timezone(s).has_value()) << s;
}

TEST(ConfigValues, CommandSplit) {
  using V = std::vector<std::string>;
  EXPECT_EQ(std::get<V>(split_command("./a  -x 'b c' \"d \\\" e\" f\\ g")),
            (V{"./a", "-x", "b c", "d \" e", "f g"}));
  EXPECT_EQ(std::get<V>(split_command("a '' b")), (V{"a", "", "b"}));
  EXPECT_EQ(std::get<V>(split_command("echo ${PORT} $HOME")), (V{"echo", "${PORT}", "$HOME"}));
  EXPECT_TRUE(std::get<V>(split_command("   ")).empty());
  EXPECT_TRUE(std::holds_alternative<std::string>(split_command("a 'b")));
}

TEST(ConfigValues, Suggestions) {
  EXPECT_EQ(edit_distance("instanses", "instances"), 1u);
  EXPECT_EQ(suggest("stratgy", {"strategy", "run"}), " (did you mean \"strategy\"?)");
  EXPECT_EQ(suggest("zzzzzz", {"strategy", "run"}), "");
  EXPECT_EQ(suggest("c", {"a", "b"}), "");
  EXPECT_EQ(join_quoted({"a", "b", "c"}), "\"a\", \"b\" or \"c\"");
}

}  // namespace
}  // namespace ferry::config
