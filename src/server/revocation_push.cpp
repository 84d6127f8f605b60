#include "server/revocation_push.h"

#include <fstream>
#include <set>
#include <sstream>

#include "agent/revocation_list.h"
#include "common/crypto.h"
#include "common/worker_pool.h"

namespace ferry {

namespace {

// The serials in the server's list (valid ones only; a missing file is an empty list).
std::vector<std::string> read_revoked(const std::string& path) {
  std::ifstream f(path);
  std::set<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (valid_serial(line)) out.insert(line);
  }
  return {out.begin(), out.end()};
}

}  // namespace

RevocationPusher::RevocationPusher(Options options) : opts_(std::move(options)) {}

RevocationPusher::~RevocationPusher() {
  stop();
}

void RevocationPusher::start() {
  thread_ = std::thread([this] {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      lk.unlock();
      push_once();
      lk.lock();
      cv_.wait_for(lk, std::chrono::milliseconds(opts_.interval_ms),
                   [this] { return stopping_ || poked_; });
      poked_ = false;
    }
  });
}

void RevocationPusher::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RevocationPusher::poke() {
  {
    std::lock_guard lk(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

std::vector<std::string> RevocationPusher::push_once() {
  std::lock_guard pass(pass_mu_);
  const std::vector<std::string> serials = read_revoked(opts_.revoked_path);
  std::string joined;
  for (const auto& s : serials) joined += s + "\n";
  const std::string digest = sha256_hex(joined);
  std::vector<std::pair<std::string, HttpAgentClient*>> due;
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lk(mu_);
    for (const auto& [name, client] : opts_.agents) {
      if (serials.empty() || !opts_.enrolled(name)) {
        errors_.erase(name);
        continue;
      }
      auto it = taken_.find(name);
      // Not taken, an older list, or taken long enough ago to check the agent still has it
      // (its file deleted by hand): pushed.
      if (it == taken_.end() || it->second.digest != digest ||
          now - it->second.at >= std::chrono::milliseconds(opts_.repush_ms))
        due.emplace_back(name, client);
    }
  }
  std::vector<Result<size_t>> results(due.size(), Result<size_t>(internal_error("not run")));
  WorkerPool::shared().run_all(
      due.size(), [&](size_t i) { results[i] = due[i].second->push_revoked(serials); });
  for (size_t i = 0; i < due.size(); ++i) {
    const std::string& name = due[i].first;
    if (results[i].ok()) {
      // Audited outside the lock (the audit writes to the store).
      if (*results[i] > 0 && opts_.delivered) opts_.delivered(name, *results[i], serials.size());
      std::lock_guard lk(mu_);
      taken_[name] = Taken{digest, std::chrono::steady_clock::now()};
      errors_.erase(name);
      continue;
    }
    std::lock_guard lk(mu_);
    const std::string error = results[i].status().message();
    if (opts_.log && errors_[name] != error)
      opts_.log->warn("revocation list not delivered to an agent; retried",
                      {{"agent", name}, {"address", due[i].second->address()}, {"error", error}});
    errors_[name] = error;
  }
  return behind();
}

std::vector<std::string> RevocationPusher::behind() {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [name, error] : errors_) out.push_back(name + ": " + error);
  return out;
}

}  // namespace ferry
