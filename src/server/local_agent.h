// LocalAgent: the `ferry agent` process the server starts on its own host (the
// embedded default). It runs in its own session so it outlives the server; a server
// that starts while one is already answering on the address reuses it.
#pragma once

#include <string>
#include <vector>

#include "agent/process.h"
#include "common/http_client.h"
#include "common/status.h"

namespace ferry {

class LocalAgent {
 public:
  // `data_dir` holds agent.token (0600) and the agent's own folder.
  // `private_env`: names in the server's environment (notification URLs and keys, its
  // token) the agent and so every instance must not inherit.
  LocalAgent(std::string ferry_binary, std::string data_dir, Endpoint listen,
             std::vector<std::string> private_env = {});

  // Reuses a healthy agent with our token on `listen`, else starts one and waits until
  // it answers (up to 5 s).
  Status ensure_running();
  // Restarts the agent when it stopped answering (after a crash or kill -9); its state
  // file lets the new process re-adopt the instances. True when it had to restart it.
  Result<bool> restart_if_down();
  const std::string& token() const { return token_; }
  const Endpoint& endpoint() const { return listen_; }
  bool started_by_us() const { return proc_.pid > 0; }

 private:
  Status load_or_create_token();
  bool healthy() const;

  std::string binary_;
  std::string data_dir_;
  Endpoint listen_;
  std::string token_;
  ProcessHandle proc_;
  std::vector<std::string> private_env_;
};

}  // namespace ferry
