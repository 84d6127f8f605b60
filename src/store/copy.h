// `ferry store copy sqlite:PATH postgres://…`: moves a control plane's whole state from
// the embedded SQLite store to PostgreSQL, table by table in one destination transaction,
// then verifies what landed. The source is read inside one read transaction (a running
// server may keep writing; the copy is a consistent snapshot), and is never changed.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/records.h"

namespace ferry {

struct StoreCopyReport {
  std::map<std::string, int64_t> rows;  // table → rows copied (and found at the destination)
  int64_t audit_entries = 0;
  int64_t audit_head_seq = 0;
  std::string audit_head_hash;
};

// Copies every table of the store at `from` (sqlite:PATH, which must exist) into the
// store at `to` (postgres://…, migrated first), then checks: each table's row count at
// the destination equals the source's, and the destination's audit log is the source's
// entry for entry with an unbroken prev_hash → hash chain. Errors:
//   kInvalidArgument     a URL of the wrong kind
//   kNotFound            the SQLite file does not exist
//   kFailedPrecondition  the destination already holds data (nothing is merged) or its
//                        schema version differs from the source's
//   kDataLoss-like kInternal  verification failed (the destination transaction is rolled
//                        back whenever the copy itself failed; a verification failure
//                        after commit names the table or audit entry)
Result<StoreCopyReport> copy_store(const std::string& from, const std::string& to);

}  // namespace ferry
