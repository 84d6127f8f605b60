// LocalAgent: the `ferry agent` process the server starts on its own host (the embedded
// default). Its API is on a Unix socket inside the server's 0700 data dir
// (DATA_DIR/agent.sock, mode 0600), so the server never sends its agent token to whoever
// holds a TCP port; `--agent-listen HOST:PORT` chooses TCP instead. The agent runs in its
// own session so it outlives the server; a server that starts while one already answers
// with our token reuses it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/http_agent_client.h"
#include "agent/process.h"
#include "common/status.h"
#include "core/spec.h"

namespace ferry {

class LocalAgent {
 public:
  // `data_dir` holds agent.token (0600), the socket and the agent's own folder.
  // `address`: "" for DATA_DIR/agent.sock, "unix:PATH" or "HOST:PORT".
  // `private_env`: names in the server's environment (notification URLs and keys, its
  // token) the agent and so every instance must not inherit.
  LocalAgent(std::string ferry_binary, std::string data_dir, std::string address = "",
             std::vector<std::string> private_env = {}, LocalAgentSpec settings = {});
  ~LocalAgent();

  // Reuses a healthy agent with our token at the address, else starts one and waits until
  // it answers (up to 5 s). kInvalidArgument for an address that is neither form.
  Status ensure_running();
  // Restarts the agent when it stopped answering (after a crash or kill -9); its state
  // file lets the new process re-adopt the instances. True when it had to restart it.
  Result<bool> restart_if_down();
  // Returns once the agent process ended (true) or after `timeout_ms` (false). It watches
  // the process it started, else the one named in the agent's pid file, with a pidfd, so
  // a crash is seen at once rather than at the next poll.
  bool wait_for_exit(int timeout_ms);
  // A client of this agent (after ensure_running).
  std::unique_ptr<HttpAgentClient> client(int timeout_ms = 3000) const;
  const std::string& token() const { return token_; }
  // "unix:/abs/path/agent.sock" or "127.0.0.1:7071".
  const std::string& address() const { return address_; }
  bool started_by_us() const { return proc_.pid > 0; }

 private:
  Status load_or_create_token();
  bool healthy() const;
  bool nothing_listens() const;
  bool agent_holds_lock() const;

  std::string binary_;
  std::string data_dir_;
  std::string address_;
  std::string token_;
  ProcessHandle proc_;
  int watched_pid_ = 0;  // the process pidfd_ refers to
  int pidfd_ = -1;
  std::vector<std::string> private_env_;
  LocalAgentSpec settings_;
};

}  // namespace ferry
