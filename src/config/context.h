// Internal: the state shared by the parsers of one ferry.yaml (errors collected so far,
// the node budget) and Field, a YAML node at a field path with typed getters that
// record an error, naming file:line:column, path and value, when a value is wrong.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/loader.h"

namespace ferry::config {

class Context {
 public:
  explicit Context(std::string file) : file_(std::move(file)) {}

  // Records an error at `mark` (0-based, as yaml-cpp gives it). Identical errors at the
  // same place are recorded once; past kMaxErrors only a count is kept.
  void error(const YAML::Mark& mark, std::string field, std::string message);
  // Counts one visited node; false (and one error) once the budget is spent, which bounds
  // the work on inputs that use aliases to look huge.
  bool spend(const YAML::Mark& mark);

  const std::string& file() const { return file_; }
  bool has_errors() const { return !errors_.empty(); }
  std::vector<ConfigError> take_errors();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  std::set<std::string> seen_;
  size_t dropped_ = 0;
  size_t budget_ = 500'000;
  bool budget_reported_ = false;
};

// How a scalar is shown in an error: quoted, shortened; maps and lists by their kind.
std::string describe(const YAML::Node& node);

class Field {
 public:
  Field(Context& ctx, YAML::Node node, std::string path, YAML::Mark mark)
      : ctx_(&ctx), node_(std::move(node)), path_(std::move(path)), mark_(mark) {}

  const std::string& path() const { return path_; }
  const YAML::Mark& mark() const { return mark_; }
  const YAML::Node& node() const { return node_; }
  Context& ctx() const { return *ctx_; }
  // Present: defined and not null (`key:` with no value counts as absent).
  bool present() const { return node_.IsDefined() && !node_.IsNull(); }
  bool is_map() const { return node_.IsMap(); }
  bool is_list() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }

  void error(std::string message) const;
  // "expected <what>, got <value>"
  void type_error(std::string_view what) const;

  // A map whose keys are all in `allowed`: errors for unknown keys (with a suggestion)
  // and duplicate keys. False when the node is not a map. With `extensions`, keys starting
  // with "x-" are ignored (a place for YAML anchors, as in docker-compose files).
  bool expect_map(std::initializer_list<std::string_view> allowed, bool extensions = false) const;
  // The child at `key` (absent when missing); its mark falls back to this node's.
  Field child(std::string_view key) const;
  // As child, with an error "is required" when absent.
  Field required(std::string_view key) const;
  // The elements of a list (path[i]); an error when not a list or longer than max_items.
  std::vector<Field> items(size_t max_items) const;
  // The entries of a map in file order (path.key); an error when not a map, longer than
  // max_items or a key is repeated. `name_rule` checks names (apps, environments, …).
  std::vector<std::pair<std::string, Field>> entries(size_t max_items, bool name_rule) const;

  // Typed getters: when absent they leave `out` alone and return false without an error;
  // when present but wrong they record an error and return false.
  bool get(std::string& out, size_t max_len = 4096) const;
  bool get_int(int& out, int min, int max) const;
  bool get_int64(int64_t& out, int64_t min, int64_t max) const;
  bool get_number(double& out, double min, double max) const;
  bool get_bool(bool& out) const;
  bool get_duration_ms(int& out, int min_ms, int max_ms) const;
  bool get_enum(std::string& out, std::initializer_list<std::string_view> allowed) const;
  // A list of strings, or a single string taken as a one-element list.
  bool get_string_list(std::vector<std::string>& out, size_t max_items) const;
  // A command: a list of arguments, or a string split like a shell would (quotes, no
  // expansion).
  bool get_command(std::vector<std::string>& out) const;
  // Environment variables: NAME → scalar. Values are never shown in errors.
  bool get_env(std::map<std::string, std::string>& out) const;

 private:
  Context* ctx_;
  YAML::Node node_;
  std::string path_;
  YAML::Mark mark_;
};

}  // namespace ferry::config
