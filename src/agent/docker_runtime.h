// DockerRuntime: instances as Docker containers, through the Engine API (docker_api.h).
//
// start(): the image is made present by the pull policy (never: must be on the host;
// missing: pulled when absent; always: pulled every start, an unreachable registry is an
// error naming the image), then a container is created and started with
//   - host networking: the program listens on the ferry-assigned PORT on 127.0.0.1 of the
//     host itself, exactly as a process does (docs/agent.md says why not -p publishing);
//   - the instance's environment (PORT, FERRY_*, run.env and injected secrets) as the
//     container's Env, which `docker inspect` shows in clear to whoever may use the socket;
//   - labels ferry.app, ferry.env, ferry.release, ferry.instance and ferry.agent (this
//     agent's data dir), by which a restarted agent finds its containers again;
//   - run.cpus / run.memory as NanoCpus / Memory; run.user as User; run.cwd as WorkingDir.
// A thread per container follows its output through the logs API into the instance's
// log file (the same file a process writes) and, when the stream ends, records the exit
// code and removes the container; exit_status() then reports it without I/O.
//
// stop(kGraceful) sends SIGTERM, stop(kKill) SIGKILL (the supervisor times the grace). An
// exit code 128+N from dockerd is reported as -N (killed by signal N), as for processes.
//
// Thread safety: every method may be called from any thread. start(), stop() and adopt()
// call dockerd (bounded by the API timeout; a pull by pull_timeout_ms); exit_status() and
// alive() of a followed container do no I/O.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/docker_api.h"
#include "agent/runtime.h"

namespace ferry {

struct DockerRuntimeOptions {
  std::string socket;    // dockerd's Unix socket (DockerApi::socket_from_env())
  std::string log_dir;   // instance logs: log_dir/<app>/<instance>.log
  std::string agent_id;  // the ferry.agent label: this agent's containers and no other's
  int api_timeout_ms = 15'000;
  int pull_timeout_ms = 120'000;
};

class DockerRuntime final : public Runtime {
 public:
  explicit DockerRuntime(DockerRuntimeOptions options);
  ~DockerRuntime() override;  // ends the log followers; containers keep running

  Result<RuntimeHandle> start(const LaunchSpec& launch) override;
  std::optional<int> exit_status(const RuntimeHandle& h) override;
  void stop(const RuntimeHandle& h, StopMode mode) override;
  bool alive(const RuntimeHandle& h) override;
  // Takes over a running container of this agent (its ferry.agent label); its log is
  // followed from the log file's last write on. A stopped one is removed: false.
  bool adopt(const RuntimeHandle& h) override;
  std::string log_path(const std::string& app, const std::string& instance) const override;

  // Removes this agent's containers (by the ferry.agent label) that it neither started
  // nor adopted: left over by an agent that died between create and saving its state, or
  // of apps removed while the agent was down. Returns how many were removed.
  Result<int> remove_strays();

  // Ids of the containers this runtime started or adopted and that have not ended.
  std::vector<std::string> tracked() const;

  const std::string& socket() const { return opts_.socket; }

  // Makes `image` present by `pull` (the first step of start()).
  Status ensure_image(const std::string& image, PullPolicy pull);

 private:
  struct Follower;
  Status pull_image(const std::string& image);
  void follow(const std::string& id, const std::string& log_path, double since_unix);
  void run_follower(std::shared_ptr<Follower> f);

  DockerRuntimeOptions opts_;
  DockerApi api_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Follower>> followers_;  // guarded by mu_
  std::set<std::string> creating_;                              // names, guarded by mu_
  bool closing_ = false;                                        // guarded by mu_
};

}  // namespace ferry
