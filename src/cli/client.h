// Helpers the verbs share: an API client built from the global options, and printing
// of errors with the exit codes of docs/cli.md (0 ok, 1 refused/failed, 2 usage/error).
#pragma once

#include <string>

#include "cli/commands.h"
#include "common/http_client.h"

namespace ferry::cli {

// Exits (through CLI::RuntimeError) with code 2 when the server address is bad.
HttpClient api_client(const GlobalOptions& g, int timeout_ms = 30'000);

// Calls the API; on error prints "error: <message>" to stderr and exits with 1 for
// refusals (gates, permissions, not found) or 2 for transport/internal errors.
Json api_call(const GlobalOptions& g, const std::string& method, const std::string& target,
              const Json* body = nullptr);

[[noreturn]] void fail(const std::string& message, int code = 2);

// "2026-11-25 09:30:00" in local time, from unix ms.
std::string local_time(int64_t ms);

}  // namespace ferry::cli
