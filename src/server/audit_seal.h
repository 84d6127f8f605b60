// Sealing of audit entries for Store::append_audit: hash = SHA-256(prev_hash +
// canonical entry). Kept until governance/audit_chain.h replaces it.
#pragma once

#include <vector>

#include "store/records.h"

namespace ferry {

void seal_audit_record(AuditRecord& a);

}  // namespace ferry
