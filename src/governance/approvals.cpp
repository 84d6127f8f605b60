#include "governance/approvals.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/clock.h"

namespace ferry {
namespace {

// The identity two names must share to be the same person.
std::string identity(std::string_view name) {
  const auto first = name.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  name = name.substr(first, name.find_last_not_of(" \t") - first + 1);
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string describe_ttl(int64_t ms) {
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  return fmt::format("{}s", ms / 1000);
}

}  // namespace

Status validate_approval(const std::string& requester, const std::string& approver) {
  if (identity(approver).empty()) return invalid_argument("approver is empty: an approval needs a name");
  if (identity(approver) == identity(requester))
    return permission_denied(fmt::format(
        "{} requested this deployment and cannot approve it: approvals must come from someone "
        "else (two-person rule)",
        approver));
  return Status::Ok();
}

ApprovalCheck check_approvals(const EnvironmentSpec& env, const std::string& requester,
                              const std::vector<ApprovalRecord>& approvals, int64_t now_ms) {
  ApprovalCheck out;
  out.required = std::max(env.approvals, 0);
  std::vector<const ApprovalRecord*> sorted;
  for (const auto& a : approvals) sorted.push_back(&a);
  // Oldest first, so "who counts" reads in the order people approved.
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const ApprovalRecord* a, const ApprovalRecord* b) { return a->at_ms < b->at_ms; });
  std::vector<std::string> counted;  // identities
  for (const ApprovalRecord* a : sorted) {
    const std::string who = identity(a->approver);
    if (a->env != env.name) continue;
    if (who.empty()) {
      out.reasons.push_back("an approval without an approver name was ignored");
      continue;
    }
    if (who == identity(requester)) {
      out.reasons.push_back(fmt::format(
          "approval by {} ignored: {} requested this deployment (two-person rule)", a->approver, a->approver));
      continue;
    }
    if (now_ms - a->at_ms >= env.approval_ttl_ms) {
      // Only worth saying when this person has no newer approval that counts.
      const bool renewed = std::any_of(sorted.begin(), sorted.end(), [&](const ApprovalRecord* b) {
        return b->env == env.name && identity(b->approver) == who && now_ms - b->at_ms < env.approval_ttl_ms;
      });
      if (!renewed)
        out.reasons.push_back(fmt::format("approval by {} expired at {} (approvals last {})", a->approver,
                                          format_rfc3339(from_unix_ms(a->at_ms + env.approval_ttl_ms)),
                                          describe_ttl(env.approval_ttl_ms)));
      continue;
    }
    if (std::find(counted.begin(), counted.end(), who) != counted.end()) continue;
    counted.push_back(who);
    out.approvers.push_back(a->approver);
  }
  out.valid = static_cast<int>(counted.size());
  out.satisfied = out.valid >= out.required;
  if (!out.satisfied) {
    std::string who;
    for (const auto& name : out.approvers) who += (who.empty() ? "" : ", ") + name;
    out.reasons.push_back(fmt::format("needs {} approval{} from people other than {}, has {}{}", out.required,
                                      out.required == 1 ? "" : "s", requester.empty() ? "the requester" : requester,
                                      out.valid, who.empty() ? "" : " (" + who + ")"));
  }
  return out;
}

}  // namespace ferry
