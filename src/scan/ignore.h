// Fingerprints of findings a team has accepted: the ignore file (.ferryignore or
// .gitleaksignore) and the baseline (an earlier JSON report).
//
// A fingerprint is "[commit:]file:rule:h" where h is the first 16 hex digits of
// sha256(secret): it names the secret itself, so moving a line keeps the finding ignored
// while a new secret on the same line is still reported. An entry without a commit also
// matches the same secret in any commit of a git scan.
#pragma once

#include <string>
#include <unordered_set>

#include "common/status.h"
#include "scan/finding.h"

namespace ferry::scan {

std::string fingerprint(const Finding& f);
// The fingerprint without the commit part (same as fingerprint() outside git scans).
std::string fingerprint_without_commit(const Finding& f);

class FingerprintSet {
 public:
  // One fingerprint per line; blank lines and lines starting with '#' are skipped.
  Status load_ignore_file(const std::string& path);
  // The "fingerprint" of every finding in a JSON report written by `ferry scan --format json`.
  Status load_baseline(const std::string& path);
  void add(std::string fp) { set_.insert(std::move(fp)); }
  bool contains(const Finding& f) const;
  size_t size() const { return set_.size(); }

 private:
  std::unordered_set<std::string> set_;
};

}  // namespace ferry::scan
