#include "governance/audit_chain.h"

#include <fmt/format.h>

#include "common/crypto.h"

namespace ferry {
namespace {

void field(std::string& out, std::string_view name, std::string_view value) {
  fmt::format_to(std::back_inserter(out), "{}={}:", name, value.size());
  out.append(value);
  out.push_back('\n');
}

}  // namespace

const std::string& audit_genesis_hash() {
  static const std::string kGenesis(64, '0');
  return kGenesis;
}

std::string canonical_audit(const AuditRecord& a) {
  std::string out = "ferry-audit-v1\n";
  field(out, "seq", std::to_string(a.seq));
  field(out, "time_ms", std::to_string(a.time_ms));
  field(out, "actor", a.actor);
  field(out, "action", a.action);
  field(out, "app", a.app);
  field(out, "env", a.env);
  field(out, "release", a.release);
  field(out, "git_sha", a.git_sha);
  field(out, "source_addr", a.source_addr);
  // nlohmann keeps object keys sorted; "replace" keeps a malformed UTF-8 string from
  // throwing (the store could not have saved one anyway).
  field(out, "details", a.details.dump(-1, ' ', true, Json::error_handler_t::replace));
  return out;
}

std::string audit_hash(const AuditRecord& a) { return sha256_hex(a.prev_hash + canonical_audit(a)); }

void seal_audit_record(AuditRecord& a) { a.hash = audit_hash(a); }

AuditChainVerifier::AuditChainVerifier() : AuditChainVerifier(0, audit_genesis_hash()) {}

AuditChainVerifier::AuditChainVerifier(int64_t after_seq, std::string after_hash) {
  r_.last_seq = after_seq;
  r_.last_hash = std::move(after_hash);
}

bool AuditChainVerifier::add(const AuditRecord& a) {
  if (!r_.ok) return false;
  const auto fail = [&](std::string reason) {
    r_.ok = false;
    r_.bad_seq = a.seq;
    r_.bad_index = index_;
    r_.reason = std::move(reason);
    return false;
  };
  // Content first: an entry edited in place is named itself, not its successor.
  if (!constant_time_equal(audit_hash(a), a.hash))
    return fail(fmt::format("entry {} was altered: its hash does not match its contents", a.seq));
  if (a.seq != r_.last_seq + 1) {
    if (a.seq > r_.last_seq + 1)
      return fail(fmt::format("entry {} follows entry {}: entries {} to {} are missing (deleted?) or out of order",
                              a.seq, r_.last_seq, r_.last_seq + 1, a.seq - 1));
    return fail(fmt::format("entry {} follows entry {}: entries are out of order or repeated", a.seq, r_.last_seq));
  }
  if (a.prev_hash != r_.last_hash)
    return fail(fmt::format("entry {} does not link to entry {}: its prev_hash differs from that entry's hash "
                            "(an entry was replaced, inserted or re-hashed)",
                            a.seq, r_.last_seq));
  ++index_;
  ++r_.checked;
  r_.last_seq = a.seq;
  r_.last_hash = a.hash;
  return true;
}

AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries) {
  AuditChainVerifier v;
  for (const auto& a : entries)
    if (!v.add(a)) break;
  return v.result();
}

}  // namespace ferry
