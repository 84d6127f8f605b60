// GenerationsSource: an agent client that answers every app's accepted generation in one
// call (the agent's GET /v1/generations). The reconciler's periodic check that agents still
// have what they should asks it once per agent instead of one app_status per app
// (engine/reconciler.cpp); an AgentClient without it is read per app.
//
// Kept beside AgentClient rather than in it so that agent clients that cannot answer (test
// fakes, older agents) need nothing: the reconciler looks for it with dynamic_cast.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/status.h"

namespace ferry {

class GenerationsSource {
 public:
  virtual ~GenerationsSource() = default;
  // app ("<app>.<env>") → its accepted generation, for every app on the agent. kNotFound:
  // the agent cannot answer it (it predates the call): read app_status per app.
  virtual Result<std::map<std::string, int64_t>> generations() = 0;
};

}  // namespace ferry
