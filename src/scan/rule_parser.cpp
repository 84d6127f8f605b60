#include "scan/rule_parser.h"

#include <re2/re2.h>
#include <toml++/toml.h>

#include <algorithm>
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

Status check_fields(const Where& w, const toml::table& t,
                    std::initializer_list<std::string_view> known) {
  for (const auto& [key, node] : t) {
    if (std::find(known.begin(), known.end(), key.str()) == known.end()) {
      return w.error(&node, key.str(), "unknown field (supported: see docs/scanning.md)");
    }
  }
  return Status::Ok();
}

Result<Allowlist> parse_allowlist(const Where& w, const toml::table& t, bool global) {
  FERRY_RETURN_IF_ERROR(check_fields(
      w, t,
      global
          ? std::initializer_list<std::string_view>{"description", "condition", "regexTarget",
                                                    "regexes", "paths", "stopwords", "commits",
                                                    "targetRules"}
          : std::initializer_list<std::string_view>{"description", "condition", "regexTarget",
                                                    "regexes", "paths", "stopwords", "commits"}));
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

Result<std::vector<Allowlist>> parse_rule_allowlists(const Where& w, const toml::table& t) {
  std::vector<Allowlist> out;
  if (const toml::node* n = t.get("allowlist")) {
    const toml::table* at = n->as_table();
    if (!at) return w.error(n, "allowlist", "must be a table");
    auto a = parse_allowlist(w, *at, false);
    if (!a) return a.status();
    out.push_back(std::move(*a));
  }
  if (const toml::node* n = t.get("allowlists")) {
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      return w.error(n, "allowlists", "must be an array of tables ([[rules.allowlists]])");
    }
    for (const toml::node& item : *arr) {
      auto a = parse_allowlist(w, *item.as_table(), false);
      if (!a) return a.status();
      out.push_back(std::move(*a));
    }
  }
  return out;
}

Result<Rule> parse_rule(std::string_view file, size_t index, const toml::table& t) {
  std::string label = "rules[" + std::to_string(index) + "]";
  if (auto id = t["id"].value<std::string>()) label = "rule '" + *id + "' (" + label + ")";
  Where w(file, label);
  FERRY_RETURN_IF_ERROR(check_fields(w, t,
                                     {"id", "description", "regex", "secretGroup", "entropy",
                                      "keywords", "path", "tags", "allowlist", "allowlists"}));
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
  if (r.regex.empty() && r.path.empty()) {
    return w.error(&t, "regex", "a rule needs a regex, a path or both");
  }
  if (!r.regex.empty()) {
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
  auto al = parse_rule_allowlists(w, t);
  if (!al) return al.status();
  r.allowlists = std::move(*al);
  return r;
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
    auto a = parse_allowlist(w, *t, true);
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
      auto a = parse_allowlist(w, t, true);
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

Result<RuleSet> parse_rules(std::string_view text, std::string_view file_name) {
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
  FERRY_RETURN_IF_ERROR(check_fields(
      top, root, {"title", "description", "extend", "rules", "allowlist", "allowlists"}));
  RuleSet set;
  auto title = get_string(top, root, "title");
  if (!title) return title.status();
  set.title = *title;

  if (const toml::node* n = root.get("extend")) {
    Where w(file_name, "[extend]");
    const toml::table* ext = n->as_table();
    if (!ext) return w.error(n, "extend", "must be a table");
    FERRY_RETURN_IF_ERROR(check_fields(w, *ext, {"useDefault", "disabledRules"}));
    if (const toml::node* u = ext->get("useDefault"); u && !u->is_boolean()) {
      return w.error(u, "useDefault", "must be true or false");
    }
    auto disabled = get_strings(w, *ext, "disabledRules");
    if (!disabled) return disabled.status();
    if ((*ext)["useDefault"].value_or(false)) {
      const RuleSet& def = default_rules();
      for (const Rule& r : def.rules) {
        if (std::find(disabled->begin(), disabled->end(), r.id) == disabled->end()) {
          set.rules.push_back(r);
        }
      }
      merge_allowlist(set.global_allowlist, def.global_allowlist);
    }
  }

  if (const toml::node* n = root.get("rules")) {
    const toml::array* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) {
      return top.error(n, "rules", "must be an array of tables ([[rules]])");
    }
    if (arr->size() > kMaxRules) return top.error(n, "rules", "more than 2000 rules");
    size_t index = 0;
    for (const toml::node& item : *arr) {
      auto rule = parse_rule(file_name, index++, *item.as_table());
      if (!rule) return rule.status();
      auto same = std::find_if(set.rules.begin(), set.rules.end(),
                               [&](const Rule& r) { return r.id == rule->id; });
      if (same != set.rules.end()) {
        *same = std::move(*rule);  // a file's own rule replaces a built-in one of that id
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
  return set;
}

Result<RuleSet> load_rules(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("rule file " + path + " cannot be read: check the --config path");
  std::string text;
  text.resize(kMaxRuleFileBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  return parse_rules(text, path);
}

}  // namespace ferry::scan
