// ferry scan: finds secrets in a directory tree, a file or a git history.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "scan/db_cache.h"
#include "scan/report.h"
#include "scan/rule_parser.h"
#include "scan/scanner.h"

namespace ferry::cli {
namespace {

struct ScanArgs {
  std::string path;
  std::string git_repo;
  std::string since;
  std::string config;
  std::string format = "text";
  std::string output;
  bool no_redact = false;
  std::string baseline;
  std::string ignore_file;
  std::string max_file_size = "20M";
  unsigned threads = 0;
  uint64_t max_commits = 0;
  bool progress = false;
  bool print_rules = false;
  bool no_cache = false;
};

// "1048576", "512K", "20M", "1G" -> bytes; 0 on a bad value.
uint64_t parse_size(const std::string& s) {
  if (s.empty()) return 0;
  size_t used = 0;
  unsigned long long n = 0;
  try {
    n = std::stoull(s, &used);
  } catch (...) {
    return 0;
  }
  std::string unit = s.substr(used);
  if (unit.size() > 1 && (unit.back() == 'B' || unit.back() == 'b')) unit.pop_back();
  if (unit.empty()) return n;
  switch (unit[0]) {
    case 'k':
    case 'K':
      return unit.size() == 1 ? n << 10 : 0;
    case 'm':
    case 'M':
      return unit.size() == 1 ? n << 20 : 0;
    case 'g':
    case 'G':
      return unit.size() == 1 ? n << 30 : 0;
    default:
      return 0;
  }
}

// Prints "scanned N files, X MiB" on stderr every quarter second until stopped.
class ProgressLine {
 public:
  explicit ProgressLine(const scan::ScanProgress& p) : p_(p), t_([this] { run(); }) {}
  ~ProgressLine() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    t_.join();
    print();
    std::fputc('\n', stderr);
  }

 private:
  void run() {
    std::unique_lock lk(mu_);
    do {
      print();
    } while (!cv_.wait_for(lk, std::chrono::milliseconds(250), [this] { return stop_; }));
  }
  void print() const {
    std::fprintf(stderr, "\r\033[Kscanning: %llu files, %.1f MiB, %llu commits, %llu findings",
                 static_cast<unsigned long long>(p_.files.load()),
                 static_cast<double>(p_.bytes.load()) / (1 << 20),
                 static_cast<unsigned long long>(p_.commits.load()),
                 static_cast<unsigned long long>(p_.findings.load()));
  }
  const scan::ScanProgress& p_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread t_;
};

[[noreturn]] void scan_fail(const std::string& msg) {
  std::cerr << "ferry scan: " << msg << "\n";
  throw CLI::RuntimeError(2);
}

void run_scan(const ScanArgs& a) {
  if (a.print_rules) {
    std::cout << scan::default_rules_toml();
    return;
  }
  if (a.path.empty() == a.git_repo.empty()) scan_fail("give either PATH or --git REPO (not both)");
  if (!a.since.empty() && a.git_repo.empty()) scan_fail("--since needs --git REPO");
  if (a.format != "text" && a.format != "json" && a.format != "sarif") {
    scan_fail("--format " + a.format + " is not text, json or sarif");
  }
  scan::ScanOptions opts;
  opts.config_path = a.config;
  opts.ignore_file = a.ignore_file;
  opts.baseline_path = a.baseline;
  opts.threads = a.threads;
  opts.since = a.since;
  opts.max_commits = a.max_commits;
  if (!a.no_cache) opts.db_cache_dir = scan::default_db_cache_dir();
  opts.max_file_size = parse_size(a.max_file_size);
  if (opts.max_file_size == 0) {
    scan_fail("--max-file-size " + a.max_file_size +
              " is not a size like 1048576, 512K, 20M or 1G");
  }
  scan::ScanProgress progress;
  opts.progress = &progress;
  std::optional<Result<scan::ScanReport>> result;
  {
    std::unique_ptr<ProgressLine> line;
    if (a.progress || ::isatty(STDERR_FILENO)) line = std::make_unique<ProgressLine>(progress);
    result.emplace(a.git_repo.empty() ? scan::scan_path(a.path, opts)
                                      : scan::scan_git(a.git_repo, opts));
  }
  if (!result->ok()) scan_fail(result->status().message());
  const scan::ScanReport* report = &result->value();
  for (const std::string& w : report->warnings) std::cerr << "ferry scan: warning: " << w << "\n";

  std::string text;
  const bool redact = !a.no_redact;
  if (a.format == "text") {
    text = scan::report_text(*report, redact);
  } else if (a.format == "json") {
    text = scan::report_json(*report, redact).dump(2) + "\n";
  } else {
    scan::RuleSet rules;
    if (a.config.empty()) {
      rules = scan::default_rules();
    } else if (auto loaded = scan::load_rules(a.config)) {
      rules = std::move(*loaded);
    }
    text = scan::report_sarif(*report, rules, redact).dump(2) + "\n";
  }
  if (a.output.empty()) {
    std::cout << text << std::flush;
  } else {
    std::ofstream out(a.output, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush()) scan_fail("cannot write --output " + a.output);
    if (a.format != "text" || !report->findings.empty()) {
      std::cerr << report->findings.size() << " finding(s); report written to " << a.output << "\n";
    }
  }
  if (!report->findings.empty()) throw CLI::RuntimeError(1);
}

}  // namespace

void register_scan_commands(CLI::App& app, GlobalOptions& /*g*/) {
  auto args = std::make_shared<ScanArgs>();
  CLI::App* cmd = app.add_subcommand(
      "scan", "find secrets in files or git history (exit 0 clean, 1 findings, 2 error)");
  cmd->add_option("PATH", args->path, "directory tree or file to scan");
  cmd->add_option("--git", args->git_repo, "scan the lines added in the history of this git repo");
  cmd->add_option("--since", args->since, "with --git: only commits after this revision");
  cmd->add_option("--max-commits", args->max_commits, "with --git: stop after this many commits");
  cmd->add_option("--config", args->config, "rule file (gitleaks TOML format); default: built-in");
  cmd->add_option("--format", args->format, "text, json or sarif")->capture_default_str();
  cmd->add_option("--output", args->output, "write the report to this file instead of stdout");
  cmd->add_flag("--no-redact", args->no_redact, "show secrets in full in the report");
  cmd->add_option("--baseline", args->baseline,
                  "JSON report of an earlier scan: skip its findings");
  cmd->add_option("--ignore-file", args->ignore_file,
                  "fingerprints to ignore (default: .ferryignore or .gitleaksignore in the root)");
  cmd->add_option("--max-file-size", args->max_file_size, "skip larger files (e.g. 512K, 20M)")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "worker threads (default: all cores)");
  cmd->add_flag("--progress", args->progress, "show progress on stderr even when not a TTY");
  cmd->add_flag("--no-cache", args->no_cache,
                "compile the rules' Vectorscan database even if ~/.cache/ferry holds it");
  cmd->add_flag("--print-default-rules", args->print_rules, "print the built-in rule file");
  cmd->callback([args] { run_scan(*args); });
}

}  // namespace ferry::cli
