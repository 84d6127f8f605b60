// The audit log's hash chain. Each entry's hash is hex(SHA-256(prev_hash || canonical))
// where canonical is the entry's fields except prev_hash and hash in a fixed order;
// each prev_hash is the previous entry's hash (64 zeros before the first). Altering,
// removing, inserting or reordering entries breaks the chain at the first one touched.
// Removing entries from the end leaves a valid shorter chain: keep the last seq and
// hash elsewhere (AuditVerify::last_seq/last_hash) to detect that.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/records.h"

namespace ferry {

// The prev_hash of the first entry.
const std::string& audit_genesis_hash();

// The bytes hashed for `a` (all fields but prev_hash and hash). Each field is written
// as "name=<length>:<bytes>\n", details as compact JSON with sorted keys and non-ASCII
// escaped, so equal records give equal bytes on every platform and store.
std::string canonical_audit(const AuditRecord& a);
// hex(SHA-256(a.prev_hash + canonical_audit(a))).
std::string audit_hash(const AuditRecord& a);
// Sets a.hash; a.seq and a.prev_hash must already be set (Store::append_audit does).
void seal_audit_record(AuditRecord& a);

struct AuditVerify {
  bool ok = true;
  int64_t checked = 0;      // entries found good before the first bad one
  int64_t bad_seq = 0;      // seq (as stored) of the first bad entry
  size_t bad_index = 0;     // its position in the input
  std::string reason;       // why it is bad
  int64_t last_seq = 0;     // the last good entry: an anchor to keep elsewhere
  std::string last_hash;
};

// Checks entries in the order given, one page at a time if need be.
class AuditChainVerifier {
 public:
  // A chain from its first entry (seq 1).
  AuditChainVerifier();
  // A chain continuing after a known good entry (a page after the first).
  AuditChainVerifier(int64_t after_seq, std::string after_hash);

  // Returns false once the chain is broken; later entries are then ignored.
  bool add(const AuditRecord& a);
  const AuditVerify& result() const { return r_; }

 private:
  AuditVerify r_;
  size_t index_ = 0;
};

// Verifies a whole chain from seq 1 (list_audit(0, …) order).
AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries);

}  // namespace ferry
