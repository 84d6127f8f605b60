#include "agent/agent_runtime.h"

#include <filesystem>

namespace ferry {

namespace fs = std::filesystem;

AgentRuntime::AgentRuntime(const std::string& agent_data_dir, LogPolicy logs)
    : process_(agent_data_dir + "/logs", logs) {
  auto socket = DockerApi::socket_from_env();
  if (!socket.ok()) {
    docker_error_ = socket.status().message();
    return;
  }
  std::error_code ec;
  const fs::path abs = fs::weakly_canonical(fs::absolute(agent_data_dir, ec), ec);
  DockerRuntimeOptions o;
  o.socket = *socket;
  o.log_dir = agent_data_dir + "/logs";
  o.agent_id = abs.empty() ? agent_data_dir : abs.string();
  docker_ = std::make_unique<DockerRuntime>(std::move(o));
}

Result<RuntimeHandle> AgentRuntime::start(const LaunchSpec& launch) {
  if (launch.image.empty()) return process_.start(launch);
  if (!docker_) return unavailable("run.image needs dockerd: " + docker_error_);
  return docker_->start(launch);
}

std::optional<int> AgentRuntime::exit_status(const RuntimeHandle& h) {
  if (!h.id.empty()) return docker_ ? docker_->exit_status(h) : std::optional<int>(kExitUnknown);
  return process_.exit_status(h);
}

int AgentRuntime::exit_fd(const RuntimeHandle& h) {
  return h.id.empty() ? process_.exit_fd(h) : -1;
}

void AgentRuntime::stop(const RuntimeHandle& h, StopMode mode) {
  if (h.id.empty()) return process_.stop(h, mode);
  if (docker_) docker_->stop(h, mode);
}

bool AgentRuntime::alive(const RuntimeHandle& h) {
  if (h.id.empty()) return process_.alive(h);
  return docker_ && docker_->alive(h);
}

bool AgentRuntime::adopt(const RuntimeHandle& h) {
  if (h.id.empty()) return process_.adopt(h);
  return docker_ && docker_->adopt(h);
}

std::string AgentRuntime::log_path(const std::string& app, const std::string& instance) const {
  return process_.log_path(app, instance);
}

void AgentRuntime::housekeeping(const std::string& app, const std::vector<std::string>& current) {
  process_.housekeeping(app, current);
}

std::string AgentRuntime::remove_strays() {
  std::error_code ec;
  if (!docker_ || !fs::exists(docker_->socket(), ec)) return "";
  auto n = docker_->remove_strays();
  if (!n.ok()) return "stray containers not checked: " + n.status().message();
  return *n > 0 ? "removed " + std::to_string(*n) + " stray container(s) of this agent" : "";
}

}  // namespace ferry
