#include "core/slo_paths.h"

#include <set>

namespace ferry {

namespace {

// An entry as an error may show it: at most 64 characters, control and non-ASCII bytes as
// \xNN, so a hostile value cannot forge log lines or flood an error.
std::string shown_path(std::string_view p) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < p.size() && i < 64; ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (p.size() > 64) out += "...";
  return out + "\"";
}

// A "." or ".." segment anywhere in the path.
bool has_dot_segment(std::string_view p) {
  size_t i = 0;
  while (i < p.size()) {
    size_t start = i + 1;  // p[i] == '/'
    size_t end = p.find('/', start);
    if (end == std::string_view::npos) end = p.size();
    std::string_view seg = p.substr(start, end - start);
    if (seg == "." || seg == "..") return true;
    i = end;
  }
  return false;
}

std::string why_bad(std::string_view p) {
  if (p.size() > kMaxSloExcludePathLength)
    return "is " + std::to_string(p.size()) + " characters long; at most " +
           std::to_string(kMaxSloExcludePathLength);
  if (p.empty() || p.front() != '/') return "does not start with '/' (a path such as /healthz)";
  for (size_t i = 0; i < p.size(); ++i) {
    auto c = static_cast<unsigned char>(p[i]);
    if (c < 0x21 || c == 0x7f) return "has a control character or a space";
    if (c == '%' || c == '?' || c == '#')
      return std::string("has '") + static_cast<char>(c) +
             "': write the path as the client sends it, without escapes, query or fragment";
    if (c == '*' && i + 1 != p.size())
      return "has a '*' before its end (only a trailing '*', for a prefix, is allowed)";
  }
  std::string_view stem = p.back() == '*' ? p.substr(0, p.size() - 1) : p;
  if (has_dot_segment(stem)) return "has a \".\" or \"..\" segment";
  if (stem == "/") return "leaves out every request (the availability SLO would count nothing)";
  return {};
}

}  // namespace

Status check_slo_exclude_paths(const std::vector<std::string>& paths) {
  if (paths.size() > kMaxSloExcludePaths)
    return invalid_argument("exclude_paths has " + std::to_string(paths.size()) +
                            " entries; at most " + std::to_string(kMaxSloExcludePaths));
  std::set<std::string_view> seen;
  for (size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    std::string why = why_bad(p);
    if (why.empty() && !seen.insert(p).second) why = "is listed twice";
    if (!why.empty())
      return invalid_argument("exclude_paths[" + std::to_string(i) + "] " + shown_path(p) + " " +
                              why);
  }
  return Status::Ok();
}

bool slo_path_excluded(const std::vector<std::string>& paths, std::string_view target) {
  if (paths.empty() || target.empty() || target.front() != '/') return false;
  std::string_view path = target.substr(0, target.find('?'));
  if (path.find('%') != std::string_view::npos || has_dot_segment(path)) return false;
  for (const std::string& e : paths) {
    if (!e.empty() && e.back() == '*') {
      if (path.starts_with(std::string_view(e).substr(0, e.size() - 1))) return true;
    } else if (path == e) {
      return true;
    }
  }
  return false;
}

}  // namespace ferry
