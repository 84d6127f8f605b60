// FakeAgent: an in-memory AgentClient for engine unit tests. Instances become ready
// after `ready_after_polls` status reads (or never, or crash); traffic per release is
// simulated on demand with a chosen error rate and latency. The e2e tests use the real
// agent; this one makes strategy and rollback decisions deterministic and fast.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "core/agent_api.h"

namespace ferry::testing {

class FakeAgent final : public AgentClient {
 public:
  struct ReleaseBehaviour {
    double error_rate = 0;
    double latency_ms = 10;
    bool never_ready = false;
    bool crash = false;
  };

  explicit FakeAgent(std::string name = "local") : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::string address() const override { return "fake://" + name_; }
  Status health() override { return cut_status(); }

  // A partition: every call fails as a real client's would (kDeadlineExceeded) after
  // `delay_ms`, until restored.
  void cut(int delay_ms = 0) {
    delay_ms_ = delay_ms;
    cut_ = true;
  }
  void restore() { cut_ = false; }
  // Calls in flight on every FakeAgent sharing `counter` (parallelism of the engine).
  void share_in_flight(std::atomic<int>* now, std::atomic<int>* max) {
    in_flight_ = now;
    max_in_flight_ = max;
  }

  Status put_app(const AppDesiredState& s) override {
    FERRY_RETURN_IF_ERROR(cut_status());
    std::lock_guard lock(mu_);
    ++puts_;
    auto& app = apps_[s.app];
    if (s.generation < app.generation) return Status::Ok();
    app.generation = s.generation;
    app.weights = s.weights;
    app.listen_host = s.listen_host;
    std::vector<InstanceStatus> next;
    for (const auto& i : s.instances) {
      InstanceStatus st;
      st.id = i.id;
      st.release = i.release;
      st.state = InstanceState::kStarting;
      for (const auto& old : app.instances)
        if (old.id == i.id) st = old;
      next.push_back(st);
      env_seen_[i.id] = i.run.env;
    }
    app.instances = next;
    return Status::Ok();
  }

  Status set_weights(const std::string& app, int64_t generation,
                     const std::map<std::string, int>& w) override {
    FERRY_RETURN_IF_ERROR(cut_status());
    std::lock_guard lock(mu_);
    auto& a = apps_[app];
    if (generation < a.generation) return Status::Ok();
    a.generation = generation;
    a.weights = w;
    weight_history_.push_back(w);
    return Status::Ok();
  }

  Result<AppStatus> app_status(const std::string& app) override {
    FERRY_RETURN_IF_ERROR(cut_status());
    std::lock_guard lock(mu_);
    auto& a = apps_[app];
    for (auto& i : a.instances) {
      const auto& b = behaviour_[i.release];
      if (b.crash) {
        i.state = InstanceState::kCrashed;
        i.restarts = 5;
        i.message = "exited with code 1";
      } else if (!b.never_ready) {
        i.state = InstanceState::kReady;
      }
    }
    // Traffic flows between two status reads, split by weight.
    int total_w = 0;
    for (auto& [r, w] : a.weights) total_w += w;
    for (auto& [rel, w] : a.weights) {
      if (total_w == 0 || w == 0) continue;
      const int n = requests_per_poll_ * w / total_w;
      auto& st = stats_[app][rel];
      st.release = rel;
      const auto& b = behaviour_[rel];
      if (st.latency_counts.empty()) st.latency_counts.assign(latency_buckets_ms().size() + 1, 0);
      for (int k = 0; k < n; ++k) {
        ++st.requests;
        const bool err = std::uniform_real_distribution<>(0, 1)(rng_) < b.error_rate;
        (err ? st.status_5xx : st.status_2xx)++;
        const double lat = b.latency_ms * std::uniform_real_distribution<>(0.8, 1.2)(rng_);
        st.latency_sum_ms += lat;
        size_t bucket = 0;
        while (bucket < latency_buckets_ms().size() && lat > latency_buckets_ms()[bucket]) ++bucket;
        ++st.latency_counts[bucket];
        st.recent_latencies_ms.push_back(lat);
        if (st.recent_latencies_ms.size() > 2000)
          st.recent_latencies_ms.erase(st.recent_latencies_ms.begin());
        ++st.sample_seq;
      }
    }
    AppStatus out;
    out.app = app;
    out.generation = a.generation;
    out.weights = a.weights;
    out.instances = a.instances;
    for (auto& [rel, st] : stats_[app]) out.releases.push_back(st);
    return out;
  }

  Status remove_app(const std::string& app) override {
    FERRY_RETURN_IF_ERROR(cut_status());
    std::lock_guard lock(mu_);
    apps_.erase(app);
    return Status::Ok();
  }

  // Requests this host's router serves between two status reads (all releases together).
  void set_requests_per_poll(int n) {
    std::lock_guard lock(mu_);
    requests_per_poll_ = n;
  }
  void set_behaviour(const std::string& release, ReleaseBehaviour b) {
    std::lock_guard lock(mu_);
    behaviour_[release] = b;
  }
  int64_t generation(const std::string& app) {
    std::lock_guard lock(mu_);
    return apps_[app].generation;
  }
  std::map<std::string, int> weights(const std::string& app) {
    std::lock_guard lock(mu_);
    return apps_[app].weights;
  }
  std::set<std::string> running_releases(const std::string& app) {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& i : apps_[app].instances) out.insert(i.release);
    return out;
  }
  // Ids of the instances the agent runs for app (placement: unique across agents).
  std::set<std::string> instance_ids(const std::string& app) {
    std::lock_guard lock(mu_);
    std::set<std::string> out;
    for (const auto& i : apps_[app].instances) out.insert(i.id);
    return out;
  }
  std::string listen_host(const std::string& app) {
    std::lock_guard lock(mu_);
    return apps_[app].listen_host;
  }
  size_t instance_count(const std::string& app) {
    std::lock_guard lock(mu_);
    return apps_[app].instances.size();
  }
  std::vector<std::map<std::string, int>> weight_history() {
    std::lock_guard lock(mu_);
    return weight_history_;
  }
  std::map<std::string, std::string> env_of(const std::string& instance) {
    std::lock_guard lock(mu_);
    return env_seen_[instance];
  }

 private:
  Status cut_status() {
    if (in_flight_) {
      const int now = ++*in_flight_;
      int seen = max_in_flight_->load();
      while (now > seen && !max_in_flight_->compare_exchange_weak(seen, now)) {
      }
    }
    if (cut_ && delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
    if (in_flight_) --*in_flight_;
    if (cut_)
      return Status(Code::kDeadlineExceeded,
                    "agent " + name_ + " (" + address() + "): connecting timed out");
    return Status::Ok();
  }

  struct App {
    int64_t generation = 0;
    std::map<std::string, int> weights;
    std::vector<InstanceStatus> instances;
    std::string listen_host;
  };
  std::mutex mu_;
  std::map<std::string, App> apps_;
  std::map<std::string, ReleaseBehaviour> behaviour_;
  std::map<std::string, std::map<std::string, ReleaseStats>> stats_;
  std::map<std::string, std::map<std::string, std::string>> env_seen_;
  std::vector<std::map<std::string, int>> weight_history_;
  std::mt19937 rng_{42};
  int requests_per_poll_ = 40;
  int puts_ = 0;
  std::string name_;
  std::atomic<bool> cut_{false};
  std::atomic<int> delay_ms_{0};
  std::atomic<int>* in_flight_ = nullptr;
  std::atomic<int>* max_in_flight_ = nullptr;
};

}  // namespace ferry::testing
