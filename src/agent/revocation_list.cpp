#include "agent/revocation_list.h"

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry {

namespace fs = std::filesystem;

namespace {

std::set<std::string> serials_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && line[0] != '#') out.insert(line);
  }
  return out;
}

}  // namespace

bool valid_serial(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<std::string> RevocationList::read_file() {
  std::ifstream f(path_, std::ios::binary);
  if (!f) {
    std::error_code ec;
    if (!fs::exists(path_, ec) && !ec) return std::string();
    return unavailable("cannot read " + path_);
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Result<std::set<std::string>> RevocationList::serials() {
  std::lock_guard lk(mu_);
  auto text = read_file();
  if (!text.ok()) return text.status();
  return serials_of(*text);
}

Result<size_t> RevocationList::add(const std::vector<std::string>& serials) {
  if (serials.size() > kMaxSerials)
    return resource_exhausted("revoked: " + std::to_string(serials.size()) +
                              " serials in one push; at most " + std::to_string(kMaxSerials));
  for (size_t i = 0; i < serials.size(); ++i)
    if (!valid_serial(serials[i]))
      return invalid_argument("revoked: serials[" + std::to_string(i) + "] '" +
                              serials[i].substr(0, 70) +
                              "' is not 1-64 lower-case hexadecimal digits");
  std::lock_guard lk(mu_);
  auto text = read_file();
  if (!text.ok()) return text.status();
  const std::set<std::string> have = serials_of(*text);
  std::string add;
  std::set<std::string> added;
  for (const auto& s : serials)
    if (!have.count(s) && added.insert(s).second) add += s + "\n";
  if (added.empty()) return size_t{0};
  if (have.size() + added.size() > kMaxSerials)
    return resource_exhausted("revoked: the list would hold more than " +
                              std::to_string(kMaxSerials) + " serials");
  std::string next = *text;
  if (!next.empty() && next.back() != '\n') next += "\n";
  next += add;
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return unavailable("cannot write " + tmp);
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << next;
    if (!f.flush()) return unavailable("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path_, ec);
  if (ec) return unavailable("cannot replace " + path_ + ": " + ec.message());
  return added.size();
}

}  // namespace ferry
