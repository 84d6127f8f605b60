// What the SQLite and PostgreSQL stores share about SLO buckets (store.h, docs/slo.md):
// the latency histogram's text form, the sum of two buckets, and the hour buckets that
// compaction makes of minute buckets.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "store/records.h"

namespace ferry::slo_rows {

inline constexpr int64_t kMinuteMs = 60'000;
inline constexpr int64_t kHourMs = 3'600'000;
// A histogram longer than this is refused (the router's has 17 buckets).
inline constexpr size_t kMaxLatencyBuckets = 64;

// "[1,2,3]"; parse_latency reads it back (an unreadable or overlong text is empty).
std::string latency_text(const std::vector<int64_t>& latency);
std::vector<int64_t> parse_latency(const std::string& text);

// `into` += `add` (counts and histogram, element by element).
void add_bucket(SloBucketRecord& into, const SloBucketRecord& add);

// The hour buckets the given minute buckets fold into, keyed by app, env and hour.
std::vector<SloBucketRecord> fold_into_hours(const std::vector<SloBucketRecord>& minutes);

// Ok, or kInvalidArgument naming what is wrong with a delta before it is written: widths
// other than a minute or an hour, a start not on that boundary, negative counts.
Status check_delta(const SloBucketRecord& d);

// How many SLO writes (add_slo_counts, compact_slo) this process has made through any
// store, each counted once its transaction ended, whatever its result: readers that cache
// buckets (server/slo_service.h) read them again when it moves. One count for the process
// rather than one per Store, so the Store interface stays as it is; a second store in the
// same process only costs such a reader an extra read. Writes by other processes on the
// same database are not counted: such a reader also lets its copy expire by time.
uint64_t write_count();
void note_write();

}  // namespace ferry::slo_rows
