// Probes of one instance: HTTP (path, expected status), TCP connect, or a command
// (exit 0). Each call is bounded by the probe's timeout.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/spec.h"

namespace ferry {

struct ProbeResult {
  bool ok = false;
  std::string message;  // why it failed: "GET /healthz: 503", "connect refused", ...
};

ProbeResult run_probe(const ProbeSpec& probe, const std::string& host, uint16_t port,
                      const std::map<std::string, std::string>& env = {});

}  // namespace ferry
