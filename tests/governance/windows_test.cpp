#include "governance/windows.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>

#include "common/clock.h"

namespace ferry {
namespace {

int64_t utc_ms(int64_t y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return civil_to_seconds({y, mo, d, h, mi, s}) * 1000;
}

WindowSpec window(std::vector<int> days, int start, int end, std::string tz) {
  WindowSpec w;
  w.days = std::move(days);
  w.start_minute = start;
  w.end_minute = end;
  w.timezone = std::move(tz);
  return w;
}

FreezeSpec freeze(std::string from, std::string to, std::string tz = "UTC", std::string reason = "") {
  FreezeSpec f;
  f.from = std::move(from);
  f.to = std::move(to);
  f.timezone = std::move(tz);
  f.reason = std::move(reason);
  return f;
}

const std::vector<int> kWeekdays = {1, 2, 3, 4, 5};

bool open_at(const std::vector<WindowSpec>& ws, int64_t ms, const std::vector<FreezeSpec>& fs = {}) {
  return check_windows(ws, fs, ms).open;
}

TEST(Windows, OpenExactlyAtStartClosedExactlyAtEnd) {
  const std::vector<WindowSpec> ws = {window(kWeekdays, 9 * 60, 17 * 60, "America/Los_Angeles")};
  // 2026-11-30 is a Monday; 09:00 PST is 17:00 UTC.
  const int64_t start = utc_ms(2026, 11, 30, 17), end = utc_ms(2026, 12, 1, 1);
  EXPECT_TRUE(open_at(ws, start));
  EXPECT_TRUE(open_at(ws, end - 1));
  auto before = check_windows(ws, {}, start - 1);
  EXPECT_FALSE(before.open);
  EXPECT_EQ(before.next_open_ms, start);
  auto after = check_windows(ws, {}, end);
  EXPECT_FALSE(after.open);
  EXPECT_EQ(after.reason,
            "outside deployment window Mon-Fri 09:00-17:00 America/Los_Angeles; next opens "
            "2026-12-01 09:00 PST");
  EXPECT_EQ(after.next_open_ms, start + 24 * 3600'000);
  EXPECT_TRUE(check_windows(ws, {}, start).reason.empty());
}

TEST(Windows, WeekendWaitsForMonday) {
  const std::vector<WindowSpec> ws = {window(kWeekdays, 9 * 60, 17 * 60, "America/Los_Angeles")};
  FakeClock clock(from_unix_ms(utc_ms(2026, 11, 28, 20)));  // Saturday 12:00 PST
  auto c = check_windows(ws, {}, to_unix_ms(clock.now()));
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.reason,
            "outside deployment window Mon-Fri 09:00-17:00 America/Los_Angeles; next opens "
            "2026-11-30 09:00 PST");
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 11, 30, 17));
  clock.set(from_unix_ms(*c.next_open_ms));
  EXPECT_TRUE(check_windows(ws, {}, to_unix_ms(clock.now())).open);
}

TEST(Windows, NoWindowsMeansAnyTime) {
  EXPECT_TRUE(open_at({}, utc_ms(2026, 1, 1, 3)));
  EXPECT_TRUE(open_at({window({}, 0, 24 * 60, "UTC")}, utc_ms(2026, 1, 4, 3)));  // empty days: every day
}

TEST(Windows, SpringForwardLosAngeles) {
  // 2026-03-08 (Sunday) 02:00 PST → 03:00 PDT at 10:00 UTC.
  const std::vector<WindowSpec> two_to_four = {window({}, 2 * 60, 4 * 60, "America/Los_Angeles")};
  EXPECT_FALSE(open_at(two_to_four, utc_ms(2026, 3, 8, 9, 59, 59)));
  auto c = check_windows(two_to_four, {}, utc_ms(2026, 3, 8, 9, 59, 59));
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 3, 8, 10));  // opens at 03:00 PDT, one hour long
  EXPECT_NE(c.reason.find("next opens 2026-03-08 03:00 PDT"), std::string::npos) << c.reason;
  EXPECT_TRUE(open_at(two_to_four, utc_ms(2026, 3, 8, 10, 59)));
  EXPECT_FALSE(open_at(two_to_four, utc_ms(2026, 3, 8, 11)));

  // A window inside the skipped hour does not open that day; the next Sunday it does.
  const std::vector<WindowSpec> skipped = {window({0}, 2 * 60, 2 * 60 + 30, "America/Los_Angeles")};
  auto s = check_windows(skipped, {}, utc_ms(2026, 3, 7, 12));
  EXPECT_EQ(s.next_open_ms, utc_ms(2026, 3, 15, 9));  // 02:00 PDT
  auto s2 = check_windows(skipped, {}, utc_ms(2026, 3, 2, 12));  // from the Monday before
  EXPECT_EQ(s2.next_open_ms, utc_ms(2026, 3, 15, 9));

  // Office hours keep their wall-clock time across the change.
  const std::vector<WindowSpec> office = {window(kWeekdays, 9 * 60, 17 * 60, "America/Los_Angeles")};
  auto o = check_windows(office, {}, utc_ms(2026, 3, 7, 1));  // Friday 17:00 PST
  EXPECT_EQ(o.next_open_ms, utc_ms(2026, 3, 9, 16));          // Monday 09:00 PDT
  EXPECT_NE(o.reason.find("next opens 2026-03-09 09:00 PDT"), std::string::npos) << o.reason;
}

TEST(Windows, FallBackLosAngeles) {
  // 2026-11-01 (Sunday) 02:00 PDT → 01:00 PST at 09:00 UTC: 01:00-02:00 happens twice.
  const std::vector<WindowSpec> one_to_two = {window({0}, 60, 120, "America/Los_Angeles")};
  EXPECT_TRUE(open_at(one_to_two, utc_ms(2026, 11, 1, 8)));        // 01:00 PDT
  EXPECT_TRUE(open_at(one_to_two, utc_ms(2026, 11, 1, 9, 30)));    // 01:30 PST
  EXPECT_FALSE(open_at(one_to_two, utc_ms(2026, 11, 1, 10)));      // 02:00 PST
  EXPECT_FALSE(open_at(one_to_two, utc_ms(2026, 11, 1, 7, 59, 59)));

  // A window that ends inside the repeated hour opens a second time at the change.
  const std::vector<WindowSpec> half = {window({0}, 30, 90, "America/Los_Angeles")};
  EXPECT_TRUE(open_at(half, utc_ms(2026, 11, 1, 7, 30)));          // 00:30 PDT
  auto c = check_windows(half, {}, utc_ms(2026, 11, 1, 8, 30));    // 01:30 PDT: closed
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 11, 1, 9));               // 01:00 PST
  EXPECT_NE(c.reason.find("next opens 2026-11-01 01:00 PST"), std::string::npos) << c.reason;
  EXPECT_FALSE(open_at(half, utc_ms(2026, 11, 1, 9, 30)));
}

TEST(Windows, DstChangesBerlin) {
  // 2026-03-29 (Sunday) 02:00 CET → 03:00 CEST at 01:00 UTC: 02:00-03:00 never exists.
  const std::vector<WindowSpec> two_to_three = {window({0}, 120, 180, "Europe/Berlin")};
  auto c = check_windows(two_to_three, {}, utc_ms(2026, 3, 28, 12));
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 4, 5, 0));  // next Sunday 02:00 CEST
  EXPECT_FALSE(open_at(two_to_three, utc_ms(2026, 3, 29, 1)));
  // 2026-10-25 03:00 CEST → 02:00 CET at 01:00 UTC: the window is open for two hours.
  EXPECT_FALSE(open_at(two_to_three, utc_ms(2026, 10, 24, 23, 59, 59)));
  EXPECT_TRUE(open_at(two_to_three, utc_ms(2026, 10, 25, 0)));
  EXPECT_TRUE(open_at(two_to_three, utc_ms(2026, 10, 25, 1, 59, 59)));
  EXPECT_FALSE(open_at(two_to_three, utc_ms(2026, 10, 25, 2)));

  const std::vector<WindowSpec> office = {window(kWeekdays, 9 * 60, 17 * 60, "Europe/Berlin")};
  auto o = check_windows(office, {}, utc_ms(2026, 10, 23, 15));  // Friday 17:00 CEST
  EXPECT_EQ(o.next_open_ms, utc_ms(2026, 10, 26, 8));            // Monday 09:00 CET
  EXPECT_NE(o.reason.find("next opens 2026-10-26 09:00 CET"), std::string::npos) << o.reason;
}

TEST(Windows, OvernightWindowRunsIntoTheNextDay) {
  const std::vector<WindowSpec> fri_night = {window({5}, 22 * 60, 2 * 60, "UTC")};
  EXPECT_EQ(describe_window(fri_night[0]), "Fri 22:00-02:00 (next day) UTC");
  EXPECT_EQ(describe_window(window({5, 6, 0, 1}, 0, 60, "UTC")), "Fri-Mon 00:00-01:00 UTC");
  EXPECT_EQ(describe_window(window({6, 0}, 0, 1440, "UTC")), "Sat,Sun 00:00-24:00 UTC");
  EXPECT_EQ(describe_window(window({1, 3, 4, 5}, 0, 60, "UTC")), "Mon,Wed-Fri 00:00-01:00 UTC");
  EXPECT_EQ(describe_window(window({0, 1, 2, 3, 4, 5, 6}, 0, 60, "UTC")), "every day 00:00-01:00 UTC");
  // 2026-11-27 is a Friday.
  EXPECT_TRUE(open_at(fri_night, utc_ms(2026, 11, 27, 22)));
  EXPECT_TRUE(open_at(fri_night, utc_ms(2026, 11, 28, 1, 59, 59)));
  EXPECT_FALSE(open_at(fri_night, utc_ms(2026, 11, 28, 2)));
  EXPECT_FALSE(open_at(fri_night, utc_ms(2026, 11, 28, 22)));   // Saturday evening is not listed
  EXPECT_FALSE(open_at(fri_night, utc_ms(2026, 11, 27, 1)));    // Friday morning belongs to Thursday
  auto c = check_windows(fri_night, {}, utc_ms(2026, 11, 27, 21, 59));
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 11, 27, 22));
  // Saturday night runs into Sunday (weekday 6 → 0).
  const std::vector<WindowSpec> sat_night = {window({6}, 23 * 60, 60, "UTC")};
  EXPECT_TRUE(open_at(sat_night, utc_ms(2026, 11, 29, 0, 30)));
  // start == end is a full day from the start.
  const std::vector<WindowSpec> full = {window({1}, 9 * 60, 9 * 60, "UTC")};
  EXPECT_TRUE(open_at(full, utc_ms(2026, 11, 30, 9)));
  EXPECT_TRUE(open_at(full, utc_ms(2026, 12, 1, 8, 59)));
  EXPECT_FALSE(open_at(full, utc_ms(2026, 12, 1, 9)));
}

TEST(Windows, SeveralWindowsAnyOneOpens) {
  const std::vector<WindowSpec> ws = {window({1, 3}, 9 * 60, 10 * 60, "UTC"),
                                      window({2}, 14 * 60, 15 * 60, "Europe/Berlin")};
  EXPECT_TRUE(open_at(ws, utc_ms(2026, 12, 2, 9, 30)));   // Wednesday
  EXPECT_TRUE(open_at(ws, utc_ms(2026, 12, 1, 13, 30)));  // Tuesday 14:30 CET
  auto c = check_windows(ws, {}, utc_ms(2026, 11, 30, 10));  // Monday after the first
  EXPECT_EQ(c.next_open_ms, utc_ms(2026, 12, 1, 13));
  EXPECT_EQ(c.reason,
            "outside deployment windows Mon,Wed 09:00-10:00 UTC, Tue 14:00-15:00 Europe/Berlin; "
            "next opens 2026-12-01 14:00 CET");
}

TEST(Freezes, AcrossTheYearEnd) {
  const std::vector<FreezeSpec> fs = {freeze("2026-12-24", "2027-01-01", "UTC", "holidays")};
  EXPECT_TRUE(open_at({}, utc_ms(2026, 12, 24) - 1, fs));
  auto c = check_windows({}, fs, utc_ms(2026, 12, 24));
  EXPECT_FALSE(c.open);
  EXPECT_EQ(c.reason, "deployment freeze until 2027-01-02 00:00 UTC (from 2026-12-24 to 2027-01-01 UTC): holidays");
  EXPECT_EQ(c.next_open_ms, utc_ms(2027, 1, 2));
  EXPECT_FALSE(open_at({}, utc_ms(2027, 1, 2) - 1, fs));   // the last day is included
  EXPECT_TRUE(open_at({}, utc_ms(2027, 1, 2), fs));

  // With office hours, the gate opens on the first working morning after the freeze.
  const std::vector<WindowSpec> office = {window(kWeekdays, 9 * 60, 17 * 60, "America/Los_Angeles")};
  // UTC freeze: it ends 2027-01-01 16:00 PST, a Friday inside office hours.
  EXPECT_EQ(check_windows(office, fs, utc_ms(2026, 12, 28, 18)).next_open_ms, utc_ms(2027, 1, 2));
  // The same freeze in Los Angeles ends on Saturday: Monday morning is next.
  const std::vector<FreezeSpec> la = {freeze("2026-12-24", "2027-01-01", "America/Los_Angeles", "holidays")};
  auto w = check_windows(office, la, utc_ms(2026, 12, 28, 18));  // a Monday inside the freeze
  EXPECT_FALSE(w.open);
  EXPECT_EQ(w.next_open_ms, utc_ms(2027, 1, 4, 17));
  EXPECT_NE(w.reason.find("holidays; next opens 2027-01-04 09:00 PST"), std::string::npos) << w.reason;
}

TEST(Freezes, ZonesTimesAndChains) {
  // A freeze in Los Angeles starts at local midnight (08:00 UTC).
  const std::vector<FreezeSpec> la = {freeze("2026-12-24", "2026-12-24", "America/Los_Angeles")};
  EXPECT_TRUE(open_at({}, utc_ms(2026, 12, 24, 7, 59, 59), la));
  EXPECT_FALSE(open_at({}, utc_ms(2026, 12, 24, 8), la));
  EXPECT_TRUE(open_at({}, utc_ms(2026, 12, 25, 8), la));
  // A date-time `to` includes the minute written.
  const std::vector<FreezeSpec> evening = {freeze("2026-12-26T09:30", "2026-12-26T18:00")};
  EXPECT_TRUE(open_at({}, utc_ms(2026, 12, 26, 9, 29, 59), evening));
  EXPECT_FALSE(open_at({}, utc_ms(2026, 12, 26, 18, 0, 59), evening));
  EXPECT_TRUE(open_at({}, utc_ms(2026, 12, 26, 18, 1), evening));
  auto r = check_windows({}, evening, utc_ms(2026, 12, 26, 12));
  EXPECT_EQ(r.reason, "deployment freeze until 2026-12-26 18:01 UTC (from 2026-12-26T09:30 to 2026-12-26T18:00 UTC)");
  // Back-to-back freezes: the opening is after the last one.
  const std::vector<FreezeSpec> chain = {freeze("2026-12-20", "2026-12-24"), freeze("2026-12-25", "2026-12-31")};
  auto c = check_windows({}, chain, utc_ms(2026, 12, 21));
  EXPECT_EQ(c.next_open_ms, utc_ms(2027, 1, 1));
  EXPECT_NE(c.reason.find("next opens 2027-01-01 00:00 UTC"), std::string::npos) << c.reason;
}

TEST(Windows, InvalidSpecsCloseTheGateAndSayWhy) {
  auto z = check_windows({window(kWeekdays, 540, 1020, "Mars/Olympus_Mons")}, {}, utc_ms(2026, 12, 1, 12));
  EXPECT_FALSE(z.open);
  EXPECT_FALSE(z.next_open_ms);
  EXPECT_NE(z.reason.find("Mars/Olympus_Mons"), std::string::npos) << z.reason;
  auto d = check_windows({}, {freeze("2026-13-01", "2026-12-31")}, utc_ms(2026, 12, 1));
  EXPECT_FALSE(d.open);
  EXPECT_NE(d.reason.find("2026-13-01"), std::string::npos) << d.reason;
  auto o = check_windows({}, {freeze("2026-12-31", "2026-12-01")}, utc_ms(2026, 12, 1));
  EXPECT_FALSE(o.open);
  EXPECT_NE(o.reason.find("before"), std::string::npos) << o.reason;

  EXPECT_FALSE(check_windows({}, {}, -1).open);
  EXPECT_FALSE(check_windows({}, {}, std::numeric_limits<int64_t>::max()).open);

  ZoneDb& zones = system_zones();
  EXPECT_FALSE(validate_window(window({7}, 0, 60, "UTC"), zones).ok());
  EXPECT_FALSE(validate_window(window({1}, 1440, 60, "UTC"), zones).ok());
  EXPECT_FALSE(validate_window(window({1}, 0, 1441, "UTC"), zones).ok());
  EXPECT_TRUE(validate_window(window({1}, 22 * 60, 120, "Europe/Berlin"), zones).ok());
  EXPECT_FALSE(validate_freeze(freeze("2026-12-01", "2026-12-02", "Nowhere/City"), zones).ok());
  EXPECT_TRUE(validate_freeze(freeze("2026-12-01", "2026-12-01"), zones).ok());
}

// Whatever the instant: when closed, the reported opening is open, and every sampled
// instant between now and it is closed.
TEST(Windows, NextOpenIsTheFirstOpenInstant) {
  const std::vector<std::vector<WindowSpec>> configs = {
      {window(kWeekdays, 9 * 60, 17 * 60, "America/Los_Angeles")},
      {window({0}, 60, 150, "America/Los_Angeles")},
      {window({0, 6}, 23 * 60, 3 * 60, "Europe/Berlin"), window({3}, 0, 30, "Australia/Sydney")},
      {window({2, 4}, 2 * 60 + 15, 2 * 60 + 45, "Europe/Berlin")},
  };
  const std::vector<FreezeSpec> fs = {freeze("2026-03-27", "2026-04-02", "Europe/Berlin"),
                                      freeze("2026-10-30T12:00", "2026-11-02T08:00:30", "America/Los_Angeles")};
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int64_t> when(utc_ms(2026, 1, 1), utc_ms(2027, 1, 1));
  for (const auto& ws : configs) {
    for (int i = 0; i < 60; ++i) {
      const int64_t now = when(rng);
      const WindowCheck c = check_windows(ws, fs, now);
      if (c.open) continue;
      ASSERT_TRUE(c.next_open_ms.has_value()) << c.reason;
      ASSERT_GT(*c.next_open_ms, now);
      ASSERT_TRUE(open_at(ws, *c.next_open_ms, fs)) << now;
      ASSERT_FALSE(open_at(ws, *c.next_open_ms - 1, fs)) << now;
      for (int k = 0; k < 20; ++k) {
        const int64_t t = now + static_cast<int64_t>(rng() % static_cast<uint64_t>(*c.next_open_ms - now));
        ASSERT_FALSE(open_at(ws, t, fs)) << now << " " << t;
      }
    }
  }
}

}  // namespace
}  // namespace ferry
