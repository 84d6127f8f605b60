#include "scan/rule_parser.h"

#include <re2/re2.h>
#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace ferry::scan {
namespace {

constexpr size_t kMaxRegexBytes = 4096;
constexpr size_t kMaxListItems = 10000;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Where a problem is: "rules.toml:12: rule 'aws' (rules[3])".
class Where {
 public:
  Where(std::string_view file, std::string what) : file_(file), what_(std::move(what)) {}
  Status error(const toml::node* node, std::string_view field, std::string_view msg) const {
    std::string s(file_);
    if (node && node->source().begin.line > 0) s += ":" + std::to_string(node->source().begin.line);
    s += ": " + what_ + ": field '" + std::string(field) + "': " + std::string(msg);
    return invalid_argument(std::move(s));
  }
  std::string warning(const toml::node* node, std::string_view field) const {
    std::string s(file_);
    if (node && node->source().begin.line > 0) s += ":" + std::to_string(node->source().begin.line);
    return s + ": " + what_ + ": field '" + std::string(field) +
           "' is not supported by ferry and is ignored";
  }

 private:
  std::string_view file_;
  std::string what_;
};

Result<std::shared_ptr<const re2::RE2>> compile(const Where& w, const toml::node* node,
                                                std::string_view field, std::string_view pattern) {
  if (pattern.size() > kMaxRegexBytes) {
    return w.error(node, field, "regex longer than " + std::to_string(kMaxRegexBytes) + " bytes");
  }
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  opts.set_max_mem(64 << 20);
  auto re =
      std::make_shared<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), opts);
  if (!re->ok()) return w.error(node, field, "invalid regex: " + re->error());
  return std::shared_ptr<const re2::RE2>(re);
}

Result<std::string> get_string(const Where& w, const toml::table& t, std::string_view field) {
  const toml::node* n = t.get(field);
  if (!n) return std::string();
  if (auto v = n->value<std::string>()) return *v;
  return w.error(n, field, "must be a string");
}

Result<std::vector<std::string>> get_strings(const Where& w, const toml::table& t,
                                             std::string_view field) {
  std::vector<std::string> out;
  const toml::node* n = t.get(field);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr) return w.error(n, field, "must be an array of strings");
  if (arr->size() > kMaxListItems) return w.error(n, field, "more than 10000 items");
  for (const toml::node& item : *arr) {
    auto v = item.value<std::string>();
    if (!v) return w.error(&item, field, "every item must be a string");
    out.push_back(*v);
  }
  return out;
}

bool known_field(std::initializer_list<std::string_view> known, std::string_view key) {
  return std::find(known.begin(), known.end(), key) != known.end();
}

// For tables whose unknown fields could change which rules run ([extend]): an error.
Status check_fields(const Where& w, const toml::table& t,
                    std::initializer_list<std::string_view> known) {
  for (const auto& [key, node] : t) {
    if (!known_field(known, key.str())) {
      return w.error(&node, key.str(), "unknown field (supported: see docs/scanning.md)");
    }
  }
  return Status::Ok();
}

// Elsewhere a field ferry does not carry out is ignored with a warning naming it: ignoring
// it can only make ferry report more, never hide a secret.
void note_unknown_fields(const Where& w, const toml::table& t,
                         std::initializer_list<std::string_view> known,
                         std::vector<std::string>& warnings) {
  for (const auto& [key, node] : t) {
    if (!known_field(known, key.str()) && warnings.size() < kMaxListItems)
      warnings.push_back(w.warning(&node, key.str()));
  }
}

Result<Allowlist> parse_allowlist(const Where& w, const toml::table& t, bool global,
                                  std::vector<std::string>& warnings) {
  note_unknown_fields(
      w, t,
      global ? std::initializer_list<std::string_view>{"description", "condition", "regexTarget",
                                                       "regexes", "paths", "stopwords", "commits",
                                                       "targetRules"}
             : std::initializer_list<std::string_view>{"description", "condition", "regexTarget",
                                                       "regexes", "paths", "stopwords", "commits"},
      warnings);
  Allowlist a;
  auto desc = get_string(w, t, "description");
  if (!desc) return desc.status();
  a.description = *desc;
  auto cond = get_string(w, t, "condition");
  if (!cond) return cond.status();
  std::string c = lower(*cond);
  if (c == "and") {
    a.condition_and = true;
  } else if (!c.empty() && c != "or") {
    return w.error(t.get("condition"), "condition", "'" + *cond + "' is not OR or AND");
  }
  auto target = get_string(w, t, "regexTarget");
  if (!target) return target.status();
  if (*target == "match") {
    a.regex_target = RegexTarget::kMatch;
  } else if (*target == "line") {
    a.regex_target = RegexTarget::kLine;
  } else if (!target->empty() && *target != "secret") {
    return w.error(t.get("regexTarget"), "regexTarget",
                   "'" + *target + "' is not secret, match or line");
  }
  for (const char* field : {"regexes", "paths"}) {
    auto list = get_strings(w, t, field);
    if (!list) return list.status();
    for (const std::string& p : *list) {
      auto re = compile(w, t.get(field), field, p);
      if (!re) return re.status();
      (std::string_view(field) == "regexes" ? a.regexes : a.paths).push_back(*re);
    }
  }
  auto stop = get_strings(w, t, "stopwords");
  if (!stop) return stop.status();
  for (const std::string& s : *stop) a.stopwords.push_back(lower(s));
  auto commits = get_strings(w, t, "commits");
  if (!commits) return commits.status();
  a.commits = *commits;
  return a;
}

Result<std::vector<Allowlist>> parse_rule_allowlists(const Where& w, const toml::table& t,
                                                     std::vector<std::string>& warnings) {
  std::vector<Allowlist> out;
  if (const toml::node* n = t.get("allowlist")) {
    const toml::table* at = n->as_table();
    if (!at) return w.error(n, "allowlist", "must be a table");
    auto a = parse_allowlist(w, *at, false, warnings);
    if (!a) return a.status();
    out.push_back(std::move(*a));
  }
  if (const toml::node* n = t.get("allowlists")) {
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      return w.error(n, "allowlists", "must be an array of tables ([[rules.allowlists]])");
    }
    for (const toml::node& item : *arr) {
      auto a = parse_allowlist(w, *item.as_table(), false, warnings);
      if (!a) return a.status();
      out.push_back(std::move(*a));
    }
  }
  return out;
}

Result<std::vector<RequiredRule>> parse_required(const Where& w, const toml::table& t,
                                                 std::vector<std::string>& warnings) {
  std::vector<RequiredRule> out;
  const toml::node* n = t.get("required");
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr || !arr->is_array_of_tables())
    return w.error(n, "required", "must be an array of tables ([[rules.required]])");
  if (arr->size() > 64) return w.error(n, "required", "more than 64 required rules");
  for (const toml::node& item : *arr) {
    const toml::table& rt = *item.as_table();
    note_unknown_fields(w, rt, {"id", "withinLines", "withinColumns"}, warnings);
    RequiredRule req;
    auto id = get_string(w, rt, "id");
    if (!id) return id.status();
    if (id->empty()) return w.error(&item, "required.id", "is required and must not be empty");
    req.id = *id;
    for (const char* field : {"withinLines", "withinColumns"}) {
      const toml::node* v = rt.get(field);
      if (!v) continue;
      auto num = v->value<int64_t>();
      if (!num || *num < 0 || *num > 1000000)
        return w.error(v, std::string("required.") + field, "must be an integer from 0 to 1000000");
      (std::string_view(field) == "withinLines" ? req.within_lines : req.within_columns) =
          static_cast<int>(*num);
    }
    out.push_back(std::move(req));
  }
  return out;
}

// `defer_regex`: the rule's own regex is left for the detector to compile on first use
// (Rule::re stays null); see parse_rules_deferred.
Result<Rule> parse_rule(std::string_view file, size_t index, const toml::table& t,
                        std::vector<std::string>& warnings, bool extends_base, bool defer_regex) {
  std::string label = "rules[" + std::to_string(index) + "]";
  if (auto id = t["id"].value<std::string>()) label = "rule '" + *id + "' (" + label + ")";
  Where w(file, label);
  note_unknown_fields(w, t,
                      {"id", "description", "regex", "secretGroup", "entropy", "keywords", "path",
                       "tags", "allowlist", "allowlists", "required", "skipReport"},
                      warnings);
  Rule r;
  auto id = get_string(w, t, "id");
  if (!id) return id.status();
  if (id->empty()) return w.error(&t, "id", "is required and must not be empty");
  r.id = *id;
  auto desc = get_string(w, t, "description");
  if (!desc) return desc.status();
  r.description = *desc;
  auto regex = get_string(w, t, "regex");
  if (!regex) return regex.status();
  r.regex = *regex;
  auto path = get_string(w, t, "path");
  if (!path) return path.status();
  r.path = *path;
  // A rule that only adjusts a rule of the extended config (same id) may leave both out.
  if (r.regex.empty() && r.path.empty() && !extends_base) {
    return w.error(&t, "regex", "a rule needs a regex, a path or both");
  }
  if (!r.regex.empty() && !defer_regex) {
    auto re = compile(w, t.get("regex"), "regex", r.regex);
    if (!re) return re.status();
    r.re = *re;
  }
  if (!r.path.empty()) {
    auto re = compile(w, t.get("path"), "path", r.path);
    if (!re) return re.status();
    r.path_re = *re;
  }
  if (const toml::node* n = t.get("secretGroup")) {
    auto v = n->value<int64_t>();
    if (!v || *v < 0) return w.error(n, "secretGroup", "must be a non-negative integer");
    if (r.re && *v > r.re->NumberOfCapturingGroups()) {
      return w.error(n, "secretGroup",
                     std::to_string(*v) + " but the regex has only " +
                         std::to_string(r.re->NumberOfCapturingGroups()) + " groups");
    }
    r.secret_group = static_cast<int>(*v);
  }
  if (const toml::node* n = t.get("entropy")) {
    auto v = n->value<double>();
    if (!v || *v < 0 || *v > 8) return w.error(n, "entropy", "must be a number from 0 to 8");
    r.entropy = *v;
  }
  auto kws = get_strings(w, t, "keywords");
  if (!kws) return kws.status();
  for (const std::string& k : *kws) {
    if (k.empty()) return w.error(t.get("keywords"), "keywords", "a keyword must not be empty");
    r.keywords.push_back(lower(k));
  }
  auto tags = get_strings(w, t, "tags");
  if (!tags) return tags.status();
  r.tags = std::move(*tags);
  auto al = parse_rule_allowlists(w, t, warnings);
  if (!al) return al.status();
  r.allowlists = std::move(*al);
  auto req = parse_required(w, t, warnings);
  if (!req) return req.status();
  r.required = std::move(*req);
  if (const toml::node* n = t.get("skipReport")) {
    if (!n->is_boolean()) return w.error(n, "skipReport", "must be true or false");
    r.skip_report = n->value_or(false);
  }
  return r;
}

// A file's rule with the id of a rule it extends changes the fields it sets and adds its
// keywords, tags, allowlists and required rules to the extended rule's.
void merge_rule(Rule& base, Rule&& over, const toml::table& t) {
  if (t.contains("description")) base.description = std::move(over.description);
  if (t.contains("regex")) {
    base.regex = std::move(over.regex);
    base.re = std::move(over.re);
  }
  if (t.contains("path")) {
    base.path = std::move(over.path);
    base.path_re = std::move(over.path_re);
  }
  if (t.contains("secretGroup")) base.secret_group = over.secret_group;
  if (t.contains("entropy")) base.entropy = over.entropy;
  if (t.contains("skipReport")) base.skip_report = over.skip_report;
  for (auto& k : over.keywords)
    if (std::find(base.keywords.begin(), base.keywords.end(), k) == base.keywords.end())
      base.keywords.push_back(std::move(k));
  for (auto& k : over.tags)
    if (std::find(base.tags.begin(), base.tags.end(), k) == base.tags.end())
      base.tags.push_back(std::move(k));
  for (auto& a : over.allowlists) base.allowlists.push_back(std::move(a));
  for (auto& q : over.required) base.required.push_back(std::move(q));
}

void merge_allowlist(Allowlist& into, const Allowlist& from) {
  into.regexes.insert(into.regexes.end(), from.regexes.begin(), from.regexes.end());
  into.paths.insert(into.paths.end(), from.paths.begin(), from.paths.end());
  into.stopwords.insert(into.stopwords.end(), from.stopwords.begin(), from.stopwords.end());
  into.commits.insert(into.commits.end(), from.commits.begin(), from.commits.end());
}

Status parse_global(std::string_view file, const toml::table& root, RuleSet& set) {
  if (const toml::node* n = root.get("allowlist")) {
    Where w(file, "[allowlist]");
    const toml::table* t = n->as_table();
    if (!t) return w.error(n, "allowlist", "must be a table");
    auto a = parse_allowlist(w, *t, true, set.warnings);
    if (!a) return a.status();
    // The global allowlist is always OR: any list matching allows the finding.
    merge_allowlist(set.global_allowlist, *a);
  }
  if (const toml::node* n = root.get("allowlists")) {
    Where w(file, "[[allowlists]]");
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables())
      return w.error(n, "allowlists", "must be [[allowlists]]");
    for (const toml::node& item : *arr) {
      const toml::table& t = *item.as_table();
      auto a = parse_allowlist(w, t, true, set.warnings);
      if (!a) return a.status();
      auto targets = get_strings(w, t, "targetRules");
      if (!targets) return targets.status();
      if (targets->empty()) {
        merge_allowlist(set.global_allowlist, *a);
        continue;
      }
      for (const std::string& id : *targets) {
        auto it = std::find_if(set.rules.begin(), set.rules.end(),
                               [&](const Rule& r) { return r.id == id; });
        if (it == set.rules.end()) {
          return w.error(t.get("targetRules"), "targetRules", "no rule with id '" + id + "'");
        }
        it->allowlists.push_back(*a);
      }
    }
  }
  return Status::Ok();
}

}  // namespace

namespace {

// gitleaks allows a chain of two [extend] path files; deeper chains (or a cycle) are refused.
constexpr int kMaxExtendDepth = 2;

Result<RuleSet> read_rule_file(const std::string& path, int depth);

Result<RuleSet> parse_rules_at(std::string_view text, std::string_view file_name, int depth,
                               bool defer_regex = false) {
  if (text.size() > kMaxRuleFileBytes) {
    return invalid_argument(std::string(file_name) + ": rule file larger than 4 MiB");
  }
  toml::table root;
  try {
    root = toml::parse(text, file_name);
  } catch (const toml::parse_error& e) {
    return invalid_argument(std::string(file_name) + ":" + std::to_string(e.source().begin.line) +
                            ":" + std::to_string(e.source().begin.column) + ": " +
                            std::string(e.description()));
  }
  Where top(file_name, "top level");
  RuleSet set;
  note_unknown_fields(
      top, root,
      {"title", "description", "minVersion", "extend", "rules", "allowlist", "allowlists"},
      set.warnings);
  auto title = get_string(top, root, "title");
  if (!title) return title.status();
  set.title = *title;
  auto min_version = get_string(top, root, "minVersion");
  if (!min_version) return min_version.status();
  set.min_version = *min_version;

  if (const toml::node* n = root.get("extend")) {
    Where w(file_name, "[extend]");
    const toml::table* ext = n->as_table();
    if (!ext) return w.error(n, "extend", "must be a table");
    // Strict: an [extend] field decides which rules run, so ignoring one could hide secrets.
    FERRY_RETURN_IF_ERROR(check_fields(w, *ext, {"useDefault", "path", "disabledRules"}));
    if (const toml::node* u = ext->get("useDefault"); u && !u->is_boolean()) {
      return w.error(u, "useDefault", "must be true or false");
    }
    auto disabled = get_strings(w, *ext, "disabledRules");
    if (!disabled) return disabled.status();
    auto base_path = get_string(w, *ext, "path");
    if (!base_path) return base_path.status();
    const bool use_default = (*ext)["useDefault"].value_or(false);
    if (use_default && !base_path->empty())
      return w.error(ext->get("path"), "path", "useDefault and path cannot both be set");
    RuleSet base;
    if (use_default) {
      base = default_rules();
    } else if (!base_path->empty()) {
      if (depth >= kMaxExtendDepth)
        return w.error(
            ext->get("path"), "path",
            "extends more than " + std::to_string(kMaxExtendDepth) + " files deep (or in a cycle)");
      std::filesystem::path p(*base_path);
      if (p.is_relative()) p = std::filesystem::path(file_name).parent_path() / p;
      auto loaded = read_rule_file(p.string(), depth + 1);
      if (!loaded) return w.error(ext->get("path"), "path", loaded.status().message());
      base = std::move(*loaded);
    } else if (!disabled->empty()) {
      return w.error(ext->get("disabledRules"), "disabledRules",
                     "needs useDefault = true or a path to extend");
    }
    for (Rule& r : base.rules) {
      if (std::find(disabled->begin(), disabled->end(), r.id) == disabled->end())
        set.rules.push_back(std::move(r));
    }
    merge_allowlist(set.global_allowlist, base.global_allowlist);
    for (auto& warning : base.warnings) set.warnings.push_back(std::move(warning));
  }
  const size_t extended = set.rules.size();

  if (const toml::node* n = root.get("rules")) {
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      return top.error(n, "rules", "must be an array of tables ([[rules]])");
    }
    if (arr->size() > kMaxRules) return top.error(n, "rules", "more than 2000 rules");
    size_t index = 0;
    for (const toml::node& item : *arr) {
      const toml::table& t = *item.as_table();
      const std::string id = t["id"].value_or(std::string());
      auto same = std::find_if(set.rules.begin(), set.rules.begin() + static_cast<long>(extended),
                               [&](const Rule& r) { return r.id == id; });
      const bool extends_base = same != set.rules.begin() + static_cast<long>(extended);
      auto rule = parse_rule(file_name, index++, t, set.warnings, extends_base, defer_regex);
      if (!rule) return rule.status();
      if (extends_base) {
        merge_rule(*same, std::move(*rule), t);
      } else if (auto twin =
                     std::find_if(set.rules.begin() + static_cast<long>(extended), set.rules.end(),
                                  [&](const Rule& r) { return r.id == id; });
                 twin != set.rules.end()) {
        // As gitleaks does: the later rule of that id is the one that runs.
        set.warnings.push_back(std::string(file_name) + ":" +
                               std::to_string(t.source().begin.line) + ": rule '" + id +
                               "' is defined twice; the later one is used");
        *twin = std::move(*rule);
      } else {
        set.rules.push_back(std::move(*rule));
      }
    }
  }
  FERRY_RETURN_IF_ERROR(parse_global(file_name, root, set));
  if (set.rules.empty()) {
    return invalid_argument(std::string(file_name) +
                            ": no rules: add [[rules]] or [extend] useDefault = true");
  }
  // Composite rules name rules that exist (after extending and disabling).
  for (const Rule& r : set.rules) {
    for (const RequiredRule& q : r.required) {
      if (q.id == r.id)
        return invalid_argument(std::string(file_name) + ": rule '" + r.id +
                                "': field 'required': a rule cannot require itself");
      if (std::none_of(set.rules.begin(), set.rules.end(),
                       [&](const Rule& o) { return o.id == q.id; }))
        return invalid_argument(std::string(file_name) + ": rule '" + r.id +
                                "': field 'required': no rule with id '" + q.id + "'");
    }
  }
  return set;
}

Result<RuleSet> read_rule_file(const std::string& path, int depth) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("rule file " + path + " cannot be read: check the --config path");
  std::string text;
  text.resize(kMaxRuleFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_rules_at(text, path, depth);
}

}  // namespace

Result<RuleSet> parse_rules(std::string_view text, std::string_view file_name) {
  return parse_rules_at(text, file_name, 0);
}

Result<RuleSet> parse_rules_deferred(std::string_view text, std::string_view file_name) {
  return parse_rules_at(text, file_name, 0, true);
}

Result<RuleSet> load_rules(const std::string& path) {
  return read_rule_file(path, 0);
}

}  // namespace ferry::scan
