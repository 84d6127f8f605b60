#include "server/audit_seal.h"

#include "common/crypto.h"

namespace ferry {

void seal_audit_record(AuditRecord& a) {
  const Json canonical{{"seq", a.seq},         {"time_ms", a.time_ms}, {"actor", a.actor},
                       {"action", a.action},   {"app", a.app},         {"env", a.env},
                       {"release", a.release}, {"git_sha", a.git_sha}, {"source", a.source_addr},
                       {"details", a.details}};
  a.hash = sha256_hex(a.prev_hash + canonical.dump());
}

}  // namespace ferry

namespace ferry {

AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries) {
  std::string prev;
  int64_t expect_seq = entries.empty() ? 0 : entries.front().seq;
  for (const auto& e : entries) {
    if (e.seq != expect_seq)
      return {false, expect_seq, "entry " + std::to_string(expect_seq) + " is missing"};
    ++expect_seq;
    if (e.prev_hash != prev)
      return {false, e.seq, "entry " + std::to_string(e.seq) + " does not link to the one before"};
    AuditRecord copy = e;
    seal_audit_record(copy);
    if (copy.hash != e.hash)
      return {false, e.seq, "entry " + std::to_string(e.seq) + " was changed after it was written"};
    prev = e.hash;
  }
  return {};
}

}  // namespace ferry
