// Approvals gate: a deployment to an environment that needs N approvals may start only
// when N different people other than its requester approved the same release within
// the environment's approval TTL (the two-person rule).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "core/spec.h"
#include "store/records.h"

namespace ferry {

struct ApprovalCheck {
  bool satisfied = false;
  int required = 0;                     // env.approvals
  int valid = 0;                        // distinct approvers that count
  std::vector<std::string> approvers;   // who counts, in order of approval
  // Why approvals did not count and, when not satisfied, what is missing, e.g.
  // "approval by alice ignored: alice requested this deployment (two-person rule)",
  // "approval by bob expired at 2026-11-30T09:00:00.000Z (approvals last 24h)",
  // "needs 2 approvals from people other than alice, has 1 (carol)".
  std::vector<std::string> reasons;
};

// Counts `approvals` (those of one app and release; records for another environment
// than env.name are ignored) for a deployment requested by `requester` at `now_ms`.
// Names are compared without regard to ASCII case and surrounding spaces, so "Alice"
// cannot approve what "alice" requested, and one person's repeated approvals count once.
// An approval expires approval_ttl_ms after it was given (at exactly the TTL it no
// longer counts). An environment with approvals == 0 is always satisfied.
ApprovalCheck check_approvals(const EnvironmentSpec& env, const std::string& requester,
                              const std::vector<ApprovalRecord>& approvals, int64_t now_ms);

// Whether `approver` may approve a deployment requested by `requester`:
// permission_denied for self-approval, invalid_argument for an empty approver.
Status validate_approval(const std::string& requester, const std::string& approver);

}  // namespace ferry
