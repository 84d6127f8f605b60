#include "server/agent_trust.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "common/json.h"
#include "server/enrollment.h"

namespace ferry {

AgentTrust::AgentTrust(std::string tls_dir, const Clock& clock)
    : dir_(std::move(tls_dir)), clock_(clock) {}

AgentTrust::~AgentTrust() = default;

Status AgentTrust::refresh() {
  // A new server certificate (`ferry agents revoke ferry-server`): contexts made with the
  // old one go, the next call makes them with the new one.
  struct stat pem {};
  Signature server_now;
  if (::stat((dir_ + "/server.pem").c_str(), &pem) == 0)
    server_now =
        Signature{pem.st_ino, pem.st_size,
                  static_cast<int64_t>(pem.st_mtim.tv_sec) * 1'000'000'000 + pem.st_mtim.tv_nsec};
  if (!(server_now == server_seen_)) {
    contexts_.clear();
    server_seen_ = server_now;
  }
  const std::string file = dir_ + "/enroll.json";
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    if (errno != ENOENT) return failed_precondition("cannot read " + file);
    enrolled_.clear();
    contexts_.clear();
    seen_ = {};
    return Status::Ok();
  }
  const Signature now{st.st_ino, st.st_size,
                      static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (now == seen_) return Status::Ok();
  if (!enrollment_) {
    auto e = Enrollment::open(dir_, clock_);
    if (!e.ok()) return e.status().with_context("agents' TLS (" + dir_ + ")");
    enrollment_ = std::move(*e);
  }
  std::ifstream f(file);
  std::stringstream ss;
  ss << f.rdbuf();
  auto j = parse_json(ss.str(), file);
  if (!j.ok() || !j->is_object()) return failed_precondition(file + " is not a JSON object");
  std::set<std::string> names;
  for (auto it = j->begin(); it != j->end(); ++it)
    if (it->is_object() && it->contains("serials") && (*it)["serials"].is_array() &&
        !(*it)["serials"].empty())
      names.insert(it.key());
  // A new certificate for a name (re-enrolled) needs nothing new here: the context pins the
  // name and the CA, not a serial. Contexts of names no longer enrolled go.
  for (auto it = contexts_.begin(); it != contexts_.end();)
    it = names.count(it->first) ? std::next(it) : contexts_.erase(it);
  enrolled_ = std::move(names);
  seen_ = now;
  return Status::Ok();
}

bool AgentTrust::enrolled(const std::string& name) {
  std::lock_guard lk(mu_);
  return refresh().ok() && enrolled_.count(name) > 0;
}

Result<std::shared_ptr<TlsContext>> AgentTrust::context_for(const AgentSpec& a) {
  const std::string who = "agent " + a.name + " (" + a.address + ")";
  std::lock_guard lk(mu_);
  if (Status s = refresh(); !s.ok()) return s.with_context(who);
  if (enrolled_.count(a.name)) {
    auto it = contexts_.find(a.name);
    if (it != contexts_.end()) return it->second;
    auto ctx =
        TlsContext::create(TlsContext::Role::kClient, enrollment_->server_identity(), a.name);
    if (!ctx.ok()) return ctx.status().with_context(who + " TLS");
    contexts_[a.name] = *ctx;
    return *ctx;
  }
  const std::string how = "enroll it: ferry agents enroll " + a.name +
                          ", then on its host ferry agent init and ferry agent join, and start "
                          "it with --tls-dir (docs/operations.md)";
  if (a.tls)
    return failed_precondition(who + " is set to mutual TLS (agents." + a.name +
                               ".tls) but is not enrolled, so the server sends it nothing; " + how);
  if (loopback_address(a.address) || a.insecure) return std::shared_ptr<TlsContext>();
  return failed_precondition(who +
                             " is not on loopback and not enrolled for mutual TLS: the server "
                             "sends it no desired state and no token in clear; " +
                             how + ", or write agents." + a.name +
                             ".insecure: true for plain HTTP on a network you trust");
}

}  // namespace ferry
