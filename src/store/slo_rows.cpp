#include "store/slo_rows.h"

#include <atomic>

#include "common/json.h"

namespace ferry::slo_rows {

namespace {
// The count behind write_count(): process-wide by design (see slo_rows.h).
std::atomic<uint64_t> g_slo_writes{0};
}  // namespace

uint64_t write_count() {
  return g_slo_writes.load(std::memory_order_acquire);
}

void note_write() {
  g_slo_writes.fetch_add(1, std::memory_order_acq_rel);
}

std::string latency_text(const std::vector<int64_t>& latency) {
  return dump_json(Json(latency));
}

std::vector<int64_t> parse_latency(const std::string& text) {
  auto j = parse_json(text);
  std::vector<int64_t> out;
  if (!j.ok() || !j->is_array() || j->size() > kMaxLatencyBuckets) return out;
  for (const auto& v : *j) out.push_back(v.is_number_integer() ? v.get<int64_t>() : 0);
  return out;
}

void add_bucket(SloBucketRecord& into, const SloBucketRecord& add) {
  into.requests += add.requests;
  into.errors += add.errors;
  if (into.latency.size() < add.latency.size()) into.latency.resize(add.latency.size(), 0);
  for (size_t i = 0; i < add.latency.size(); ++i) into.latency[i] += add.latency[i];
}

std::vector<SloBucketRecord> fold_into_hours(const std::vector<SloBucketRecord>& minutes) {
  std::map<std::tuple<std::string, std::string, int64_t>, SloBucketRecord> hours;
  for (const auto& m : minutes) {
    const int64_t hour = m.start_ms - ((m.start_ms % kHourMs) + kHourMs) % kHourMs;
    auto [it, fresh] = hours.try_emplace({m.app, m.env, hour});
    if (fresh) {
      it->second.app = m.app;
      it->second.env = m.env;
      it->second.start_ms = hour;
      it->second.width_ms = kHourMs;
    }
    add_bucket(it->second, m);
  }
  std::vector<SloBucketRecord> out;
  for (auto& [k, v] : hours) out.push_back(std::move(v));
  return out;
}

Status check_delta(const SloBucketRecord& d) {
  if (d.width_ms != kMinuteMs && d.width_ms != kHourMs)
    return invalid_argument("SLO bucket width " + std::to_string(d.width_ms) +
                            " ms is neither a minute nor an hour");
  if (d.start_ms % d.width_ms != 0)
    return invalid_argument("SLO bucket start " + std::to_string(d.start_ms) +
                            " is not on a whole minute or hour");
  if (d.requests < 0 || d.errors < 0 || d.latency.size() > kMaxLatencyBuckets)
    return invalid_argument("SLO bucket of " + d.app + " in " + d.env + " has negative counts");
  for (int64_t v : d.latency)
    if (v < 0)
      return invalid_argument("SLO bucket of " + d.app + " in " + d.env +
                              " has a negative latency count");
  return Status::Ok();
}

}  // namespace ferry::slo_rows
