// What the SQLite and PostgreSQL stores share about SLO buckets (store.h, docs/slo.md):
// the latency histogram's text form, the sum of two buckets, and the hour buckets that
// compaction makes of minute buckets.
#pragma once

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

}  // namespace ferry::slo_rows
