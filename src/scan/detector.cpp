#include "scan/detector.h"

#include <hs/hs.h>
#include <re2/re2.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <tuple>

#include "scan/db_cache.h"
#include "scan/entropy.h"
#include "scan/format_check.h"

namespace ferry::scan {
namespace {

// Bounds on the work one buffer can cause.
constexpr size_t kMaxHitsPerRule = 4096;  // beyond this, RE2 scans the whole buffer once
constexpr size_t kMaxFindingsPerBuffer = 1000;
constexpr size_t kLookBack = 4096;            // bytes before a hit a single-line match may start
constexpr size_t kLookBackMultiline = 32768;  // for rules whose match may span lines
// Windows a thread confirms with a rule's shared RE2 program before it compiles its own copy
// (Detector::Scratch::re_).
constexpr uint32_t kOwnRegexAfter = 64;

std::string escape_literal(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += "\\x";
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The prefilter form of a regex: bounded repeats with a wide range, X{m,n}, become X{m,}.
// That matches a superset, ending at the same offsets, and Vectorscan runs unbounded repeats
// much faster than wide bounded ones; RE2 still enforces the bound when it confirms.
std::string relax_repeats(const std::string& re) {
  std::string out;
  out.reserve(re.size());
  bool in_class = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char c = re[i];
    if (c == '\\' && i + 1 < re.size()) {
      out += c;
      out += re[++i];
      continue;
    }
    if (in_class) {
      if (c == ']') in_class = false;
      out += c;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < re.size() && re[i + 1] == '^') out += re[++i];
      if (i + 1 < re.size() && re[i + 1] == ']') out += re[++i];  // "[]..." holds a ']'
      continue;
    }
    if (c == '{') {
      size_t j = i + 1, m = 0, n = 0;
      bool digits_m = false, digits_n = false;
      while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) {
        m = m * 10 + static_cast<size_t>(re[j++] - '0');
        digits_m = true;
      }
      if (digits_m && j < re.size() && re[j] == ',') {
        ++j;
        while (j < re.size() && std::isdigit(static_cast<unsigned char>(re[j]))) {
          n = n * 10 + static_cast<size_t>(re[j++] - '0');
          digits_n = true;
        }
        if (digits_n && j < re.size() && re[j] == '}' && n > m + 16) {
          out += "{" + std::to_string(m) + ",}";
          i = j;
          continue;
        }
      }
    }
    out += c;
  }
  return out;
}

// Whether a match of `regex` may span lines (candidate windows then reach kLookBackMultiline
// back). A line break that can only be the last thing a match takes, "(?:\r?\n|$)" or "\r?$"
// closing the regex, does not count: the window of a hit already runs to the end of the
// line after the hit's end, and the generic rules that end so would otherwise confirm 32 KiB
// windows around every candidate.
bool is_multiline(const std::string& regex) {
  std::string_view rest(regex);
  size_t closing = 0;
  while (closing < rest.size() && rest[rest.size() - 1 - closing] == ')') ++closing;
  const std::string_view body = rest.substr(0, rest.size() - closing);
  for (std::string_view tail : {std::string_view("(?:\\r?\\n|$"), std::string_view("\\r?$")}) {
    if (closing >= (tail.front() == '(' ? 1u : 0u) && body.ends_with(tail)) {
      rest = body.substr(0, body.size() - tail.size());
      break;
    }
  }
  return rest.find("[\\s\\S]") != std::string_view::npos ||
         rest.find("(?s") != std::string_view::npos || rest.find("\\n") != std::string_view::npos ||
         rest.find("\\r") != std::string_view::npos;
}

unsigned char ascii_lower(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c + 32) : c;
}

// Whether `hay` holds `lower_needle` (lower-case) in any ASCII case. Candidates for the first
// byte are found with memchr, in both cases, each position looked up again only once passed:
// linear, and at memchr's speed on text where the first byte is rare.
bool contains_ci(std::string_view hay, std::string_view lower_needle) {
  const size_t n = lower_needle.size();
  if (n == 0) return true;
  if (hay.size() < n) return false;
  const auto c0 = static_cast<unsigned char>(lower_needle[0]);
  const unsigned char c1 = c0 >= 'a' && c0 <= 'z' ? static_cast<unsigned char>(c0 - 32) : c0;
  const char* p = hay.data();
  const char* const last = hay.data() + hay.size() - n;  // last possible start
  const char* next0 = nullptr;
  const char* next1 = nullptr;
  auto find = [&](unsigned char c) -> const char* {
    const void* q = std::memchr(p, c, static_cast<size_t>(last - p) + 1);
    return q ? static_cast<const char*>(q) : last + 1;
  };
  while (p <= last) {
    if (!next0 || next0 < p) next0 = find(c0);
    if (c1 == c0) {
      next1 = next0;
    } else if (!next1 || next1 < p) {
      next1 = find(c1);
    }
    const char* at = std::min(next0, next1);
    if (at > last) return false;
    size_t i = 1;
    while (i < n && ascii_lower(static_cast<unsigned char>(at[i])) ==
                        static_cast<unsigned char>(lower_needle[i])) {
      ++i;
    }
    if (i == n) return true;
    p = at + 1;
  }
  return false;
}

bool any_match(const std::vector<std::shared_ptr<const re2::RE2>>& res, std::string_view s) {
  for (const auto& re : res) {
    if (re2::RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *re)) return true;
  }
  return false;
}

}  // namespace

// A rule's regex, compiled by the first thread that needs it.
struct RuleRegex {
  std::once_flag once;
  std::shared_ptr<const re2::RE2> re;
};

struct Detector::Compiled {
  std::unique_ptr<RuleRegex[]> regexes;  // per rule (rule_regex)
  std::vector<int> id_rule;  // pattern id -> rule index for prefilter patterns, -1 for keywords
  std::vector<std::vector<size_t>> id_keyword_rules;  // pattern id -> rules with that keyword
  std::vector<unsigned char> full_scan;               // per rule
  std::vector<unsigned char> multiline;               // per rule
  std::vector<unsigned char> keyword_in_db;           // per rule: its keywords are patterns
  std::vector<std::string> keywords;                  // every distinct keyword of the rules
  std::vector<std::vector<size_t>> rule_keywords;     // per rule: indexes into `keywords`
};

// Counts lines up to an offset, continuing from the last offset asked for: one rule's
// matches come in increasing order, so a buffer is counted once per rule, not once per match.
struct Detector::LineCursor {
  size_t off = 0;
  int line = 0;  // 0-based line of `off`
  int at(std::string_view data, size_t to) {
    if (to < off) {
      off = 0;
      line = 0;
    }
    line += static_cast<int>(std::count(data.begin() + static_cast<long>(off),
                                        data.begin() + static_cast<long>(to), '\n'));
    off = to;
    return line;
  }
};

struct Detector::ScanCtx {
  const Compiled* c;
  Scratch* s;
};

Detector::Scratch::~Scratch() {
  if (s_) hs_free_scratch(s_);
}

Detector::~Detector() {
  if (proto_scratch_) hs_free_scratch(proto_scratch_);
  if (db_) hs_free_database(db_);
}

Result<std::unique_ptr<Detector>> Detector::create(RuleSet rules, std::string db_cache_dir) {
  std::unique_ptr<Detector> d(new Detector());
  d->rules_ = std::move(rules);
  d->db_cache_dir_ = std::move(db_cache_dir);
  for (const Rule& r : d->rules_.rules) d->has_composite_ |= r.skip_report || !r.required.empty();
  FERRY_RETURN_IF_ERROR(d->compile());
  return d;
}

Status Detector::compile() {
  c_ = std::make_unique<Compiled>();
  const size_t n = rules_.rules.size();
  c_->regexes = std::make_unique<RuleRegex[]>(n);
  c_->full_scan.assign(n, 0);
  c_->multiline.assign(n, 0);
  c_->keyword_in_db.assign(n, 0);
  c_->rule_keywords.assign(n, {});
  for (size_t r = 0; r < n; ++r) {
    for (const std::string& k : rules_.rules[r].keywords) {
      auto it = std::find(c_->keywords.begin(), c_->keywords.end(), k);
      c_->rule_keywords[r].push_back(static_cast<size_t>(it - c_->keywords.begin()));
      if (it == c_->keywords.end()) c_->keywords.push_back(k);
    }
  }
  std::vector<std::string> patterns;
  std::vector<unsigned> flags;
  // Regexes in prefilter mode: Vectorscan may relax them, so it reports a superset of the
  // places RE2 will match. A regex it cannot take at all is confirmed by RE2 on whole buffers.
  // Each regex is tried alone only when the whole set fails to compile (the usual case
  // compiles once).
  auto add_regexes = [&](bool probe, bool relax) {
    patterns.clear();
    flags.clear();
    c_->id_rule.clear();
    c_->id_keyword_rules.clear();
    std::fill(c_->full_scan.begin(), c_->full_scan.end(), 0);
    for (size_t r = 0; r < n; ++r) {
      const Rule& rule = rules_.rules[r];
      if (rule.regex.empty()) continue;
      c_->multiline[r] = is_multiline(rule.regex);
      if (rule.path_re) {
        // A rule confined to some paths (.pgpass, master.key) would cost every file a pass
        // through its pattern; RE2 runs it on the few files whose path matches instead.
        c_->full_scan[r] = 1;
        continue;
      }
      const std::string& pattern = rule.prefilter.empty() ? rule.regex : rule.prefilter;
      if (probe) {
        hs_database_t* db = nullptr;
        hs_compile_error_t* err = nullptr;
        if (hs_compile(pattern.c_str(), HS_FLAG_PREFILTER, HS_MODE_BLOCK, nullptr, &db, &err) !=
            HS_SUCCESS) {
          hs_free_compile_error(err);
          c_->full_scan[r] = 1;
          continue;
        }
        hs_free_database(db);
      }
      patterns.push_back(relax ? relax_repeats(pattern) : pattern);
      flags.push_back(HS_FLAG_PREFILTER);
      c_->id_rule.push_back(static_cast<int>(r));
      c_->id_keyword_rules.emplace_back();
    }
  };
  // Keywords: one caseless literal pattern per distinct keyword, only for rules RE2 runs on
  // whole buffers outside paths (regexes Vectorscan refused, rules without a regex): they
  // spare those rules files without their keywords. A rule whose regex is in the database has
  // its keywords checked only when its regex found a candidate (keyword_present): short
  // keywords like "sk" or "key" occur on every other line of source, and matching them all
  // cost Vectorscan more than the rules' own patterns.
  auto add_keywords = [&] {
    std::vector<std::string> keywords;
    std::fill(c_->keyword_in_db.begin(), c_->keyword_in_db.end(), 0);
    for (size_t r = 0; r < n; ++r) {
      const Rule& rule = rules_.rules[r];
      const bool in_db = !rule.regex.empty() && !c_->full_scan[r];
      if (in_db || (rule.path_re && !rule.regex.empty())) continue;
      for (const std::string& k : rule.keywords) {
        auto it = std::find(keywords.begin(), keywords.end(), k);
        size_t idx;
        if (it == keywords.end()) {
          keywords.push_back(k);
          patterns.push_back(escape_literal(k));
          flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
          c_->id_rule.push_back(-1);
          c_->id_keyword_rules.emplace_back();
          idx = patterns.size() - 1;
        } else {
          idx = patterns.size() - keywords.size() + static_cast<size_t>(it - keywords.begin());
        }
        c_->id_keyword_rules[idx].push_back(r);
        c_->keyword_in_db[r] = 1;
      }
    }
  };
  // A database compiled by an earlier process for exactly these patterns is loaded from the
  // cache instead (db_cache.h: a refused or damaged file is a miss, never fewer patterns).
  auto build = [&]() -> std::string {
    if (patterns.empty()) return {};
    std::string key;
    if (!db_cache_dir_.empty()) {
      key = db_cache_key(patterns, flags, HS_MODE_BLOCK);
      if (hs_database_t* cached = db_cache_load(db_cache_dir_, key, &db_cache_note_)) {
        hs_scratch_t* scratch = nullptr;
        if (hs_alloc_scratch(cached, &scratch) == HS_SUCCESS) {
          db_ = cached;
          proto_scratch_ = scratch;
          db_from_cache_ = true;
          return {};
        }
        hs_free_database(cached);
        db_cache_note_ = "cached database refused by Vectorscan";
      }
    }
    std::vector<const char*> ptrs;
    std::vector<unsigned> ids;
    for (size_t i = 0; i < patterns.size(); ++i) {
      ptrs.push_back(patterns[i].c_str());
      ids.push_back(static_cast<unsigned>(i));
    }
    hs_compile_error_t* err = nullptr;
    if (hs_compile_multi(ptrs.data(), flags.data(), ids.data(), static_cast<unsigned>(ptrs.size()),
                         HS_MODE_BLOCK, nullptr, &db_, &err) == HS_SUCCESS) {
      if (!key.empty() && db_cache_store(db_cache_dir_, key, db_)) {
        db_cache_note_ = "compiled and stored";
      }
      return {};
    }
    std::string msg = err && err->message ? err->message : "unknown error";
    hs_free_compile_error(err);
    return msg;
  };
  add_regexes(false, true);
  add_keywords();
  if (!build().empty()) {
    add_regexes(true, false);
    add_keywords();
    if (std::string msg = build(); !msg.empty()) {
      return internal_error("building the Vectorscan database of " +
                            std::to_string(patterns.size()) + " patterns failed: " + msg);
    }
  }
  if (!db_ || proto_scratch_) return Status::Ok();
  if (hs_alloc_scratch(db_, &proto_scratch_) != HS_SUCCESS) {
    return resource_exhausted("allocating Vectorscan scratch space failed");
  }
  return Status::Ok();
}

// Whether one of the rule's keywords (lower-cased) occurs in the buffer, in any case:
// gitleaks' condition for running a rule at all. Each keyword is looked for at most once per
// buffer (the generic rules share theirs).
bool Detector::keyword_present(size_t r, std::string_view data, Scratch& s) const {
  for (size_t k : c_->rule_keywords[r]) {
    signed char& state = s.keyword_state_[k];
    if (state < 0) state = contains_ci(data, c_->keywords[k]) ? 1 : 0;
    if (state) return true;
  }
  return false;
}

size_t Detector::full_scan_rules() const {
  return static_cast<size_t>(std::count(c_->full_scan.begin(), c_->full_scan.end(), 1));
}

Result<std::unique_ptr<Detector::Scratch>> Detector::new_scratch(bool own_regexes) const {
  std::unique_ptr<Scratch> s(new Scratch());
  s->own_regexes_ = own_regexes;
  if (proto_scratch_ && hs_clone_scratch(proto_scratch_, &s->s_) != HS_SUCCESS) {
    return resource_exhausted("cloning Vectorscan scratch space failed");
  }
  const size_t n = rules_.rules.size();
  s->ends_.resize(n);
  s->keyword_seen_.resize(n);
  s->keyword_state_.resize(c_->keywords.size());
  s->overflow_.resize(n);
  s->re_.resize(n);  // copies are made for rules confirmed often (thread_regex)
  s->confirms_.resize(n);
  return s;
}

const re2::RE2* Detector::rule_regex(size_t r) const {
  RuleRegex& slot = c_->regexes[r];
  std::call_once(slot.once, [&] {
    const Rule& rule = rules_.rules[r];
    if (rule.re) {
      slot.re = rule.re;
      return;
    }
    if (rule.regex.empty()) return;
    // The options rule_parser.cpp compiles a rule file's regexes with.
    re2::RE2::Options opts;
    opts.set_log_errors(false);
    opts.set_max_mem(64 << 20);
    auto re = std::make_shared<const re2::RE2>(rule.regex, opts);
    if (re->ok()) slot.re = std::move(re);
  });
  return slot.re.get();
}

const re2::RE2* Detector::thread_regex(Scratch& s, size_t r) const {
  const re2::RE2* shared = rule_regex(r);
  if (!shared || !s.own_regexes_) return shared;
  std::unique_ptr<re2::RE2>& copy = s.re_[r];
  if (copy) return copy.get();
  if (++s.confirms_[r] <= kOwnRegexAfter) return shared;
  copy = std::make_unique<re2::RE2>(shared->pattern(), shared->options());
  return copy.get();
}

bool Detector::path_allowed(std::string_view path) const {
  return any_match(rules_.global_allowlist.paths, path);
}

bool Detector::commit_allowed(std::string_view commit) const {
  if (commit.empty()) return false;
  for (const std::string& c : rules_.global_allowlist.commits) {
    if (c == commit) return true;
  }
  return false;
}

bool Detector::allowed(const Rule& rule, const Finding& f, std::string_view line,
                       const Fragment& frag) const {
  auto check = [&](const Allowlist& a, bool global) {
    if (a.empty()) return false;
    auto target = [&]() -> std::string_view {
      switch (a.regex_target) {
        case RegexTarget::kMatch:
          return f.match;
        case RegexTarget::kLine:
          return line;
        case RegexTarget::kSecret:
          break;
      }
      return f.secret;
    };
    const bool has_commits = !a.commits.empty();
    const bool commit_ok =
        has_commits && !frag.commit.empty() &&
        std::find(a.commits.begin(), a.commits.end(), frag.commit) != a.commits.end();
    const bool path_ok = !a.paths.empty() && any_match(a.paths, frag.path);
    const bool regex_ok = !a.regexes.empty() && any_match(a.regexes, target());
    bool stop_ok = false;
    for (const std::string& w : a.stopwords) {
      if (contains_ci(f.secret, w)) stop_ok = true;
    }
    if (a.condition_and && !global) {
      return (!has_commits || commit_ok) && (a.paths.empty() || path_ok) &&
             (a.regexes.empty() || regex_ok) && (a.stopwords.empty() || stop_ok);
    }
    return commit_ok || path_ok || regex_ok || stop_ok;
  };
  for (const Allowlist& a : rule.allowlists) {
    if (check(a, false)) return true;
  }
  return check(rules_.global_allowlist, true);
}

void Detector::confirm(size_t r, const re2::RE2* rp, std::string_view data, size_t from, size_t to,
                       const Fragment& frag, LineCursor& lines, std::vector<Finding>& out) const {
  if (!rp) return;
  const re2::RE2& re = *rp;
  const Rule& rule = rules_.rules[r];
  const int ngroups = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> groups(static_cast<size_t>(ngroups));
  const re2::StringPiece text(data.data(), data.size());
  size_t pos = from;
  while (pos <= to && out.size() < kMaxFindingsPerBuffer) {
    if (!re.Match(text, pos, to, re2::RE2::UNANCHORED, groups.data(), ngroups)) break;
    const re2::StringPiece m = groups[0];
    const size_t mstart = static_cast<size_t>(m.data() - data.data());
    pos = mstart + std::max<size_t>(m.size(), 1);
    re2::StringPiece secret;
    // A secretGroup beyond the regex's groups (a rule file may set one on a built-in rule it
    // extends without giving a regex) counts as unset rather than reading past `groups`.
    if (rule.secret_group > 0 && rule.secret_group < ngroups) {
      secret = groups[static_cast<size_t>(rule.secret_group)];
    } else {
      secret = m;
      for (int g = 1; g < ngroups; ++g) {
        if (!groups[static_cast<size_t>(g)].empty()) {
          secret = groups[static_cast<size_t>(g)];
          break;
        }
      }
    }
    if (secret.empty() || secret.data() == nullptr) continue;
    const std::string_view sv(secret.data(), secret.size());
    const double ent = shannon_entropy(sv);
    if (rule.entropy > 0 && ent < rule.entropy) continue;
    if (is_placeholder(sv)) continue;
    if (!passes_format_check(rule.format_check, sv)) continue;
    const size_t sstart = static_cast<size_t>(secret.data() - data.data());
    const size_t send = sstart + secret.size();  // exclusive
    // The full lines the match spans: for inline allow comments and regexTarget = "line".
    const size_t mend = mstart + m.size();
    size_t lstart = data.rfind('\n', mstart == 0 ? 0 : mstart - 1);
    lstart = (lstart == std::string_view::npos || mstart == 0) ? 0 : lstart + 1;
    if (mstart > 0 && data[mstart - 1] == '\n') lstart = mstart;
    size_t lend = data.find('\n', mend > mstart ? mend - 1 : mend);
    if (lend == std::string_view::npos) lend = data.size();
    const std::string_view line = data.substr(lstart, lend - lstart);
    if (inline_allow_ && (line.find("ferry:allow") != std::string_view::npos ||
                          line.find("gitleaks:allow") != std::string_view::npos)) {
      continue;
    }
    Finding f;
    f.rule_id = rule.id;
    f.description = rule.description;
    f.file = std::string(frag.path);
    f.commit = std::string(frag.commit);
    f.secret = std::string(sv);
    f.match = std::string(m.data(), m.size());
    f.entropy = ent;
    if (allowed(rule, f, line, frag)) continue;
    // Line and column of the secret's first and last byte.
    const auto col_of = [&](size_t off) {
      size_t nl = off == 0 ? std::string_view::npos : data.rfind('\n', off - 1);
      return static_cast<int>(nl == std::string_view::npos ? off + 1 : off - nl);
    };
    const int l0 = lines.at(data, sstart);
    const int l1 =
        l0 + static_cast<int>(std::count(data.begin() + static_cast<long>(sstart),
                                         data.begin() + static_cast<long>(send - 1), '\n'));
    const auto map = [&](int l) {
      if (frag.line_map && l >= 0 && static_cast<size_t>(l) < frag.line_map->size()) {
        return (*frag.line_map)[static_cast<size_t>(l)];
      }
      return l + 1;
    };
    f.line = map(l0);
    f.end_line = map(l1);
    f.column = col_of(sstart);
    f.end_column = col_of(send - 1);
    out.push_back(std::move(f));
  }
}

Status Detector::detect(std::string_view data, const Fragment& frag, Scratch& s,
                        std::vector<Finding>& out) const {
  const size_t first = out.size();
  FERRY_RETURN_IF_ERROR(detect_rules(data, frag, s, out));
  if (has_composite_) keep_reportable(out, first);
  drop_same_secret(out, first);
  return Status::Ok();
}

// A secret that two rules matched at the same place (a specific rule and a generic one, e.g.
// aws-secret-access-key and generic-config-secret) is reported once, by the rule that comes
// first in the rule file.
void Detector::drop_same_secret(std::vector<Finding>& out, size_t first) const {
  if (out.size() - first < 2) return;
  std::vector<size_t> order(out.size() - first);
  for (size_t i = 0; i < order.size(); ++i) order[i] = first + i;
  const auto place = [&](size_t i) {
    const Finding& f = out[i];
    return std::tie(f.line, f.column, f.end_line, f.end_column);
  };
  // Findings are appended rule by rule, in rule order: a stable sort by place keeps the
  // earlier rule first among equal places.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return place(a) < place(b); });
  std::vector<char> keep(out.size() - first, 1);
  for (size_t k = 1; k < order.size(); ++k) {
    if (place(order[k]) == place(order[k - 1])) keep[order[k] - first] = 0;
  }
  size_t w = first;
  for (size_t i = first; i < out.size(); ++i) {
    if (!keep[i - first]) continue;
    if (w != i) out[w] = std::move(out[i]);
    ++w;
  }
  out.resize(w);
}

// Composite rules: a primary finding stays only when every rule it requires found something
// in the same buffer within the set distance; parts marked skipReport never stay on their own.
void Detector::keep_reportable(std::vector<Finding>& out, size_t first) const {
  auto rule_of = [&](const std::string& id) -> const Rule* {
    for (const Rule& r : rules_.rules)
      if (r.id == id) return &r;
    return nullptr;
  };
  auto near = [](const Finding& a, const Finding& b, const RequiredRule& q) {
    if (q.within_lines >= 0 && std::abs(a.line - b.line) > q.within_lines) return false;
    if (q.within_columns >= 0 && std::abs(a.column - b.column) > q.within_columns) return false;
    return true;
  };
  std::vector<char> keep(out.size() - first, 1);
  for (size_t i = first; i < out.size(); ++i) {
    const Rule* r = rule_of(out[i].rule_id);
    if (!r) continue;
    if (r->skip_report) keep[i - first] = 0;
    for (const RequiredRule& q : r->required) {
      bool found = false;
      for (size_t j = first; j < out.size() && !found; ++j)
        found = j != i && out[j].rule_id == q.id && near(out[i], out[j], q);
      if (!found) keep[i - first] = 0;
    }
  }
  size_t w = first;
  for (size_t i = first; i < out.size(); ++i)
    if (keep[i - first]) {
      if (w != i) out[w] = std::move(out[i]);
      ++w;
    }
  out.resize(w);
}

Status Detector::detect_rules(std::string_view data, const Fragment& frag, Scratch& s,
                              std::vector<Finding>& out) const {
  const size_t n = rules_.rules.size();
  for (size_t r = 0; r < n; ++r) {
    s.ends_[r].clear();
    s.keyword_seen_[r] = 0;
    s.overflow_[r] = 0;
  }
  std::fill(s.keyword_state_.begin(), s.keyword_state_.end(), static_cast<signed char>(-1));
  if (db_ && !data.empty()) {
    ScanCtx ctx{c_.get(), &s};
    auto on_match = [](unsigned id, unsigned long long /*from*/, unsigned long long to,
                       unsigned /*flags*/, void* p) -> int {
      auto* ctx = static_cast<ScanCtx*>(p);
      const int rule = ctx->c->id_rule[id];
      if (rule < 0) {
        for (size_t k : ctx->c->id_keyword_rules[id]) ctx->s->keyword_seen_[k] = 1;
        return 0;
      }
      auto& ends = ctx->s->ends_[static_cast<size_t>(rule)];
      if (ends.size() >= kMaxHitsPerRule) {
        ctx->s->overflow_[static_cast<size_t>(rule)] = 1;
      } else {
        ends.push_back(static_cast<size_t>(to));
      }
      return 0;
    };
    if (data.size() > 0xffffffffu) return invalid_argument("buffer larger than 4 GiB");
    hs_error_t rc =
        hs_scan(db_, data.data(), static_cast<unsigned>(data.size()), 0, s.s_, on_match, &ctx);
    if (rc != HS_SUCCESS) {
      return internal_error("Vectorscan scan of " + std::string(frag.path) + " failed (" +
                            std::to_string(rc) + ")");
    }
  }
  for (size_t r = 0; r < n && out.size() < kMaxFindingsPerBuffer; ++r) {
    const Rule& rule = rules_.rules[r];
    if (c_->keyword_in_db[r] && !s.keyword_seen_[r]) continue;
    const bool candidates = s.overflow_[r] || !s.ends_[r].empty();
    if (!c_->full_scan[r] && !rule.regex.empty() && !candidates) continue;
    if (rule.path_re && !re2::RE2::PartialMatch(
                            re2::StringPiece(frag.path.data(), frag.path.size()), *rule.path_re)) {
      continue;
    }
    if (!c_->keyword_in_db[r] && !rule.keywords.empty() && !keyword_present(r, data, s)) {
      continue;
    }
    if (rule.regex.empty()) {
      // A path-only rule: the file itself is the finding (e.g. a committed key store).
      Finding f;
      f.rule_id = rule.id;
      f.description = rule.description;
      f.file = std::string(frag.path);
      f.commit = std::string(frag.commit);
      f.match = f.file;
      f.line = f.end_line = 1;
      if (!allowed(rule, f, {}, frag)) out.push_back(std::move(f));
      continue;
    }
    LineCursor lines;
    if (c_->full_scan[r] || s.overflow_[r]) {
      confirm(r, thread_regex(s, r), data, 0, data.size(), frag, lines, out);
      continue;
    }
    const auto& ends = s.ends_[r];
    if (ends.empty()) continue;
    // Windows from a little before each hit's line to the end of its line, merged.
    const size_t back = c_->multiline[r] ? kLookBackMultiline : kLookBack;
    size_t wfrom = 0, wto = 0;
    bool open = false;
    for (size_t e : ends) {
      size_t a = e > back ? e - back : 0;
      if (!c_->multiline[r]) {
        // Start of the line before the hit's line, when that is nearer than `back`.
        size_t nl = e == 0 ? std::string_view::npos : data.rfind('\n', e - 1);
        if (nl != std::string_view::npos && nl > 0) {
          size_t nl2 = data.rfind('\n', nl - 1);
          size_t ls = nl2 == std::string_view::npos ? 0 : nl2 + 1;
          a = std::max(a, ls);
        }
      }
      size_t b = data.find('\n', e);
      // Include the newline: a trailing (?:[^...]|$) in a rule needs a byte after the secret.
      b = b == std::string_view::npos ? data.size() : b + 1;
      if (open && a <= wto) {
        wto = std::max(wto, b);
      } else {
        if (open) confirm(r, thread_regex(s, r), data, wfrom, wto, frag, lines, out);
        wfrom = a;
        wto = b;
        open = true;
      }
    }
    if (open) confirm(r, thread_regex(s, r), data, wfrom, wto, frag, lines, out);
  }
  return Status::Ok();
}

std::string redact(std::string_view secret) {
  const size_t keep = std::min<size_t>(4, secret.size() / 5);
  return std::string(secret.substr(0, keep)) + "****";
}

}  // namespace ferry::scan
