// The agent's HTTP API (docs/agent.md): the control plane puts desired state and reads
// status and router stats. Every call but /v1/health needs the agent token. The local
// agent serves it on a Unix socket (unix_http.h), a remote agent on TCP.
#pragma once

#include <memory>
#include <string>

#include "agent/agent.h"
#include "common/http_server.h"

namespace ferry {

// Adds the agent routes and the token check to `server`.
void add_agent_routes(HttpServer& server, Agent& agent, std::string token);
// The game-day routes (faults, kill; agent_fault_routes.cpp); add_agent_routes adds them.
void add_agent_fault_routes(HttpServer& server, Agent& agent);

// Reads an agent token file: one line, at least 24 characters; a file readable by group
// or others is refused (the token is a credential).
Result<std::string> read_token_file(const std::string& path);

}  // namespace ferry
