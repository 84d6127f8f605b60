// Plan: the steps a deployment takes, derived from the app's strategy. Pure logic; the
// engine executes the steps and `ferry plan` prints them.
#pragma once

#include <string>
#include <vector>

#include "common/json.h"
#include "core/spec.h"

namespace ferry {

struct PlanStep {
  enum class Kind {
    kHooks,      // run the hooks of `phase` (pre_deploy, post_deploy)
    kStart,      // start `count` instances of the new release, wait until ready
    kWeight,     // send `weight` percent of traffic to the new release
    kPause,      // wait `duration_ms`, or for `ferry promote` when until_promote
    kAnalysis,   // watch the new release for `duration_ms` and decide pass/fail
    kBatch,      // rolling: replace `count` old instances by new ones, shift weight
    kStopOld,    // drain and stop the old release's instances after `duration_ms`
    kFinish,     // record the new release as the environment's stable one
  };
  Kind kind = Kind::kStart;
  int weight = 0;
  int count = 0;
  int total = 0;         // kBatch: new instances after this batch
  int duration_ms = 0;
  bool until_promote = false;
  std::string phase;     // kHooks

  std::string describe() const;
};

std::string_view to_string(PlanStep::Kind k);

// Whether a step sends traffic to the new release: a weight or batch step with a weight, or
// the start step of a first deployment (it opens all traffic once ready). A deployment's
// share of the SLO's error budget counts from the start of its first such step (the
// runner's budget guard and `ferry history` alike, docs/slo.md).
bool sends_traffic(const PlanStep& s, bool first_deployment);

// The steps for deploying `app` (already resolved for its environment). With no
// stable release (first deployment) every strategy starts the new set and sends it all
// traffic at once, since there is nothing to compare against or fall back to.
std::vector<PlanStep> plan_deployment(const AppSpec& app, bool has_stable);

// A plan that only returns traffic to the stable release (used by `ferry rollback`).
std::vector<PlanStep> plan_rollback(const AppSpec& app);

std::string_view strategy_name(StrategySpec::Kind k);

void to_json(Json& j, const PlanStep& s);
void from_json(const Json& j, PlanStep& s);

}  // namespace ferry
