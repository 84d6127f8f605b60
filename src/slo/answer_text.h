// The text `ferry slo APP --env E` prints for the answer of GET /api/v1/slo/{app}/{env}
// (docs/slo.md, docs/cli.md). Here rather than in the CLI so it is unit-tested: the answer
// comes over the network, so a field that is missing, null or of another type prints "-"
// (or is left out) instead of ending the command.
#pragma once

#include <string>

#include "common/json.h"

namespace ferry::slo {

std::string answer_text(const Json& answer);

// `ferry history`'s column for a deployment of GET /api/v1/deployments: "SLO 0.80%+0.10%",
// the budget spent from its first traffic and in the hour after ("…" while that hour is not
// over); "-" when it has no slo_spend (its app has no SLO there). A figure that is not a
// number prints "-".
std::string spend_text(const Json& deployment);

}  // namespace ferry::slo
