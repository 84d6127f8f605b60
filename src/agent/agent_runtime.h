// AgentRuntime: the runtime selection point. An instance whose run.image is set runs as a
// Docker container (docker_runtime.h), any other as a process (process_runtime.h); later
// calls go to the runtime that started it (a handle with a container id is a container's).
// Both write the same log files (data_dir/logs/<app>/<instance>.log), so rotation and
// removal of old logs is the process runtime's housekeeping for both.
//
// dockerd is needed only by apps with run.image: without it those instances fail to start
// with an error naming the socket, and processes run as before.
//
// Thread safety: as Runtime.
#pragma once

#include <memory>
#include <string>

#include "agent/docker_runtime.h"
#include "agent/process_runtime.h"

namespace ferry {

class AgentRuntime final : public Runtime {
 public:
  // `agent_data_dir` names this agent's containers (label ferry.agent). dockerd's socket
  // comes from DOCKER_HOST (docker_api.h).
  AgentRuntime(const std::string& agent_data_dir, LogPolicy logs);

  Result<RuntimeHandle> start(const LaunchSpec& launch) override;
  std::optional<int> exit_status(const RuntimeHandle& h) override;
  int exit_fd(const RuntimeHandle& h) override;  // processes only: containers are polled
  void stop(const RuntimeHandle& h, StopMode mode) override;
  bool alive(const RuntimeHandle& h) override;
  bool adopt(const RuntimeHandle& h) override;
  std::string log_path(const std::string& app, const std::string& instance) const override;
  void housekeeping(const std::string& app, const std::vector<std::string>& current) override;

  // After the state file's instances were adopted: removes this agent's containers that
  // were not (docker_runtime.h). Nothing when dockerd's socket does not exist. A message
  // for the agent's log, "" when there is nothing to say.
  std::string remove_strays();

  // The docker runtime, or null when DOCKER_HOST cannot be used (docker_error() says why).
  DockerRuntime* docker() { return docker_.get(); }
  const std::string& docker_error() const { return docker_error_; }

 private:
  ProcessRuntime process_;
  std::unique_ptr<DockerRuntime> docker_;
  std::string docker_error_;
};

}  // namespace ferry
