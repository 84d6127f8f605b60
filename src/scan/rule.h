// Rules of the secret scanner, in the shape of a gitleaks TOML rule file: what a secret
// looks like (regex, keywords, entropy, path) and what is allowed despite matching.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}

namespace ferry::scan {

// What format_check.h verifies of a secret after the regex matched.
enum class FormatCheck {
  kNone,
  kBase64UserPassword,  // base64 of "user:password" (Docker auths, HTTP Basic, npm _auth)
};

// What an allowlist regex is matched against.
enum class RegexTarget { kSecret, kMatch, kLine };

// A finding is dropped when the allowlist matches it. With condition AND every list that is
// set must match; with OR (the default) any one of them is enough.
struct Allowlist {
  std::string description;
  bool condition_and = false;
  RegexTarget regex_target = RegexTarget::kSecret;
  std::vector<std::shared_ptr<const re2::RE2>> regexes;
  std::vector<std::shared_ptr<const re2::RE2>> paths;
  std::vector<std::string> stopwords;  // lower-cased; a secret containing one is allowed
  std::vector<std::string> commits;    // git scans: findings in these commits are allowed

  bool empty() const {
    return regexes.empty() && paths.empty() && stopwords.empty() && commits.empty();
  }
};

// A composite rule's condition (gitleaks [[rules.required]]): the primary rule reports a
// finding only when rule `id` also finds something in the same file, and, when set, no more
// than `within_lines` lines and `within_columns` columns away from it.
struct RequiredRule {
  std::string id;
  int within_lines = -1;    // -1: anywhere in the file
  int within_columns = -1;  // -1: any column
};

struct Rule {
  std::string id;
  std::string description;
  std::string regex;  // RE2 syntax (Go regexp syntax, as gitleaks uses)
  // `regex` compiled; null when `regex` is empty, and for the built-in rules, whose regexes the
  // detector compiles on first use (parse_rules_deferred). Use Detector::rule_regex.
  std::shared_ptr<const re2::RE2> re;
  std::string path;  // optional: the rule applies only to files whose path matches
  std::shared_ptr<const re2::RE2> path_re;
  int secret_group = 0;  // 0: the first non-empty group, or the whole match
  double entropy = 0;    // minimum Shannon entropy (bits per byte) of the secret; 0: none
  std::vector<std::string> keywords;  // lower-cased; the rule runs only where one occurs
  std::vector<std::string> tags;
  std::vector<Allowlist> allowlists;
  std::vector<RequiredRule> required;  // non-empty: a composite rule
  bool skip_report = false;            // only a part of composite rules: never reported alone
  // Built-in rules only (not a TOML field): a check of the secret's decoded form that a
  // regex cannot make (format_check.h). A rule file's own rules never have one.
  FormatCheck format_check = FormatCheck::kNone;
  // Built-in rules only (not a TOML field): the pattern Vectorscan runs in place of `regex`
  // to find candidates, cheaper to compile and scan. It must match a part of every match of
  // `regex` that ends on the line where that match ends (RE2 then confirms from the line
  // before a candidate to the end of its line, as for hits of `regex` itself).
  // DefaultRules.PrefiltersMatchInsideEveryMatchEndingOnItsLastLine checks it on every sample.
  std::string prefilter;
};

struct RuleSet {
  std::string title;
  std::string min_version;  // gitleaks' minVersion: read and kept, not enforced
  // Fields of the file that ferry does not carry out and ignores ("rules.toml:19: ...").
  std::vector<std::string> warnings;
  std::vector<Rule> rules;
  Allowlist global_allowlist;  // [allowlist]: applies to every rule; paths skip whole files
};

}  // namespace ferry::scan
