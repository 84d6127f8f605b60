// Reads gitleaks-format TOML rule files with toml++. Errors name the file, the rule id and
// the field, e.g. "rules.toml: rule 'aws-key': field 'regex': invalid regex: missing )".
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "scan/rule.h"

namespace ferry::scan {

// Rule files larger than this are refused: a rule file is configuration, not data.
inline constexpr size_t kMaxRuleFileBytes = 4 << 20;
inline constexpr size_t kMaxRules = 2000;

// Parses `text` (the content of `file_name`, used in messages). [extend] useDefault = true
// adds the built-in rules (minus disabledRules) before the file's own rules; a rule of the
// file with the same id as a built-in one replaces it.
Result<RuleSet> parse_rules(std::string_view text, std::string_view file_name);

// As parse_rules, but each rule's `regex` is not compiled here (Rule::re stays null, and a
// secretGroup is not checked against its groups): the detector compiles a rule's regex when
// the rule first has a candidate to confirm (Detector::rule_regex), so a scan pays only for the
// rules it uses (compiling all built-in rules took ~40 ms, two thirds of `ferry scan`'s
// start-up). For the built-in rules only, whose regexes the tests compile and check
// (RuleRegex.EveryBuiltInRegexCompilesAndHasItsSecretGroup): a rule file's mistakes must show when
// it is loaded.
Result<RuleSet> parse_rules_deferred(std::string_view text, std::string_view file_name);

// Reads and parses a rule file from disk.
Result<RuleSet> load_rules(const std::string& path);

// The built-in rule set (see default_rules.cpp), parsed once.
const RuleSet& default_rules();
// Its TOML text, for `ferry scan --print-default-rules` and the docs.
std::string_view default_rules_toml();

}  // namespace ferry::scan
