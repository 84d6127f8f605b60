#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/mask.h"
#include "common/status.h"

#include <thread>

namespace ferry {
namespace {

TEST(Crypto, Sha256KnownVector) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacKnownVector) {  // RFC 4231 test case 2
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, HexRoundTripAndRejectsBadInput) {
  EXPECT_EQ(from_hex(to_hex("\x01\xff")), "\x01\xff");
  EXPECT_EQ(from_hex("abc"), "");
  EXPECT_EQ(from_hex("zz"), "");
  EXPECT_NE(random_id("t_"), random_id("t_"));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
}

TEST(Masker, MasksEveryOccurrenceLongestFirst) {
  Masker m;
  m.add("hunter2secret");
  m.add("hunter2");
  EXPECT_EQ(m.mask("pw=hunter2secret and hunter2"), "pw=**** and ****");
  m.remove("hunter2");
  EXPECT_EQ(m.mask("hunter2"), "hunter2");
}

// Issue 13, item 7: a secret of 1-3 bytes is masked too, where it stands alone.
TEST(Masker, ShortSecretsAreMaskedAsWholeTokens) {
  Masker m;
  m.add("ab1");
  m.add("Z");
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m.mask("password=ab1 user=Z"), "password=**** user=****");
  EXPECT_EQ(m.mask("ab1"), "****");
  EXPECT_EQ(m.mask("\"ab1\","), "\"****\",");
  // Inside longer words they are left alone: masking them would mangle ordinary text.
  EXPECT_EQ(m.mask("tab1e Zebra xab1"), "tab1e Zebra xab1");
  m.remove("ab1");
  EXPECT_EQ(m.mask("password=ab1"), "password=ab1");
}

TEST(Status, ResultCarriesValueOrError) {
  Result<int> ok = 3;
  Result<int> bad = not_found("release web@v9 does not exist");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().to_string(), "not_found: release web@v9 does not exist");
  EXPECT_EQ(http_status(Code::kPermissionDenied), 403);
}

TEST(Clock, FakeClockSleepersWakeOnAdvance) {
  FakeClock c(from_unix_ms(1000));
  std::thread t([&] { c.sleep_for(std::chrono::seconds(5)); });
  while (c.sleepers() == 0) std::this_thread::yield();
  c.advance(std::chrono::seconds(4));
  EXPECT_EQ(c.sleepers(), 1);
  c.advance(std::chrono::seconds(1));
  t.join();
  c.advance(std::chrono::seconds(5));
  EXPECT_EQ(to_unix_ms(c.now()), 11000);
  EXPECT_EQ(format_rfc3339(from_unix_ms(1764063000123)), "2025-11-25T09:30:00.123Z");
}

}  // namespace
}  // namespace ferry
