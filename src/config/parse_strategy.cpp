// apps.<name>.strategy and apps.<name>.analysis.
#include "config/parsers.h"
#include "config/values.h"

namespace ferry::config {
namespace {

constexpr std::string_view kPercentiles[] = {"p50", "p75", "p90", "p95", "p99", "p999"};

void parse_step(const Field& f, CanaryStep& out) {
  if (!f.expect_map({"weight", "pause", "analysis"})) return;
  if (f.node().size() != 1) {
    f.error(
        "a step has exactly one of \"weight\", \"pause\" or \"analysis\", e.g. "
        "{weight: 10}; got " +
        std::to_string(f.node().size()) + " keys");
    return;
  }
  Field weight = f.child("weight");
  Field pause = f.child("pause");
  Field analysis = f.child("analysis");
  if (weight.node().IsDefined()) {
    out.kind = CanaryStep::Kind::kWeight;
    if (!weight.present())
      weight.error("expected a percentage from 0 to 100, got nothing");
    else
      weight.get_int(out.weight, 0, 100);
  } else if (pause.node().IsDefined()) {
    out.kind = CanaryStep::Kind::kPause;
    if (pause.is_scalar() && pause.node().Scalar() == "until_promote") {
      out.until_promote = true;
    } else if (pause.is_scalar() && !pause.node().Scalar().empty() &&
               std::isalpha(static_cast<unsigned char>(pause.node().Scalar()[0]))) {
      pause.error(describe(pause.node()) +
                  " is not allowed: use a duration (30s, 5m) or until_promote");
    } else if (!pause.present()) {
      pause.error("expected a duration (30s, 5m) or until_promote, got nothing");
    } else {
      pause.get_duration_ms(out.pause_ms, 1000, 24 * kHour);
    }
  } else if (analysis.node().IsDefined()) {
    out.kind = CanaryStep::Kind::kAnalysis;
    // `- analysis:` or `- analysis: default` use analysis.window.
    if (analysis.present() && !(analysis.is_scalar() && analysis.node().Scalar() == "default"))
      analysis.get_duration_ms(out.analysis_ms, 1000, 24 * kHour);
  }
}

void parse_canary(const Field& f, StrategySpec& out) {
  if (!f.present()) {
    f.error("a canary needs \"steps\", e.g. steps: [{weight: 10}, {analysis: 1m}, {weight: 100}]");
    return;
  }
  if (!f.expect_map({"steps"})) return;
  Field steps = f.required("steps");
  std::vector<Field> items = steps.items(kMaxSteps);
  int last = -1;
  int final_weight = -1;
  const Field* last_field = nullptr;
  for (const Field& s : items) {
    CanaryStep step;
    parse_step(s, step);
    if (step.kind == CanaryStep::Kind::kWeight && s.child("weight").present()) {
      if (step.weight < last)
        s.child("weight").error(std::to_string(step.weight) + " is lower than the step before (" +
                                std::to_string(last) +
                                "): weights must not decrease; to go back, roll back");
      last = std::max(last, step.weight);
      final_weight = step.weight;
      last_field = &s;
    }
    out.steps.push_back(step);
  }
  if (steps.present() && steps.is_list() && items.empty() && steps.node().size() == 0)
    steps.error("a canary needs at least one step, ending with {weight: 100}");
  else if (!items.empty() && last_field == nullptr)
    steps.error("a canary needs weight steps, ending with {weight: 100}");
  else if (last_field != nullptr && final_weight != 100)
    last_field->child("weight").error(
        "the last weight is " + std::to_string(final_weight) +
        ": a canary must end with {weight: 100} so the new release takes all traffic");
}

}  // namespace

void parse_strategy(const Field& f, StrategySpec& out) {
  if (!f.present()) return;
  static const std::vector<std::string_view> kKinds = {"immediate", "rolling", "blue_green",
                                                       "canary"};
  if (f.is_scalar()) {  // `strategy: rolling` with defaults
    std::string k;
    if (!f.get_enum(k, {"immediate", "rolling", "blue_green", "canary"})) return;
    if (k == "canary") {
      f.error(
          "a canary needs steps: strategy: {canary: {steps: [{weight: 10}, {analysis: 1m}, "
          "{weight: 100}]}}");
      return;
    }
    out.kind = k == "immediate" ? StrategySpec::Kind::kImmediate
               : k == "rolling" ? StrategySpec::Kind::kRolling
                                : StrategySpec::Kind::kBlueGreen;
    return;
  }
  if (!f.expect_map({"immediate", "rolling", "blue_green", "canary"})) return;
  if (f.node().size() != 1) {
    f.error("a strategy has exactly one of " + join_quoted(kKinds) + ", got " +
            std::to_string(f.node().size()));
    return;
  }
  if (Field s = f.child("immediate"); s.node().IsDefined()) {
    out.kind = StrategySpec::Kind::kImmediate;
    if (s.present()) s.expect_map({});
  } else if (Field r = f.child("rolling"); r.node().IsDefined()) {
    out.kind = StrategySpec::Kind::kRolling;
    if (r.present() && r.expect_map({"batch_size", "max_unavailable"})) {
      r.child("batch_size").get_int(out.batch_size, 1, 100);
      r.child("max_unavailable").get_int(out.max_unavailable, 0, 100);
    }
  } else if (Field b = f.child("blue_green"); b.node().IsDefined()) {
    out.kind = StrategySpec::Kind::kBlueGreen;
    if (b.present() && b.expect_map({"keep_old_for", "auto_promote"})) {
      b.child("keep_old_for").get_duration_ms(out.keep_old_ms, 0, 24 * kHour);
      b.child("auto_promote").get_bool(out.auto_promote);
    }
  } else if (Field c = f.child("canary"); c.node().IsDefined()) {
    out.kind = StrategySpec::Kind::kCanary;
    parse_canary(c, out);
  }
}

void parse_latency(const Field& f, std::vector<LatencyRule>& out) {
  if (!f.present()) return;
  std::vector<std::string_view> allowed;
  static const std::vector<std::string> kRatios = [] {
    std::vector<std::string> v;
    for (auto p : kPercentiles) v.push_back(std::string(p) + "_ratio");
    return v;
  }();
  for (auto p : kPercentiles) allowed.push_back(p);
  for (const auto& r : kRatios) allowed.push_back(r);
  if (!f.node().IsMap()) {
    f.type_error("a map such as {p99: 500ms, p95_ratio: 1.5}");
    return;
  }
  // expect_map takes an initializer_list; check keys by hand with the same messages.
  for (auto it = f.node().begin(); it != f.node().end(); ++it) {
    std::string k = it->first.IsScalar() ? it->first.Scalar() : "";
    bool known = false;
    for (auto a : allowed) known = known || a == k;
    if (!known)
      f.ctx().error(
          it->first.Mark(), f.path() + "." + k,
          "unknown key" + suggest(k, allowed) + "; allowed here: " + join_quoted(allowed));
  }
  for (size_t i = 0; i < std::size(kPercentiles); ++i) {
    LatencyRule rule;
    rule.metric = std::string(kPercentiles[i]);
    int ms = 0;
    if (f.child(kPercentiles[i]).get_duration_ms(ms, 1, 10 * 60'000)) rule.max_ms = ms;
    f.child(kRatios[i]).get_number(rule.max_ratio, 1, 100);
    if (rule.max_ms > 0 || rule.max_ratio > 0) out.push_back(rule);
  }
}

void parse_prometheus(const Field& f, PromQuerySpec& out) {
  if (!f.expect_map({"name", "url", "query", "max", "min"})) return;
  f.required("name").get(out.name, 63);
  Field url = f.required("url");
  if (url.get(out.url, 2048) && out.url.rfind("http://", 0) != 0 &&
      out.url.rfind("https://", 0) != 0) {
    url.error("is not a URL: it must start with http:// or https://, e.g. http://127.0.0.1:9090");
    out.url.clear();
  }
  f.required("query").get(out.query, 8192);
  double v = 0;
  if (f.child("max").get_number(v, -1e18, 1e18)) out.max = v;
  if (f.child("min").get_number(v, -1e18, 1e18)) out.min = v;
  if (!f.child("max").present() && !f.child("min").present())
    f.error("a query needs \"max\" or \"min\" (the bound that fails the analysis)");
  if (out.max && out.min && *out.min > *out.max)
    f.child("min").error("min is above max: nothing could pass");
}

void parse_analysis(const Field& f, AnalysisSpec& out) {
  if (!f.present()) return;
  if (!f.expect_map({"interval", "window", "min_requests", "max_error_rate", "latency",
                     "mann_whitney", "prometheus", "max_inconclusive", "sequential", "per_host"}))
    return;
  f.child("per_host").get_bool(out.per_host);
  f.child("interval").get_duration_ms(out.interval_ms, 100, kHour);
  f.child("window").get_duration_ms(out.window_ms, 1000, 24 * kHour);
  f.child("min_requests").get_int64(out.min_requests, 0, 1'000'000'000);
  Field rate = f.child("max_error_rate");
  if (rate.present()) {
    if (!rate.is_scalar()) {
      rate.type_error("a fraction (0.05) or a percentage (\"5%\")");
    } else {
      auto r = parse_fraction(rate.node().Scalar());
      if (auto* e = std::get_if<std::string>(&r))
        rate.error(*e);
      else
        out.max_error_rate = std::get<double>(r);
    }
  }
  parse_latency(f.child("latency"), out.latency);
  Field mw = f.child("mann_whitney");
  if (mw.present()) {
    if (mw.is_map()) {
      out.mann_whitney = true;
      if (mw.expect_map({"confidence"}))
        mw.child("confidence").get_number(out.confidence, 0.5, 0.9999);
    } else {
      mw.get_bool(out.mann_whitney);
    }
  }
  for (const Field& q : f.child("prometheus").items(kMaxQueries)) {
    PromQuerySpec spec;
    parse_prometheus(q, spec);
    out.prometheus.push_back(std::move(spec));
  }
  f.child("max_inconclusive").get_int(out.max_inconclusive, 1, 100);
  // sequential: false, or {interval: 100ms, alpha: 0.0001, ratio: 10}
  Field seq = f.child("sequential");
  if (seq.present()) {
    if (seq.is_map()) {
      out.sequential.enabled = true;
      if (seq.expect_map({"enabled", "interval", "alpha", "ratio"})) {
        seq.child("enabled").get_bool(out.sequential.enabled);
        // At least ten looks a second: the test is only as fast as its looks.
        seq.child("interval").get_duration_ms(out.sequential.interval_ms, 10, 100);
        seq.child("alpha").get_number(out.sequential.alpha, 1e-9, 0.05);
        seq.child("ratio").get_number(out.sequential.ratio, 1.5, 1000);
      }
    } else {
      seq.get_bool(out.sequential.enabled);
    }
  }
  if (out.interval_ms > out.window_ms)
    f.child("interval")
        .error(
            "the interval is longer than the window; it must be at most the "
            "window");
}

}  // namespace ferry::config
