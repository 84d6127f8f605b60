// The agent's list of revoked certificate serials (TLS_DIR/revoked, read live by its TLS
// context: common/tls.h), added to by the server (`ferry agents revoke NAME` pushes the
// server's list to every agent over the authenticated agent API: PUT /v1/revoked).
//
// A push only adds: a serial already in the file stays there whatever a later push says,
// so nobody holding the agent's API can un-revoke a certificate through it. Lines an
// operator wrote (comments included) are kept. The file is replaced whole (a temporary
// file 0600, renamed), so a reader never sees half of it.
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"

namespace ferry {

class RevocationList {
 public:
  static constexpr size_t kMaxSerials = 10'000;  // per push and in the file
  explicit RevocationList(std::string path) : path_(std::move(path)) {}

  // Adds `serials` (each 1-64 lower-case hex digits, as cert_serial() gives them); returns
  // how many were new. kInvalidArgument names the first bad entry and changes nothing;
  // kResourceExhausted when the file would hold more than kMaxSerials.
  Result<size_t> add(const std::vector<std::string>& serials);
  // The serials in the file now (comments and blank lines left out).
  Result<std::set<std::string>> serials();
  const std::string& path() const { return path_; }

 private:
  Result<std::string> read_file();  // "" when missing
  std::string path_;
  std::mutex mu_;
};

// Whether `s` looks like a serial: 1-64 lower-case hex digits.
bool valid_serial(const std::string& s);

}  // namespace ferry
