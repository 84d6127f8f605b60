#include "slo/answer_text.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace ferry::slo {

namespace {

// The field `key` of `o`, or nullptr when `o` is not an object or has no such field.
const Json* answer_field(const Json& o, const char* key) {
  if (!o.is_object()) return nullptr;
  auto it = o.find(key);
  return it == o.end() ? nullptr : &*it;
}

// A figure: `def` when missing, NaN (printed "-") when present but not a number (null: a
// ratio of nothing has no JSON form).
double answer_number(const Json& o, const char* key, double def) {
  const Json* v = answer_field(o, key);
  if (v == nullptr) return def;
  return v->is_number() ? v->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

// A name: "" when missing, "-" when not a string.
std::string answer_string(const Json& o, const char* key) {
  const Json* v = answer_field(o, key);
  if (v == nullptr) return "";
  return v->is_string() ? v->get<std::string>() : "-";
}

bool answer_flag(const Json& o, const char* key, bool def) {
  const Json* v = answer_field(o, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : def;
}

// The object (or array) at `key`, or an empty one whatever else is there.
const Json& answer_object(const Json& o, const char* key) {
  static const Json kEmpty = Json::object();
  const Json* v = answer_field(o, key);
  return v != nullptr && v->is_object() ? *v : kEmpty;
}
const Json& answer_array(const Json& o, const char* key) {
  static const Json kEmpty = Json::array();
  const Json* v = answer_field(o, key);
  return v != nullptr && v->is_array() ? *v : kEmpty;
}

std::string answer_count(const Json& o, const char* key) {
  const Json* v = answer_field(o, key);
  if (v == nullptr) return "0";
  return v->is_number_unsigned() ? std::to_string(v->get<uint64_t>()) : "-";
}

std::string answer_pct(double v) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.3f}%", v * 100);
}

std::string answer_times(double v) {
  if (!std::isfinite(v)) return "-";
  return fmt::format("{:.2f}x", v);
}

}  // namespace

std::string spend_text(const Json& d) {
  const Json* spend = answer_field(d, "slo_spend");
  if (spend == nullptr || !spend->is_object()) return "-";
  auto pct = [](double v) { return std::isfinite(v) ? fmt::format("{:.2f}%", v * 100) : "-"; };
  return "SLO " + pct(answer_number(*spend, "during", 0.0)) + "+" +
         pct(answer_number(*spend, "after", 0.0)) +
         (answer_flag(*spend, "after_complete", false) ? "" : "…");
}

std::string answer_text(const Json& s) {
  std::string out;
  const double window_ms = answer_number(s, "window_ms", 0);
  out +=
      fmt::format("SLO of {} in {} (window {})\n", answer_string(s, "app"), answer_string(s, "env"),
                  std::isfinite(window_ms) && std::fabs(window_ms) < 1e15
                      ? std::to_string(static_cast<int64_t>(window_ms) / 3'600'000) + "h"
                      : std::string("-"));
  for (const auto& o : answer_array(s, "objectives")) {
    if (!o.is_object()) continue;
    std::string what = answer_string(o, "objective");
    if (answer_field(o, "threshold_ms") != nullptr) {
      const double t = answer_number(o, "threshold_ms", 0);
      what += std::isfinite(t) ? fmt::format(" (under {} ms)", t) : " (under - ms)";
    }
    out += fmt::format("  {:<28} target {:<9} attained {:<9} budget left {}\n", what,
                       answer_pct(answer_number(o, "target", 0.0)),
                       answer_pct(answer_number(o, "attainment", 1.0)),
                       answer_pct(answer_number(o, "budget_remaining", 1.0)));
    std::string burns;
    const Json& burn = answer_object(o, "burn");
    for (const auto& [w, v] : burn.items())
      burns += fmt::format("  {} {}", w, answer_times(answer_number(burn, w.c_str(), 0)));
    out += "    burn:" + burns + "   (" + answer_count(o, "requests") + " requests, " +
           answer_count(o, "bad") + " bad)\n";
    for (const auto& [name, firing] : answer_object(o, "alerts").items())
      if (firing.is_boolean() && firing.get<bool>())
        out += "    ALERT " + name +
               (name == "page" ? ": burning >14.4x over 1h and 5m\n"
                               : ": burning >6x over 6h and 30m\n");
  }
  if (answer_field(s, "gate") != nullptr) {
    const Json& g = answer_object(s, "gate");
    out += "  gate: " +
           (answer_flag(g, "open", true) ? std::string("open")
                                         : "closed: " + answer_string(g, "reason")) +
           "\n";
  }
  const Json& deps = answer_array(s, "deployments");
  if (!deps.empty()) out += "  budget spent by deployments (while running + hour after):\n";
  for (const auto& d : deps) {
    if (!d.is_object()) continue;
    out += fmt::format("    {:<10} {:<10} {:<12} {} + {}{}\n", answer_string(d, "id"),
                       answer_string(d, "release"), answer_string(d, "state"),
                       answer_pct(answer_number(d, "budget_spent", 0.0)),
                       answer_pct(answer_number(d, "budget_spent_after", 0.0)),
                       answer_flag(d, "after_complete", false) ? "" : " (hour not over)");
  }
  return out;
}

}  // namespace ferry::slo
