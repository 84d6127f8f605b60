// From a deployment's position (how many new and old instances, what traffic split)
// to the AppDesiredState an agent is given. Pure functions.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/agent_api.h"
#include "core/spec.h"
#include "store/records.h"

namespace ferry {

struct DesiredInputs {
  std::string agent_app;         // "<app>.<env>": one router/app per environment
  const AppSpec* app = nullptr;  // resolved for the environment
  std::string env;
  const ReleaseRecord* new_release = nullptr;
  const ReleaseRecord* old_release = nullptr;  // the stable release, if any
  int new_count = 0;
  int old_count = 0;
  // Slot numbers (core/placement.h) of this agent's instances, in their ids; empty: slots
  // 0..count-1 (a desired state stored before placement).
  std::vector<int> new_slots, old_slots;
  int new_weight = 0;       // percent on the new release
  std::string listen_host;  // "" = the app's listen
  std::map<std::string, std::string> secrets;
};

AppDesiredState build_desired_state(const DesiredInputs& in, int64_t generation);

// release → weight, giving `new_weight` percent to the new release; a release with no
// desired instances gets no weight, so traffic never goes where nothing can answer.
std::map<std::string, int> traffic_weights(const std::string& new_release,
                                           const std::string& old_release, int new_weight,
                                           int new_count, int old_count);

// Increasing generation numbers that stay increasing across restarts (time-based).
int64_t next_generation(int64_t last, SystemTime now);

// The run and checks a release was created with (its config snapshot), or the app's.
RunSpec release_run(const ReleaseRecord& r, const AppSpec& app);
ChecksSpec release_checks(const ReleaseRecord& r, const AppSpec& app);

// Sums router counters and concatenates instances of several agents' statuses.
void merge_status(AppStatus& into, const AppStatus& other);

}  // namespace ferry
