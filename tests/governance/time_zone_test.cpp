#include "governance/time_zone.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <thread>

#include "governance/tzif_builder.h"

namespace ferry {
namespace {

using testing::make_tzif;
using testing::TzifSpec;

int64_t utc(int64_t y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return civil_to_seconds({y, mo, d, h, mi, s});
}

std::shared_ptr<const TimeZone> zone(const std::string& name) {
  auto z = system_zones().load(name);
  EXPECT_TRUE(z.ok()) << z.status().to_string();
  return z.ok() ? *z : TimeZone::utc();
}

TEST(CivilTime, KnownDaysAndWeekdays) {
  EXPECT_EQ(days_from_civil(1970, 1, 1), 0);
  EXPECT_EQ(utc(2026, 3, 8, 10), 1772964000);
  EXPECT_EQ(utc(2026, 11, 1, 9), 1793523600);
  EXPECT_EQ(days_from_civil(1969, 12, 31), -1);
  EXPECT_EQ(days_from_civil(2000, 3, 1), 11017);
  EXPECT_EQ(weekday_from_days(days_from_civil(2026, 11, 30)), 1);  // a Monday
  EXPECT_EQ(weekday_from_days(days_from_civil(1969, 12, 28)), 0);  // a Sunday
  EXPECT_EQ(days_in_month(2024, 2), 29);
  EXPECT_EQ(days_in_month(1900, 2), 28);
  EXPECT_EQ(days_in_month(2000, 2), 29);
  for (int64_t d = -800'000; d <= 800'000; d += 37) {
    const CivilTime c = civil_from_days(d);
    ASSERT_TRUE(valid_civil(c)) << d;
    ASSERT_EQ(days_from_civil(c.year, c.month, c.day), d);
  }
  const CivilTime c = civil_from_seconds(-1);
  EXPECT_EQ(c, (CivilTime{1969, 12, 31, 23, 59, 59}));
}

TEST(CivilTime, ParsesIsoDatesAndRejectsOthers) {
  auto d = parse_iso_civil("2026-12-24");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->time, (CivilTime{2026, 12, 24, 0, 0, 0}));
  EXPECT_EQ(d->precision, CivilPrecision::kDay);
  auto m = parse_iso_civil("2026-12-24T18:30");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->time.hour, 18);
  EXPECT_EQ(m->precision, CivilPrecision::kMinute);
  auto s = parse_iso_civil("2026-12-24 18:30:05");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->time.second, 5);
  EXPECT_EQ(s->precision, CivilPrecision::kSecond);
  for (const char* bad : {"", "2026-2-1", "2026-02-30", "2025-02-29", "2026-12-24T24:00",
                          "2026-12-24T18:30Z", "2026-12-24T18:60", "2026/12/24", "tomorrow"}) {
    auto r = parse_iso_civil(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("YYYY-MM-DD"), std::string::npos);
  }
}

TEST(PosixTz, ParsesRulesAndRejectsBadOnes) {
  auto la = PosixTz::parse("PST8PDT,M3.2.0,M11.1.0");
  ASSERT_TRUE(la.ok()) << la.status().to_string();
  EXPECT_TRUE(la->has_dst());
  EXPECT_EQ(la->at(utc(2030, 1, 1)).utc_offset, -8 * 3600);
  EXPECT_EQ(la->at(utc(2030, 7, 1)).abbreviation, "PDT");

  auto india = PosixTz::parse("IST-5:30");
  ASSERT_TRUE(india.ok());
  EXPECT_EQ(india->at(0).utc_offset, 5 * 3600 + 1800);
  EXPECT_FALSE(india->has_dst());

  auto quoted = PosixTz::parse("<-03>3");
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->at(0).abbreviation, "-03");
  EXPECT_EQ(quoted->at(0).utc_offset, -3 * 3600);

  // RFC 8536 extension: DST all year, the end and the next start coincide.
  auto always = PosixTz::parse("EST5EDT,0/0,J365/25");
  ASSERT_TRUE(always.ok()) << always.status().to_string();
  for (int64_t t = utc(2040, 1, 1) - 7200; t < utc(2042, 1, 1); t += 3 * 3600)
    ASSERT_TRUE(always->at(t).is_dst) << t;
  std::vector<ZoneTransition> none;
  always->transitions(utc(2040, 1, 1), utc(2043, 1, 1), none);
  EXPECT_TRUE(none.empty());

  // Southern hemisphere: DST spans the new year.
  auto sydney = PosixTz::parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(sydney.ok());
  EXPECT_TRUE(sydney->at(utc(2040, 1, 15)).is_dst);
  EXPECT_FALSE(sydney->at(utc(2040, 6, 15)).is_dst);

  for (const char* bad : {"", "P8", "PST", "PST8PDT", "PST8PDT,M3.2.0", "PST8PDT,M13.2.0,M11.1.0",
                          "PST8PDT,M3.6.0,M11.1.0", "PST8PDT,J0,J365", "PST99", "<AB>3", "PST8PDT,M3.2.0,M11.1.0x"}) {
    EXPECT_FALSE(PosixTz::parse(bad).ok()) << bad;
  }
}

// glibc reads the same files; every instant must agree on offset, DST flag and name.
TEST(TimeZone, AgreesWithGlibcOnManyInstants) {
  const char* zones[] = {"America/Los_Angeles", "Europe/Berlin",   "Australia/Sydney",
                         "Asia/Kolkata",        "Europe/Dublin",   "America/St_Johns",
                         "Pacific/Chatham",     "America/Sao_Paulo", "Asia/Tehran",
                         "Africa/Casablanca",   "Pacific/Apia",    "UTC"};
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> when(utc(1901, 1, 1), utc(2099, 12, 31));
  for (const char* name : zones) {
    auto tz = zone(name);
    ::setenv("TZ", (std::string(":") + name).c_str(), 1);
    ::tzset();
    for (int i = 0; i < 4000; ++i) {
      // Half of the samples near DST changes, where mistakes hide.
      int64_t t = when(rng);
      if (i % 2 == 1) {
        auto trs = tz->transitions(t, t + 400 * 86400);
        if (!trs.empty()) t = trs.front().at - 1 + static_cast<int64_t>(rng() % 3);
      }
      std::time_t tt = static_cast<std::time_t>(t);
      std::tm tm{};
      ASSERT_NE(::localtime_r(&tt, &tm), nullptr);
      const LocalTime lt = tz->to_local(t);
      ASSERT_EQ(lt.utc_offset, tm.tm_gmtoff) << name << " at " << t;
      ASSERT_EQ(lt.is_dst, tm.tm_isdst > 0) << name << " at " << t;
      ASSERT_EQ(lt.abbreviation, tm.tm_zone) << name << " at " << t;
      ASSERT_EQ(lt.civil.year, tm.tm_year + 1900);
      ASSERT_EQ(lt.civil.hour, tm.tm_hour);
      ASSERT_EQ(lt.weekday, tm.tm_wday);
    }
  }
  if (old_tz) ::setenv("TZ", saved.c_str(), 1);
  else ::unsetenv("TZ");
  ::tzset();
}

TEST(TimeZone, FooterRuleMatchesListedTransitions) {
  // The installed file lists transitions to 2037; a file with only the footer must
  // give the same answers, so the footer code is right for years past the list.
  TzifSpec spec;
  spec.types = {{-8 * 3600, false, "PST"}};
  spec.footer = "PST8PDT,M3.2.0,M11.1.0";
  auto footer_only = TimeZone::from_tzif("footer-only", make_tzif(spec));
  ASSERT_TRUE(footer_only.ok()) << footer_only.status().to_string();
  auto la = zone("America/Los_Angeles");
  // ~270,000 instants: compared plainly, and only a mismatch goes through gtest (its
  // assertion machinery per instant cost seconds in the sanitizer build).
  for (int64_t t = utc(2008, 1, 1); t < utc(2037, 12, 31); t += 3541) {
    if (!((*footer_only)->type_at(t) == la->type_at(t))) {
      ASSERT_EQ((*footer_only)->type_at(t), la->type_at(t)) << t;
    }
  }
  // Past the listed transitions the footer drives the system file too.
  EXPECT_EQ(la->to_local(utc(2100, 7, 4, 19)).abbreviation, "PDT");
  EXPECT_EQ(la->to_local(utc(2100, 7, 4, 19)).civil.hour, 12);
  EXPECT_EQ(la->to_local(utc(2100, 12, 4, 20)).abbreviation, "PST");
}

TEST(TimeZone, Version1FileWithoutFooterKeepsLastType) {
  TzifSpec spec;
  spec.version = 1;
  spec.types = {{3600, false, "AAA"}, {7200, true, "BBB"}, {3600, false, "CCC"}};
  spec.transitions = {1000, 2000};
  spec.indices = {1, 2};
  auto tz = TimeZone::from_tzif("v1", make_tzif(spec));
  ASSERT_TRUE(tz.ok()) << tz.status().to_string();
  EXPECT_EQ((*tz)->version(), 1);
  EXPECT_EQ((*tz)->type_at(999).abbreviation, "AAA");
  EXPECT_EQ((*tz)->type_at(1000).abbreviation, "BBB");
  EXPECT_EQ((*tz)->type_at(1999).utc_offset, 7200);
  EXPECT_EQ((*tz)->type_at(2000).abbreviation, "CCC");
  EXPECT_EQ((*tz)->type_at(int64_t{1} << 40).abbreviation, "CCC");
  auto trs = (*tz)->transitions(0, 5000);
  ASSERT_EQ(trs.size(), 2u);
  EXPECT_EQ(trs[1].at, 2000);
}

TEST(TimeZone, ResolvesGapsAndOverlapsByTheDocumentedRule) {
  auto la = zone("America/Los_Angeles");
  // Spring forward 2026-03-08 02:00 PST → 03:00 PDT at 10:00 UTC.
  auto gap = la->resolve({2026, 3, 8, 2, 30, 0});
  EXPECT_EQ(gap.kind, CivilResolution::Kind::kSkipped);
  EXPECT_EQ(gap.earliest, utc(2026, 3, 8, 10));
  EXPECT_EQ(la->to_unix({2026, 3, 8, 3, 0, 0}), utc(2026, 3, 8, 10));
  EXPECT_EQ(la->to_unix({2026, 3, 8, 1, 59, 59}), utc(2026, 3, 8, 9, 59, 59));
  // Fall back 2026-11-01 02:00 PDT → 01:00 PST at 09:00 UTC: 01:30 happens twice.
  auto twice = la->resolve({2026, 11, 1, 1, 30, 0});
  EXPECT_EQ(twice.kind, CivilResolution::Kind::kRepeated);
  EXPECT_EQ(twice.earliest, utc(2026, 11, 1, 8, 30));
  EXPECT_EQ(twice.latest, utc(2026, 11, 1, 9, 30));
  EXPECT_EQ(la->to_unix({2026, 11, 1, 1, 30, 0}, TimeZone::Choose::kLatest), utc(2026, 11, 1, 9, 30));
  EXPECT_EQ(la->resolve({2026, 11, 1, 2, 0, 0}).kind, CivilResolution::Kind::kUnique);

  auto berlin = zone("Europe/Berlin");
  auto bgap = berlin->resolve({2026, 3, 29, 2, 30, 0});
  EXPECT_EQ(bgap.kind, CivilResolution::Kind::kSkipped);
  EXPECT_EQ(bgap.earliest, utc(2026, 3, 29, 1));
  auto btwice = berlin->resolve({2026, 10, 25, 2, 30, 0});
  EXPECT_EQ(btwice.kind, CivilResolution::Kind::kRepeated);
  EXPECT_EQ(btwice.earliest, utc(2026, 10, 25, 0, 30));
  EXPECT_EQ(btwice.latest, utc(2026, 10, 25, 1, 30));
  // Past the listed transitions (footer rule), the same rule holds.
  EXPECT_EQ(berlin->resolve({2080, 3, 31, 2, 30, 0}).kind, CivilResolution::Kind::kSkipped);
  EXPECT_EQ(berlin->resolve({2080, 10, 27, 2, 30, 0}).kind, CivilResolution::Kind::kRepeated);
}

TEST(TimeZone, LocalToUnixRoundTrips) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> when(utc(1950, 1, 1), utc(2090, 1, 1));
  for (const char* name : {"America/Los_Angeles", "Europe/Berlin", "Australia/Lord_Howe"}) {
    auto tz = zone(name);
    for (int i = 0; i < 3000; ++i) {
      const int64_t t = when(rng);
      const CivilResolution r = tz->resolve(tz->to_local(t).civil);
      ASSERT_NE(r.kind, CivilResolution::Kind::kSkipped) << name << " " << t;
      ASSERT_TRUE(r.earliest == t || r.latest == t) << name << " " << t;
    }
  }
}

TEST(ZoneDb, RefusesBadNamesAndNamesUnknownZones) {
  ZoneDb db;
  for (const char* bad : {"", "../etc/passwd", "Europe/../../etc/passwd", "/etc/passwd", "Europe//Berlin",
                          "Europe/Berlin/", "zone.tab", "Europe/Ber lin", "-x"}) {
    auto r = db.load(bad);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
  }
  EXPECT_NE(db.load("../x").status().message().find(".."), std::string::npos);
  auto unknown = db.load("Mars/Olympus_Mons");
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_NE(unknown.status().message().find("Mars/Olympus_Mons"), std::string::npos);
  EXPECT_EQ(db.load("America").status().code(), Code::kNotFound);  // a directory
  EXPECT_EQ(db.cached(), 0u);
}

TEST(ZoneDb, UtcWorksWithoutADatabase) {
  ZoneDb db("/nonexistent-zoneinfo");
  auto z = db.load("UTC");
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  EXPECT_EQ((*z)->to_local(utc(2026, 1, 1, 12)).civil.hour, 12);
  EXPECT_EQ(db.load("Europe/Berlin").status().code(), Code::kNotFound);
}

TEST(ZoneDb, CachesAndIsSafeAcrossThreads) {
  ZoneDb db;
  std::vector<std::thread> threads;
  std::vector<const TimeZone*> seen(8, nullptr);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < 50; ++k) {
        auto z = db.load(i % 2 ? "Europe/Berlin" : "America/Los_Angeles");
        if (z.ok() && k == 49) seen[i] = z->get();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(db.cached(), 2u);
  for (int i = 2; i < 8; ++i) EXPECT_EQ(seen[i], seen[i % 2]);
  EXPECT_EQ(db.load("Europe/Berlin")->get(), seen[1]);
}

TEST(ZoneDb, RefusesDamagedAndLeapSecondFiles) {
  std::ifstream in("/usr/share/zoneinfo/America/Los_Angeles", std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(good.size(), 100u);
  ASSERT_TRUE(TimeZone::from_tzif("la", good).ok());
  // Every truncation is refused without reading past the end (ASan watches).
  for (size_t n = 0; n + 1 < good.size(); n += 7) {
    auto r = TimeZone::from_tzif("la", good.substr(0, n));
    ASSERT_FALSE(r.ok()) << n;
    ASSERT_NE(r.status().message().find("\"la\""), std::string::npos) << r.status().message();
  }
  // Random byte flips either parse or fail cleanly.
  std::mt19937 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string damaged = good;
    damaged[rng() % damaged.size()] = static_cast<char>(rng());
    auto r = TimeZone::from_tzif("la", damaged);
    if (r.ok()) (void)(*r)->to_local(utc(2026, 6, 1));
  }
  TzifSpec leap;
  leap.types = {{0, false, "UTC"}};
  leap.leap_count = 1;
  auto r = TimeZone::from_tzif("right/UTC", make_tzif(leap));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("leap"), std::string::npos);
}

}  // namespace
}  // namespace ferry
