#include "core/plan.h"

#include <algorithm>

#include <fmt/format.h>

namespace ferry {

namespace {
struct KindName {
  PlanStep::Kind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {PlanStep::Kind::kHooks, "hooks"},       {PlanStep::Kind::kStart, "start"},
    {PlanStep::Kind::kWeight, "weight"},     {PlanStep::Kind::kPause, "pause"},
    {PlanStep::Kind::kAnalysis, "analysis"}, {PlanStep::Kind::kBatch, "batch"},
    {PlanStep::Kind::kStopOld, "stop_old"},  {PlanStep::Kind::kFinish, "finish"},
};

std::string human_ms(int ms) {
  if (ms % 3600'000 == 0 && ms > 0) return fmt::format("{}h", ms / 3600'000);
  if (ms % 60'000 == 0 && ms > 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

PlanStep step(PlanStep::Kind k) {
  PlanStep s;
  s.kind = k;
  return s;
}
}  // namespace

std::string_view to_string(PlanStep::Kind k) {
  for (const auto& kn : kKinds)
    if (kn.kind == k) return kn.name;
  return "start";
}

std::string_view strategy_name(StrategySpec::Kind k) {
  switch (k) {
    case StrategySpec::Kind::kImmediate: return "immediate";
    case StrategySpec::Kind::kRolling: return "rolling";
    case StrategySpec::Kind::kBlueGreen: return "blue_green";
    case StrategySpec::Kind::kCanary: return "canary";
  }
  return "rolling";
}

std::string PlanStep::describe() const {
  switch (kind) {
    case Kind::kHooks: return fmt::format("run {} hooks", phase);
    case Kind::kStart: return fmt::format("start {} new instance(s) and wait until ready", count);
    case Kind::kWeight: return fmt::format("send {}% of traffic to the new release", weight);
    case Kind::kPause:
      return until_promote ? "pause until `ferry promote`"
                           : fmt::format("pause {}", human_ms(duration_ms));
    case Kind::kAnalysis: return fmt::format("analyse the new release for {}", human_ms(duration_ms));
    case Kind::kBatch:
      return fmt::format("replace {} old instance(s) by new ones ({} new, {}% of traffic)", count,
                         total, weight);
    case Kind::kStopOld:
      return duration_ms > 0
                 ? fmt::format("keep the old release {} for instant rollback, then stop it",
                               human_ms(duration_ms))
                 : "drain and stop the old release";
    case Kind::kFinish: return "record the release as stable";
  }
  return {};
}

std::vector<PlanStep> plan_deployment(const AppSpec& app, bool has_stable) {
  std::vector<PlanStep> out;
  if (!app.hooks.pre_deploy.empty()) {
    auto h = step(PlanStep::Kind::kHooks);
    h.phase = "pre_deploy";
    out.push_back(h);
  }
  const int n = std::max(1, app.instances);
  auto start_all = step(PlanStep::Kind::kStart);
  start_all.count = n;
  auto all_traffic = step(PlanStep::Kind::kWeight);
  all_traffic.weight = 100;
  const auto& st = app.strategy;

  if (!has_stable || st.kind == StrategySpec::Kind::kImmediate) {
    out.push_back(start_all);
    out.push_back(all_traffic);
    if (has_stable) out.push_back(step(PlanStep::Kind::kStopOld));
  } else if (st.kind == StrategySpec::Kind::kRolling) {
    const int batch = std::clamp(st.batch_size, 1, n);
    for (int done = 0; done < n;) {
      auto b = step(PlanStep::Kind::kBatch);
      b.count = std::min(batch, n - done);
      done += b.count;
      b.total = done;
      b.weight = done * 100 / n;
      out.push_back(b);
    }
    out.push_back(step(PlanStep::Kind::kStopOld));
  } else if (st.kind == StrategySpec::Kind::kBlueGreen) {
    out.push_back(start_all);  // readiness of the whole new set is the verification
    if (!st.auto_promote) {
      auto p = step(PlanStep::Kind::kPause);
      p.until_promote = true;
      out.push_back(p);
    }
    out.push_back(all_traffic);
    auto stop = step(PlanStep::Kind::kStopOld);
    stop.duration_ms = st.keep_old_ms;
    out.push_back(stop);
  } else {  // canary
    auto start = step(PlanStep::Kind::kStart);
    start.count = n;
    out.push_back(start);
    bool reached_full = false;
    for (const auto& cs : st.steps) {
      PlanStep s;
      switch (cs.kind) {
        case CanaryStep::Kind::kWeight:
          s.kind = PlanStep::Kind::kWeight;
          s.weight = cs.weight;
          reached_full = cs.weight >= 100;
          break;
        case CanaryStep::Kind::kPause:
          s.kind = PlanStep::Kind::kPause;
          s.duration_ms = cs.pause_ms;
          s.until_promote = cs.until_promote;
          break;
        case CanaryStep::Kind::kAnalysis:
          s.kind = PlanStep::Kind::kAnalysis;
          s.duration_ms = cs.analysis_ms > 0 ? cs.analysis_ms : app.analysis.window_ms;
          break;
      }
      out.push_back(s);
    }
    if (!reached_full) out.push_back(all_traffic);
    out.push_back(step(PlanStep::Kind::kStopOld));
  }
  if (!app.hooks.post_deploy.empty()) {
    auto h = step(PlanStep::Kind::kHooks);
    h.phase = "post_deploy";
    out.push_back(h);
  }
  out.push_back(step(PlanStep::Kind::kFinish));
  return out;
}

std::vector<PlanStep> plan_rollback(const AppSpec& app) {
  auto start = step(PlanStep::Kind::kStart);
  start.count = std::max(1, app.instances);
  auto w = step(PlanStep::Kind::kWeight);
  w.weight = 100;
  return {start, w, step(PlanStep::Kind::kStopOld), step(PlanStep::Kind::kFinish)};
}

bool sends_traffic(const PlanStep& s, bool first_deployment) {
  return ((s.kind == PlanStep::Kind::kWeight || s.kind == PlanStep::Kind::kBatch) &&
          s.weight > 0) ||
         (s.kind == PlanStep::Kind::kStart && first_deployment);
}

void to_json(Json& j, const PlanStep& s) {
  j = Json{{"kind", to_string(s.kind)}, {"description", s.describe()}};
  if (s.weight) j["weight"] = s.weight;
  if (s.count) j["count"] = s.count;
  if (s.total) j["total"] = s.total;
  if (s.duration_ms) j["duration_ms"] = s.duration_ms;
  if (s.until_promote) j["until_promote"] = true;
  if (!s.phase.empty()) j["phase"] = s.phase;
}

void from_json(const Json& j, PlanStep& s) {
  const std::string k = j.value("kind", "start");
  for (const auto& kn : kKinds)
    if (kn.name == k) s.kind = kn.kind;
  s.weight = j.value("weight", 0);
  s.count = j.value("count", 0);
  s.total = j.value("total", 0);
  s.duration_ms = j.value("duration_ms", 0);
  s.until_promote = j.value("until_promote", false);
  s.phase = j.value("phase", "");
}

}  // namespace ferry
