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
