#include "governance/audit_chain.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>

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

static std::string canonical_fields(const AuditRecord& a, const char* tag) {
  std::string out = tag;
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

std::string canonical_audit(const AuditRecord& a) {
  return canonical_fields(a, "ferry-audit-v1\n");
}

std::string keyed_audit_hash(const AuditRecord& a, std::string_view key) {
  return hmac_sha256_hex(key, a.prev_hash + canonical_fields(a, "ferry-audit-v2\n"));
}

void seal_audit_record_keyed(AuditRecord& a, std::string_view key) {
  a.hash = keyed_audit_hash(a, key);
}

Result<std::string> load_or_create_audit_key(const std::string& path, bool* created) {
  *created = false;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
      return unavailable(fmt::format("cannot create audit key {}: {}", path, std::strerror(errno)));
    const std::string key = random_bytes(32);
    const bool ok = ::fchmod(fd, 0600) == 0 &&
                    ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return unavailable(fmt::format("cannot write audit key {}", path));
    }
    *created = true;
    return key;
  }
  if (fd < 0)
    return unavailable(fmt::format("cannot read audit key {}: {}", path, std::strerror(errno)));
  struct stat st {};
  std::string key(64, '\0');
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const ssize_t n = ::read(fd, key.data(), key.size());
  ::close(fd);
  if (!stat_ok || n != 32)
    return invalid_argument(fmt::format("audit key {} must hold exactly 32 bytes", path));
  if ((st.st_mode & 077) != 0)
    return permission_denied(fmt::format(
        "audit key {} is readable by others (mode {:o}); chmod 600 it", path, st.st_mode & 0777));
  key.resize(32);
  return key;
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

KeyedAuditVerifier::KeyedAuditVerifier(std::string key) : key_(std::move(key)) {
  r_.last_seq = 0;
  r_.last_hash = audit_genesis_hash();
}

bool KeyedAuditVerifier::fail(const AuditRecord& a, std::string reason) {
  r_.ok = false;
  r_.bad_seq = a.seq;
  r_.bad_index = index_;
  r_.reason = std::move(reason);
  return false;
}

bool KeyedAuditVerifier::add(const AuditRecord& a) {
  if (!r_.ok) return false;
  const bool keyed = constant_time_equal(keyed_audit_hash(a, key_), a.hash);
  if (keyed) {
    if (v1_pending_ > 0 && a.action != kAuditResealAction)
      return fail(a, fmt::format("entries up to {} are not sealed with the audit key and entry {} "
                                 "is not the re-seal entry that would cover them",
                                 r_.last_seq, a.seq));
    v1_pending_ = 0;
    keyed_ = true;
  } else if (!keyed_ && constant_time_equal(audit_hash(a), a.hash)) {
    ++v1_pending_;  // an entry from before the key: covered once a re-seal entry follows
    ++v1_seen_;
  } else {
    return fail(a, fmt::format("entry {} was altered: its hash does not match its contents "
                               "under the audit key",
                               a.seq));
  }
  if (a.seq != r_.last_seq + 1)
    return fail(a, fmt::format("entry {} follows entry {}: entries are missing, out of order or "
                               "repeated",
                               a.seq, r_.last_seq));
  if (a.prev_hash != r_.last_hash)
    return fail(a, fmt::format("entry {} does not link to entry {}: its prev_hash differs from "
                               "that entry's hash (an entry was replaced, inserted or re-hashed)",
                               a.seq, r_.last_seq));
  ++index_;
  ++r_.checked;
  r_.last_seq = a.seq;
  r_.last_hash = a.hash;
  return true;
}

const AuditVerify& KeyedAuditVerifier::finish() {
  if (r_.ok && v1_pending_ > 0) {
    r_.ok = false;
    r_.bad_seq = r_.last_seq - v1_pending_ + 1;
    r_.bad_index = index_ - static_cast<size_t>(v1_pending_);
    r_.reason = fmt::format(
        "entries {} to {} are not sealed with the audit key and no re-seal "
        "entry follows them (rewritten without the key, or the keyed part "
        "was removed)",
        r_.bad_seq, r_.last_seq);
  }
  return r_;
}

Result<std::pair<int64_t, std::string>> parse_audit_head(const std::string& text) {
  const size_t colon = text.find(':');
  int64_t seq = 0;
  bool ok = colon != std::string::npos && colon > 0 && colon <= 18 && text.size() - colon - 1 == 64;
  for (size_t i = 0; ok && i < colon; ++i) {
    ok = std::isdigit(static_cast<unsigned char>(text[i])) != 0;
    seq = seq * 10 + (text[i] - '0');
  }
  for (size_t i = colon + 1; ok && i < text.size(); ++i)
    ok = std::isxdigit(static_cast<unsigned char>(text[i])) != 0;
  if (!ok || seq <= 0)
    return invalid_argument("expected head '" + text.substr(0, 100) +
                            "' must be SEQ:HASH (a positive number, a colon, 64 hex digits)");
  std::string hash = text.substr(colon + 1);
  for (char& c : hash) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::pair{seq, hash};
}

Status check_expected_head(const AuditVerify& v, int64_t seq, const std::string& hash,
                           const std::string& hash_at_seq) {
  if (v.ok && v.last_seq < seq)
    return failed_precondition(fmt::format(
        "the audit log was truncated: it ends at entry {}, but entry {} was exported as its head",
        v.last_seq, seq));
  if (hash_at_seq.empty() || !constant_time_equal(hash_at_seq, hash))
    return failed_precondition(fmt::format(
        "entry {} is not the exported head: its hash differs (the log was rewritten)", seq));
  return Status::Ok();
}

AuditVerify verify_audit_chain(const std::vector<AuditRecord>& entries) {
  AuditChainVerifier v;
  for (const auto& a : entries)
    if (!v.add(a)) break;
  return v.result();
}

}  // namespace ferry
