// Sealing of audit entries for Store::append_audit: hash = SHA-256(prev_hash +
// canonical entry), and verification of a whole chain.
#pragma once

#include <string>
#include <vector>

#include "store/records.h"

namespace ferry {

void seal_audit_record(AuditRecord& a);

struct AuditVerify {
  bool ok = true;
  int64_t first_bad_seq = 0;  // the first entry whose hash or link is wrong
  std::string reason;
};
// Entries in seq order from the first one.
AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries);

}  // namespace ferry
