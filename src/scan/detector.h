// The detection engine: one Vectorscan database holds every rule's keywords (literal,
// caseless) and a relaxed (prefilter) form of every rule's regex, so one pass over a buffer
// finds the candidate regions; RE2 then confirms each region and extracts the secret group;
// entropy, placeholder, inline-comment and allowlist checks drop the false positives.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "scan/finding.h"
#include "scan/rule.h"

struct hs_database;
struct hs_scratch;

namespace ferry::scan {

// Where a buffer came from: used for path rules/allowlists and to fill in findings.
struct Fragment {
  std::string_view path;    // relative, '/'-separated
  std::string_view commit;  // empty outside git scans
  // Git scans scan only added lines; line_map[i] is the file line of the buffer's line i.
  const std::vector<int>* line_map = nullptr;
};

class Detector {
 public:
  // Per-thread Vectorscan scratch space; create one per worker with new_scratch().
  class Scratch {
   public:
    ~Scratch();
    Scratch(const Scratch&) = delete;
    Scratch& operator=(const Scratch&) = delete;

   private:
    friend class Detector;
    Scratch() = default;
    hs_scratch* s_ = nullptr;
    // Reused per buffer so a scan does not allocate per file.
    std::vector<std::vector<size_t>> ends_;    // per rule: end offsets of prefilter hits
    std::vector<unsigned char> keyword_seen_;  // per rule
    std::vector<signed char> keyword_state_;  // per keyword: -1 not looked for, 0 absent, 1 present
    std::vector<unsigned char> overflow_;     // per rule: too many hits, scan it all
    // Per rule: this thread's own copy of the rule's regex. RE2 objects are thread-safe but
    // share a lazily built DFA cache behind a lock; threads confirming many candidates would
    // serialise on it. A copy costs a compilation (up to ~5 ms for a rule with a wide
    // repeat) and its own DFA, which most rules never repay on ordinary source (a few
    // candidates per scan): a thread uses the shared program until it has confirmed
    // kOwnRegexAfter windows of that rule, then makes its copy (thread_regex).
    std::vector<std::unique_ptr<re2::RE2>> re_;
    std::vector<uint32_t> confirms_;  // per rule: windows confirmed with the shared program
    bool own_regexes_ = true;
  };

  // `db_cache_dir`: where compiled Vectorscan databases are kept between processes
  // (db_cache.h); empty: always compile.
  static Result<std::unique_ptr<Detector>> create(RuleSet rules, std::string db_cache_dir = {});
  ~Detector();
  Detector(const Detector&) = delete;
  Detector& operator=(const Detector&) = delete;

  // `own_regexes`: whether this scratch's thread may make copies of the rules' RE2 programs
  // of its own for rules it confirms often (see Scratch::re_); one thread per scan never needs
  // to (it is alone on the shared programs' caches when the others have their copies).
  Result<std::unique_ptr<Scratch>> new_scratch(bool own_regexes = true) const;

  // True when the global allowlist's paths cover `path`: the file need not be read.
  bool path_allowed(std::string_view path) const;
  bool commit_allowed(std::string_view commit) const;

  // Appends the findings in `data` to `out` (fingerprint left empty). Thread-safe given a
  // Scratch per thread.
  Status detect(std::string_view data, const Fragment& frag, Scratch& scratch,
                std::vector<Finding>& out) const;

  const RuleSet& rules() const { return rules_; }
  // Whether a "ferry:allow" / "gitleaks:allow" on the line drops a finding (default yes).
  // The release gate turns it off: the tree's author would be allowing their own secrets.
  // Set before detect() runs on any thread.
  void set_inline_allow(bool on) { inline_allow_ = on; }
  // Rules whose regex RE2 runs on whole buffers: those Vectorscan could not take as a
  // prefilter, and those confined to paths (run only on files whose path matches).
  size_t full_scan_rules() const;
  // Whether the Vectorscan database came from the cache, and a note: empty on a hit or when
  // no cache was asked for, else why a cached file was not used, or "compiled and stored".
  bool db_from_cache() const { return db_from_cache_; }
  const std::string& db_cache_note() const { return db_cache_note_; }

 private:
  struct ScanCtx;
  struct LineCursor;
  struct Compiled;
  Detector() = default;
  Status compile();
  // Rule `r`'s regex, shared by every thread: Rule::re, or compiled here on first use for a
  // rule parsed with parse_rules_deferred (the built-in rules). Null if it does not compile
  // (the built-in rules' tests make sure they do). Thread-safe.
  const re2::RE2* rule_regex(size_t r) const;
  // The program `s`'s thread confirms rule `r` with: the shared one, or its own copy once it
  // has confirmed many windows of that rule. Null when the rule's regex does not compile.
  const re2::RE2* thread_regex(Scratch& s, size_t r) const;
  void confirm(size_t rule_index, const re2::RE2* re, std::string_view data, size_t from, size_t to,
               const Fragment& frag, LineCursor& lines, std::vector<Finding>& out) const;
  bool keyword_present(size_t rule_index, std::string_view data, Scratch& scratch) const;
  bool allowed(const Rule& rule, const Finding& f, std::string_view line,
               const Fragment& frag) const;

  Status detect_rules(std::string_view data, const Fragment& frag, Scratch& scratch,
                      std::vector<Finding>& out) const;
  void keep_reportable(std::vector<Finding>& out, size_t first) const;
  void drop_same_secret(std::vector<Finding>& out, size_t first) const;

  RuleSet rules_;
  bool inline_allow_ = true;
  bool has_composite_ = false;  // some rule requires others or is marked skipReport
  std::string db_cache_dir_;
  bool db_from_cache_ = false;
  std::string db_cache_note_;
  hs_database* db_ = nullptr;
  hs_scratch* proto_scratch_ = nullptr;
  std::unique_ptr<Compiled> c_;
};

}  // namespace ferry::scan
