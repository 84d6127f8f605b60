// The audit log's hash chain. Each entry's hash is hex(HMAC-SHA-256(key, prev_hash ||
// canonical)) with the server's audit key (a file outside the store, 0600): whoever can
// write the store but not read the key cannot recompute the chain. canonical is the
// entry's fields except prev_hash and hash in a fixed order; each prev_hash is the
// previous entry's hash (64 zeros before the first). Altering, removing, inserting or
// reordering entries breaks the chain at the first one touched. Removing entries from the
// end leaves a valid shorter chain: the head (last seq and hash) is exported (API,
// notifications, a periodic log line) so another system holds it, and
// `ferry audit verify --expect-head SEQ:HASH` detects the truncation.
//
// Chains written before the key existed (v1: plain SHA-256, "ferry-audit-v1") migrate:
// the first keyed entry is an "audit.reseal" entry whose prev_hash is the v1 head, so
// the key covers every earlier entry; the verifier accepts v1 entries only before it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
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

// Verifies a whole unkeyed (v1) chain from seq 1 (list_audit(0, …) order).
AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries);

// The action of the entry that re-seals a v1 chain under the key.
inline constexpr const char* kAuditResealAction = "audit.reseal";

// hex(HMAC-SHA-256(key, prev_hash + canonical)) with canonical tagged "ferry-audit-v2".
std::string keyed_audit_hash(const AuditRecord& a, std::string_view key);
// Sets a.hash with the key; a.seq and a.prev_hash must already be set.
void seal_audit_record_keyed(AuditRecord& a, std::string_view key);

// Reads the 32-byte audit key from `path`, or creates it (random, mode 0600, O_EXCL)
// when the file does not exist; `*created` says which. Errors name the file.
Result<std::string> load_or_create_audit_key(const std::string& path, bool* created);

// Verifies a keyed chain entry by entry (streaming: the caller pages through the store
// and calls add(); nothing is kept but the head). v1 entries are accepted only before a
// keyed "audit.reseal" entry; finish() reports a chain that ends with unsealed v1 entries.
class KeyedAuditVerifier {
 public:
  explicit KeyedAuditVerifier(std::string key);
  bool add(const AuditRecord& a);
  // Call once after the last entry; returns the result.
  const AuditVerify& finish();
  const AuditVerify& result() const { return r_; }
  int64_t v1_entries() const { return v1_seen_; }

 private:
  bool fail(const AuditRecord& a, std::string reason);
  std::string key_;
  AuditVerify r_;
  size_t index_ = 0;
  int64_t v1_pending_ = 0;  // v1 entries not yet covered by a re-seal
  int64_t v1_seen_ = 0;
  bool keyed_ = false;  // a keyed entry was seen: no v1 entry may follow
};

// "SEQ:HASH" → (seq, hash); kInvalidArgument naming the text otherwise.
Result<std::pair<int64_t, std::string>> parse_audit_head(const std::string& text);
// Whether a verified chain still holds the expected head: its entry `seq` has `hash`.
// `hash_at_seq` is the stored hash of entry `seq` ("" when there is none).
Status check_expected_head(const AuditVerify& v, int64_t seq, const std::string& hash,
                           const std::string& hash_at_seq);

}  // namespace ferry
