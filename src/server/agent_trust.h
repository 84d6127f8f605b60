// How the server calls each remote agent (issue 16, item 4; docs/operations.md, "Mutual
// TLS between the server and remote agents"):
//   - an agent enrolled in DATA_DIR/tls (a certificate was issued to its name) is called with
//     mutual TLS, its certificate pinned to its name; revoked serials are refused;
//   - else plain HTTP, but only to a loopback address or an agent whose entry says
//     `insecure: true`;
//   - else (a remote agent with `tls: true` not enrolled yet, or any remote agent without
//     `insecure`) the call is refused before a byte is sent: no desired state, no token and
//     no secret leaves the server in clear.
// Enrollment is read live: the enrollment file is stat'ed on every call and re-read when it
// changed, so an agent enrolled (or re-enrolled) while the server runs is called with TLS
// from its next call on, without a restart; revocation is read per handshake (common/tls.h).
//
// Thread safety: context_for may be called from any thread (one mutex, held for a stat and,
// on a change, a small local read).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "common/tls.h"
#include "core/spec.h"

namespace ferry {

class Enrollment;

class AgentTrust {
 public:
  // `tls_dir`: DATA_DIR/tls. Nothing is created there: the CA is made by the first
  // `ferry agents enroll`.
  AgentTrust(std::string tls_dir, const Clock& clock);
  ~AgentTrust();

  // The context to call `agent` with: a TLS context, nullptr (plain HTTP allowed), or
  // kFailedPrecondition naming the agent, its address and how to enroll it (nothing may be
  // sent), also when the enrollment files exist but cannot be read.
  Result<std::shared_ptr<TlsContext>> context_for(const AgentSpec& agent);
  // Whether `name` is enrolled now (false also when the enrollment cannot be read).
  bool enrolled(const std::string& name);

 private:
  struct Signature {
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = -1;
    bool operator==(const Signature&) const = default;
  };
  Status refresh();  // under mu_

  std::string dir_;
  const Clock& clock_;
  std::mutex mu_;
  Signature seen_;
  Signature server_seen_;  // of server.pem (a new server certificate)
  std::unique_ptr<Enrollment> enrollment_;
  std::set<std::string> enrolled_;
  std::map<std::string, std::shared_ptr<TlsContext>> contexts_;
};

}  // namespace ferry
