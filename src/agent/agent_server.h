// The agent's HTTP API (docs/agent.md): the control plane puts desired state and reads
// status and router stats. Every call but /v1/health needs the agent token. The local
// agent serves it on a Unix socket (unix_http.h), a remote agent on TCP.
#pragma once

#include <memory>
#include <string>

#include "agent/agent.h"
#include "agent/edge_readiness.h"
#include "agent/revocation_list.h"
#include "common/http_server.h"

namespace ferry {

struct AgentApiExtras {
  // The out mark and the stop drain behind GET /v1/ready/APP (null: a fresh one, not kept).
  std::shared_ptr<EdgeReadiness> edge;
  // The agent's revocation list (TLS_DIR/revoked) behind GET/PUT /v1/revoked; null (an
  // agent without TLS): those routes answer 404.
  std::shared_ptr<RevocationList> revoked;
};

// Adds the agent routes and the token check to `server`.
void add_agent_routes(HttpServer& server, Agent& agent, std::string token,
                      AgentApiExtras extras = {});
// The plain-HTTP readiness listener of an agent whose API is TLS (`ferry agent
// --ready-listen`): GET /v1/ready/{app} only, no token; every other request is 404.
void add_readiness_routes(HttpServer& server, Agent& agent, std::shared_ptr<EdgeReadiness> edge);
// The game-day routes (faults, kill; agent_fault_routes.cpp); add_agent_routes adds them.
void add_agent_fault_routes(HttpServer& server, Agent& agent);

// Reads an agent token file: one line, at least 24 characters; a file readable by group
// or others is refused (the token is a credential).
Result<std::string> read_token_file(const std::string& path);

}  // namespace ferry
