#include "governance/approvals.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

constexpr int64_t kHour = 3'600'000;
constexpr int64_t kNow = 1'800'000'000'000;

EnvironmentSpec production(int approvals) {
  EnvironmentSpec e;
  e.name = "production";
  e.approvals = approvals;
  e.approval_ttl_ms = 24 * kHour;
  return e;
}

ApprovalRecord approval(std::string who, int64_t at_ms, std::string env = "production") {
  ApprovalRecord a;
  a.app = "web";
  a.env = std::move(env);
  a.release = "v2";
  a.approver = std::move(who);
  a.at_ms = at_ms;
  return a;
}

bool has_reason(const ApprovalCheck& c, std::string_view text) {
  for (const auto& r : c.reasons)
    if (r.find(text) != std::string::npos) return true;
  return false;
}

TEST(Approvals, NoneNeededIsSatisfied) {
  auto c = check_approvals(production(0), "alice", {}, kNow);
  EXPECT_TRUE(c.satisfied);
  EXPECT_TRUE(c.reasons.empty());
}

TEST(Approvals, CountsDistinctOtherPeople) {
  auto c = check_approvals(production(2), "alice",
                           {approval("bob", kNow - kHour), approval("carol", kNow - 2 * kHour)}, kNow);
  EXPECT_TRUE(c.satisfied);
  EXPECT_EQ(c.valid, 2);
  EXPECT_EQ(c.approvers, (std::vector<std::string>{"carol", "bob"}));
}

TEST(Approvals, RequesterCannotApproveOwnDeployment) {
  auto c = check_approvals(production(1), "alice", {approval("alice", kNow - kHour)}, kNow);
  EXPECT_FALSE(c.satisfied);
  EXPECT_EQ(c.valid, 0);
  EXPECT_TRUE(has_reason(c, "alice requested this deployment (two-person rule)"));
  EXPECT_TRUE(has_reason(c, "needs 1 approval from people other than alice, has 0"));
  // Case and spaces do not make another person.
  auto c2 = check_approvals(production(1), "alice", {approval(" Alice ", kNow - kHour)}, kNow);
  EXPECT_FALSE(c2.satisfied);
}

TEST(Approvals, ExpiredApprovalsDoNotCount) {
  const auto env = production(1);
  auto fresh = check_approvals(env, "alice", {approval("bob", kNow - 24 * kHour + 1)}, kNow);
  EXPECT_TRUE(fresh.satisfied);
  auto stale = check_approvals(env, "alice", {approval("bob", kNow - 24 * kHour)}, kNow);
  EXPECT_FALSE(stale.satisfied);
  EXPECT_TRUE(has_reason(stale, "approval by bob expired at"));
  EXPECT_TRUE(has_reason(stale, "approvals last 24h"));
  // A newer approval by the same person renews it (and no "expired" noise).
  auto renewed = check_approvals(env, "alice",
                                 {approval("bob", kNow - 30 * kHour), approval("bob", kNow - kHour)}, kNow);
  EXPECT_TRUE(renewed.satisfied);
  EXPECT_TRUE(renewed.reasons.empty());
}

TEST(Approvals, DuplicatesCountOnce) {
  auto c = check_approvals(production(2), "alice",
                           {approval("bob", kNow - 3 * kHour), approval("bob", kNow - kHour),
                            approval("BOB", kNow - 2 * kHour)},
                           kNow);
  EXPECT_FALSE(c.satisfied);
  EXPECT_EQ(c.valid, 1);
  EXPECT_TRUE(has_reason(c, "needs 2 approvals from people other than alice, has 1 (bob)"));
}

TEST(Approvals, OtherEnvironmentsAndEmptyNamesAreIgnored) {
  auto c = check_approvals(production(1), "alice",
                           {approval("bob", kNow - kHour, "staging"), approval("  ", kNow - kHour)}, kNow);
  EXPECT_FALSE(c.satisfied);
  EXPECT_EQ(c.valid, 0);
  EXPECT_TRUE(has_reason(c, "without an approver name"));
}

TEST(Approvals, ValidateApprovalRefusesSelfApproval) {
  const Status self = validate_approval("alice", "alice");
  EXPECT_EQ(self.code(), Code::kPermissionDenied);
  EXPECT_NE(self.message().find("alice requested this deployment and cannot approve it"), std::string::npos);
  EXPECT_EQ(validate_approval("alice", "ALICE").code(), Code::kPermissionDenied);
  EXPECT_EQ(validate_approval("alice", "").code(), Code::kInvalidArgument);
  EXPECT_TRUE(validate_approval("alice", "bob").ok());
}

}  // namespace
}  // namespace ferry
