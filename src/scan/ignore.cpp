#include "scan/ignore.h"

#include <fstream>
#include <sstream>

#include "common/crypto.h"
#include "common/json.h"

namespace ferry::scan {
namespace {

constexpr size_t kMaxIgnoreFileBytes = 16 << 20;
constexpr size_t kMaxBaselineBytes = 256 << 20;

Result<std::string> read_limited(const std::string& path, size_t limit, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(std::string(what) + " " + path + " cannot be read");
  std::string text(limit + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > limit) {
    return resource_exhausted(std::string(what) + " " + path + " is larger than " +
                              std::to_string(limit >> 20) + " MiB");
  }
  return text;
}

}  // namespace

std::string fingerprint_without_commit(const Finding& f) {
  const std::string basis = f.secret.empty() ? f.file : f.secret;
  return f.file + ":" + f.rule_id + ":" + sha256_hex(basis).substr(0, 16);
}

std::string fingerprint(const Finding& f) {
  std::string fp = fingerprint_without_commit(f);
  return f.commit.empty() ? fp : f.commit + ":" + fp;
}

Status FingerprintSet::load_ignore_file(const std::string& path) {
  auto text = read_limited(path, kMaxIgnoreFileBytes, "ignore file");
  if (!text) return text.status();
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    size_t b = line.find_first_not_of(" \t");
    if (b == std::string::npos || line[b] == '#') continue;
    set_.insert(line.substr(b));
  }
  return Status::Ok();
}

Status FingerprintSet::load_baseline(const std::string& path) {
  auto text = read_limited(path, kMaxBaselineBytes, "baseline");
  if (!text) return text.status();
  auto j = parse_json(*text, "baseline " + path);
  if (!j) return j.status();
  // Our own report is {"findings": [...]}; a gitleaks report is a bare array.
  const Json* findings = nullptr;
  if (j->is_object() && j->contains("findings") && (*j)["findings"].is_array()) {
    findings = &(*j)["findings"];
  } else if (j->is_array()) {
    findings = &*j;
  }
  if (!findings) {
    return invalid_argument("baseline " + path +
                            ": expected a JSON report of `ferry scan --format json` "
                            "(an object with a \"findings\" array)");
  }
  for (const Json& f : *findings) {
    if (!f.is_object()) continue;
    for (const char* key : {"fingerprint", "Fingerprint"}) {
      auto it = f.find(key);
      if (it != f.end() && it->is_string()) set_.insert(it->get<std::string>());
    }
  }
  return Status::Ok();
}

bool FingerprintSet::contains(const Finding& f) const {
  if (set_.empty()) return false;
  return set_.count(fingerprint(f)) > 0 || set_.count(fingerprint_without_commit(f)) > 0;
}

}  // namespace ferry::scan
