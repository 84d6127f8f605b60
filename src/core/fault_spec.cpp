#include "core/fault_spec.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <stdexcept>

namespace ferry {

namespace {

bool valid_experiment_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

bool valid_share(double v) {
  return std::isfinite(v) && v >= 0 && v <= 1;
}

}  // namespace

Status FaultSetting::validate() const {
  if (!valid_experiment_id(experiment))
    return invalid_argument("fault: experiment '" + experiment.substr(0, 64) +
                            "' must be 1-64 letters, digits, '-' or '_'");
  if (latency_ms < 0 || latency_ms > kMaxFaultLatencyMs)
    return invalid_argument("fault: latency_ms " + std::to_string(latency_ms) +
                            " is out of range (0 to " + std::to_string(kMaxFaultLatencyMs) + ")");
  if (!valid_share(latency_share))
    return invalid_argument("fault: latency_share must be a fraction from 0 to 1");
  if (!valid_share(error_share))
    return invalid_argument("fault: error_share must be a fraction from 0 to 1");
  if (latency_share > 0 && latency_ms == 0)
    return invalid_argument("fault: latency_share needs a latency_ms above 0");
  if (error_status < 500 || error_status > 599)
    return invalid_argument("fault: error_status " + std::to_string(error_status) +
                            " must be a 5xx status (500-599)");
  if (duration_ms < 1000 || duration_ms > kMaxFaultDurationMs)
    return invalid_argument("fault: duration_ms " + std::to_string(duration_ms) +
                            " is out of range (1 s to 1 h)");
  if (latency_share == 0 && error_share == 0)
    return invalid_argument("fault: neither latency_share nor error_share is above 0");
  return Status::Ok();
}

void to_json(Json& j, const FaultSetting& f) {
  j = Json{{"experiment", f.experiment},       {"latency_ms", f.latency_ms},
           {"latency_share", f.latency_share}, {"error_share", f.error_share},
           {"error_status", f.error_status},   {"duration_ms", f.duration_ms},
           {"expires_at_ms", f.expires_at_ms}};
}

// Strict reads: a field of the wrong type or out of range throws (the caller answers 400),
// never a silent cast of 1e30 into an int.
static int64_t fault_int(const Json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  if (!j.contains(key) || j.at(key).is_null()) return def;
  const Json& v = j.at(key);
  if (!v.is_number_integer()) throw std::invalid_argument(std::string(key) + " must be an integer");
  if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(hi)
                             : v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw std::invalid_argument(std::string(key) + " is out of range");
  return v.get<int64_t>();
}

static double fault_share(const Json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return 0;
  const Json& v = j.at(key);
  if (!v.is_number()) throw std::invalid_argument(std::string(key) + " must be a number");
  return v.get<double>();
}

void from_json(const Json& j, FaultSetting& f) {
  if (!j.is_object()) throw std::invalid_argument("a fault setting must be a JSON object");
  const Json& e = j.at("experiment");
  if (!e.is_string()) throw std::invalid_argument("experiment must be a string");
  f.experiment = e.get<std::string>();
  f.latency_ms = static_cast<int>(fault_int(j, "latency_ms", 0, INT32_MIN, INT32_MAX));
  f.latency_share = fault_share(j, "latency_share");
  f.error_share = fault_share(j, "error_share");
  f.error_status = static_cast<int>(fault_int(j, "error_status", 503, INT32_MIN, INT32_MAX));
  f.duration_ms = fault_int(j, "duration_ms", 0, INT64_MIN, INT64_MAX);
  f.expires_at_ms = fault_int(j, "expires_at_ms", 0, INT64_MIN, INT64_MAX);
}

void to_json(Json& j, const FaultCounters& c) {
  j = Json{{"seen", c.seen},
           {"delayed", c.delayed},
           {"errored", c.errored},
           {"delay_ms_total", c.delay_ms_total}};
}

void from_json(const Json& j, FaultCounters& c) {
  c.seen = j.value("seen", uint64_t{0});
  c.delayed = j.value("delayed", uint64_t{0});
  c.errored = j.value("errored", uint64_t{0});
  c.delay_ms_total = j.value("delay_ms_total", uint64_t{0});
}

void to_json(Json& j, const FaultReport& r) {
  Json s;
  to_json(s, r.setting);
  Json c;
  to_json(c, r.counters);
  j = Json{{"setting", s}, {"active", r.active}, {"counters", c}};
}

void from_json(const Json& j, FaultReport& r) {
  if (j.contains("setting") && j.at("setting").contains("experiment"))
    from_json(j.at("setting"), r.setting);
  r.active = j.value("active", false);
  if (j.contains("counters")) from_json(j.at("counters"), r.counters);
}

}  // namespace ferry
