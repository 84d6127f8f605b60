// Game-day faults (`ferry chaos`, docs/runbook.md "Game days"): what the control plane asks
// an agent's router to do to a share of an app's requests for a bounded time, and what the
// router counted while doing it. These are the wire format of the agent's fault endpoint
// (PUT/GET/DELETE /v1/apps/{app}/fault, docs/agent.md).
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "common/status.h"

namespace ferry {

// Bounds every fault setting is checked against (by the server, and again by the agent).
inline constexpr int64_t kMaxFaultDurationMs = 3'600'000;  // one hour
inline constexpr int kMaxFaultLatencyMs = 30'000;

// One experiment's faults on one app's router. A request is answered `error_status` by the
// router itself with probability `error_share`; otherwise it is held `latency_ms` before it
// is proxied with probability `latency_share`. Shares are fractions in [0, 1].
struct FaultSetting {
  std::string experiment;  // the experiment's id: counters belong to it
  int latency_ms = 0;
  double latency_share = 0;
  double error_share = 0;
  int error_status = 503;
  // How long the faults last from when the agent receives them: the agent ends them by
  // itself then, whether or not the control plane is still there.
  int64_t duration_ms = 0;
  int64_t expires_at_ms = 0;  // unix ms, as the agent computed it (reported back)

  // kInvalidArgument naming the field and value when a field is out of range: an
  // experiment id of 1-64 letters, digits, '-' or '_'; latency 0-30000 ms; shares in
  // [0, 1] (a latency share needs a latency); an error status 500-599; a duration of
  // 1 s to one hour; at least one fault.
  Status validate() const;
};

// What the router counted for the current (or last) experiment since its faults were set.
struct FaultCounters {
  uint64_t seen = 0;     // requests routed while the faults were active
  uint64_t delayed = 0;  // held latency_ms before being proxied
  uint64_t errored = 0;  // answered error_status by the router (never reached an instance)
  uint64_t delay_ms_total = 0;
};

// GET /v1/apps/{app}/fault: the setting (empty experiment: none ever set), whether it is
// still active, and its counters.
struct FaultReport {
  FaultSetting setting;
  bool active = false;
  FaultCounters counters;
};

// What an agent client offers for game days besides AgentClient (core/agent_api.h): the
// control plane finds it with dynamic_cast, so an agent client without it (a test fake) is
// simply one that cannot take part. Thread safety as the implementing AgentClient's.
class FaultControl {
 public:
  virtual ~FaultControl() = default;
  // Sets the app's router faults (they end by themselves after setting.duration_ms).
  // kInvalidArgument for a bad setting, kNotFound when the app is not on the agent.
  virtual Status set_fault(const std::string& app, const FaultSetting& setting) = 0;
  // Ends them now (only `experiment`'s, when not empty). Ok when none was active.
  virtual Status clear_fault(const std::string& app, const std::string& experiment) = 0;
  virtual Result<FaultReport> fault_report(const std::string& app) = 0;
  // SIGKILLs one running instance (`id` empty: any ready one) behind its supervisor's back,
  // which restarts it as after a crash; answers its id. kNotFound / kFailedPrecondition
  // when there is none to kill.
  virtual Result<std::string> kill_instance(const std::string& app, const std::string& id) = 0;
};

void to_json(Json& j, const FaultSetting& f);
void from_json(const Json& j, FaultSetting& f);
void to_json(Json& j, const FaultCounters& c);
void from_json(const Json& j, FaultCounters& c);
void to_json(Json& j, const FaultReport& r);
void from_json(const Json& j, FaultReport& r);

}  // namespace ferry
