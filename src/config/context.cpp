#include "config/context.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "config/values.h"

namespace ferry::config {
namespace {

// Names of apps, environments, agents, hooks and notifications: they appear in field paths,
// URLs and file names, so they are kept to a safe alphabet.
bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 63) return false;
  if (!std::isalnum(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '_'))
      return false;
  return true;
}

bool valid_env_name(std::string_view n) {
  if (n.empty() || n.size() > 128 || std::isdigit(static_cast<unsigned char>(n[0]))) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

const std::string& scalar(const YAML::Node& n) {
  return n.Scalar();
}

}  // namespace

namespace {

// Errors end up on terminals and in logs: no control characters, bounded length (keys and
// values in them come from the file).
std::string clean(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max) + "…";
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return s;
}

}  // namespace

void Context::error(const YAML::Mark& mark, std::string field, std::string message) {
  field = clean(std::move(field), 200);
  message = clean(std::move(message), 1000);
  ConfigError e{file_, mark.is_null() ? 0 : mark.line + 1, mark.is_null() ? 0 : mark.column + 1,
                std::move(field), std::move(message)};
  std::string key = e.to_string();
  if (!seen_.insert(key).second) return;
  if (errors_.size() >= kMaxErrors) {
    ++dropped_;
    return;
  }
  errors_.push_back(std::move(e));
}

bool Context::spend(const YAML::Mark& mark) {
  if (budget_ > 0) {
    --budget_;
    return true;
  }
  if (!budget_reported_) {
    budget_reported_ = true;
    error(mark, "", "the document is too large once aliases are expanded; stopped checking");
  }
  return false;
}

std::vector<ConfigError> Context::take_errors() {
  std::vector<ConfigError> out = std::move(errors_);
  std::stable_sort(out.begin(), out.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (dropped_ > 0)
    out.push_back(
        {file_, 0, 0, "",
         std::to_string(dropped_) + " more error(s) not shown; fix the ones above first"});
  errors_.clear();
  dropped_ = 0;
  return out;
}

std::string describe(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  const std::string& s = scalar(node);
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 80; ++i)
    out += std::isprint(static_cast<unsigned char>(s[i])) ? s[i] : '?';
  if (s.size() > 80) out += "…";
  return out + "\"";
}

void Field::error(std::string message) const {
  ctx_->error(mark_, path_, std::move(message));
}

void Field::type_error(std::string_view what) const {
  error("expected " + std::string(what) + ", got " + describe(node_));
}

bool Field::expect_map(std::initializer_list<std::string_view> allowed, bool extensions) const {
  if (!node_.IsMap()) {
    type_error("a map");
    return false;
  }
  std::vector<std::string_view> keys(allowed);
  std::set<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!ctx_->spend(it->first.Mark())) return false;
    if (!it->first.IsScalar()) {
      ctx_->error(it->first.Mark(), path_,
                  "a key must be a plain name, got " + describe(it->first));
      continue;
    }
    const std::string& k = scalar(it->first);
    std::string kpath = path_.empty() ? k : path_ + "." + k;
    bool known = false;
    for (auto a : keys) known = known || a == k;
    if (extensions && k.rfind("x-", 0) == 0) continue;
    if (!known) {
      std::string hint = suggest(k, keys);
      ctx_->error(it->first.Mark(), kpath,
                  "unknown key" + hint + "; allowed here: " + join_quoted(keys));
    } else if (!seen.insert(k).second) {
      ctx_->error(it->first.Mark(), kpath, "duplicate key; each key may appear once");
    }
  }
  return true;
}

Field Field::child(std::string_view key) const {
  std::string cpath = path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  if (!node_.IsMap()) return Field(*ctx_, YAML::Node(YAML::NodeType::Undefined), cpath, mark_);
  const YAML::Node& self = node_;
  YAML::Node found = self[std::string(key)];
  // A missing key gives a "zombie" node on which most calls (even assignment) throw; use a
  // plain undefined node instead.
  YAML::Node v = found.IsDefined() ? found : YAML::Node(YAML::NodeType::Undefined);
  YAML::Mark m = mark_;
  if (v.IsDefined()) {
    YAML::Mark vm = v.Mark();
    if (!vm.is_null()) m = vm;
  }
  return Field(*ctx_, v, std::move(cpath), m);
}

Field Field::required(std::string_view key) const {
  Field f = child(key);
  if (!f.present()) error("\"" + std::string(key) + "\" is required");
  return f;
}

std::vector<Field> Field::items(size_t max_items) const {
  std::vector<Field> out;
  if (!present()) return out;
  if (!node_.IsSequence()) {
    type_error("a list");
    return out;
  }
  if (node_.size() > max_items) {
    error("has " + std::to_string(node_.size()) + " items; at most " + std::to_string(max_items) +
          " are allowed");
    return out;
  }
  size_t i = 0;
  for (const auto& item : node_) {
    if (!ctx_->spend(item.Mark())) break;
    YAML::Mark m = item.Mark().is_null() ? mark_ : item.Mark();
    out.emplace_back(*ctx_, item, path_ + "[" + std::to_string(i++) + "]", m);
  }
  return out;
}

std::vector<std::pair<std::string, Field>> Field::entries(size_t max_items, bool name_rule) const {
  std::vector<std::pair<std::string, Field>> out;
  if (!present()) return out;
  if (!node_.IsMap()) {
    type_error("a map of names");
    return out;
  }
  if (node_.size() > max_items) {
    error("has " + std::to_string(node_.size()) + " entries; at most " + std::to_string(max_items) +
          " are allowed");
    return out;
  }
  std::set<std::string> seen;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (!ctx_->spend(it->first.Mark())) break;
    if (!it->first.IsScalar()) {
      ctx_->error(it->first.Mark(), path_,
                  "a key must be a plain name, got " + describe(it->first));
      continue;
    }
    const std::string& k = scalar(it->first);
    std::string kpath = path_ + "." + k;
    if (name_rule && !valid_name(k)) {
      ctx_->error(it->first.Mark(), path_,
                  describe(it->first) +
                      " is not a valid name: use 1-63 lowercase letters, digits, '-' or '_', "
                      "starting with a letter or digit");
      continue;
    }
    if (!seen.insert(k).second) {
      ctx_->error(it->first.Mark(), kpath, "duplicate name; each name may appear once");
      continue;
    }
    YAML::Mark m = it->second.Mark().is_null() ? it->first.Mark() : it->second.Mark();
    out.emplace_back(k, Field(*ctx_, it->second, kpath, m));
  }
  return out;
}

bool Field::get(std::string& out, size_t max_len) const {
  if (!present()) return false;
  if (!node_.IsScalar()) {
    type_error("a string");
    return false;
  }
  if (scalar(node_).size() > max_len) {
    error("is " + std::to_string(scalar(node_).size()) + " characters long; at most " +
          std::to_string(max_len) + " are allowed");
    return false;
  }
  out = scalar(node_);
  return true;
}

bool Field::get_int64(int64_t& out, int64_t min, int64_t max) const {
  if (!present()) return false;
  const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max);
  if (!node_.IsScalar()) {
    type_error("an integer " + range);
    return false;
  }
  const std::string& s = scalar(node_);
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || p != s.data() + s.size() || ec == std::errc::invalid_argument) {
    type_error("an integer " + range);
    return false;
  }
  if (ec == std::errc::result_out_of_range || v < min || v > max) {
    error(describe(node_) + " is out of range: allowed " + range);
    return false;
  }
  out = v;
  return true;
}

bool Field::get_int(int& out, int min, int max) const {
  int64_t v = 0;
  if (!get_int64(v, min, max)) return false;
  out = static_cast<int>(v);
  return true;
}

bool Field::get_number(double& out, double min, double max) const {
  if (!present()) return false;
  auto fmt = [](double d) {
    std::string s = std::to_string(d);
    while (s.size() > 1 && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return s;
  };
  const std::string range = "from " + fmt(min) + " to " + fmt(max);
  if (!node_.IsScalar()) {
    type_error("a number " + range);
    return false;
  }
  const std::string& s = scalar(node_);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || p != s.data() + s.size() || ec != std::errc() || !std::isfinite(v)) {
    type_error("a number " + range);
    return false;
  }
  if (v < min || v > max) {
    error(describe(node_) + " is out of range: allowed " + range);
    return false;
  }
  out = v;
  return true;
}

bool Field::get_bool(bool& out) const {
  if (!present()) return false;
  if (node_.IsScalar()) {
    const std::string& s = scalar(node_);
    if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
    if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  }
  type_error("true or false");
  return false;
}

bool Field::get_duration_ms(int& out, int min_ms, int max_ms) const {
  if (!present()) return false;
  if (!node_.IsScalar()) {
    type_error("a duration such as 30s");
    return false;
  }
  auto r = parse_duration(scalar(node_));
  if (auto* e = std::get_if<std::string>(&r)) {
    error(*e);
    return false;
  }
  int64_t v = std::get<int64_t>(r);
  auto show = [](int64_t ms) {
    if (ms % 3'600'000 == 0 && ms > 0) return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0 && ms > 0) return std::to_string(ms / 60'000) + "m";
    if (ms % 1000 == 0 && ms > 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
  };
  if (v < min_ms || v > max_ms) {
    error(describe(node_) + " is out of range: allowed " + show(min_ms) + " to " + show(max_ms));
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

bool Field::get_enum(std::string& out, std::initializer_list<std::string_view> allowed) const {
  if (!present()) return false;
  std::vector<std::string_view> opts(allowed);
  if (node_.IsScalar()) {
    for (auto a : opts)
      if (a == scalar(node_)) return out = std::string(a), true;
    error(describe(node_) + " is not allowed" + suggest(scalar(node_), opts) +
          "; allowed: " + join_quoted(opts));
    return false;
  }
  type_error("one of " + join_quoted(opts));
  return false;
}

bool Field::get_string_list(std::vector<std::string>& out, size_t max_items) const {
  if (!present()) return false;
  if (node_.IsScalar()) {
    std::string s;
    if (!get(s)) return false;
    out = {s};
    return true;
  }
  if (!node_.IsSequence()) {
    type_error("a list of strings");
    return false;
  }
  std::vector<std::string> v;
  bool ok = true;
  for (const Field& f : items(max_items)) {
    std::string s;
    if (f.get(s))
      v.push_back(std::move(s));
    else
      ok = false;
  }
  if (node_.size() > max_items) return false;
  if (ok) out = std::move(v);
  return ok;
}

bool Field::get_command(std::vector<std::string>& out) const {
  if (!present()) return false;
  std::vector<std::string> args;
  if (node_.IsScalar()) {
    auto r = split_command(scalar(node_));
    if (auto* e = std::get_if<std::string>(&r)) {
      error(*e);
      return false;
    }
    args = std::get<std::vector<std::string>>(std::move(r));
  } else if (node_.IsSequence()) {
    if (!get_string_list(args, 256)) return false;
  } else {
    type_error("a command: a list of arguments or a string");
    return false;
  }
  if (args.empty() || args[0].empty()) {
    error(
        "the command is empty: give the program and its arguments, e.g. [\"./server\", "
        "\"--port\", \"${PORT}\"]");
    return false;
  }
  if (args.size() > 256) {
    error("has " + std::to_string(args.size()) + " arguments; at most 256 are allowed");
    return false;
  }
  out = std::move(args);
  return true;
}

bool Field::get_env(std::map<std::string, std::string>& out) const {
  if (!present()) return false;
  bool ok = true;
  for (auto& [name, f] : entries(256, false)) {
    if (!valid_env_name(name)) {
      f.error("\"" + name.substr(0, 80) +
              "\" is not a valid variable name: use letters, digits and '_', not starting with a "
              "digit");
      ok = false;
      continue;
    }
    if (!f.node().IsDefined() || f.node().IsNull()) {
      out[name] = "";
      continue;
    }
    if (!f.node().IsScalar()) {
      f.error("expected a string value, got " + describe(f.node()));  // value never shown
      ok = false;
      continue;
    }
    if (scalar(f.node()).size() > 32768) {
      f.error("the value is longer than 32768 characters");
      ok = false;
      continue;
    }
    out[name] = scalar(f.node());
  }
  return ok;
}

}  // namespace ferry::config
