// scan_rule_cost TREE [MAX_MB=64] [REPEAT=3]
//
// Reads up to MAX_MB of the text files under TREE into memory, then times Detector::detect
// over all of them (CPU time of this thread, best of REPEAT) three ways:
//   all     the whole built-in rule set;
//   alone   each rule in a detector of its own (what it costs when nothing else runs);
//   without the whole set less that one rule (what removing it would save).
// Prints one line per rule, sorted by "without" savings, so the rules that dominate the
// scanner's time on ordinary source stand out. Files are read once; the kernel's share of a
// real scan (open, read) is not in these figures.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "scan/detector.h"
#include "scan/rule_parser.h"

namespace {

using ferry::scan::Detector;
using ferry::scan::Finding;
using ferry::scan::Fragment;
using ferry::scan::RuleSet;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Buffer {
  std::string path;
  std::string text;
};

std::vector<Buffer> read_tree(const std::string& root, size_t max_bytes) {
  std::vector<Buffer> out;
  size_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator() && total < max_bytes;
       it.increment(ec)) {
    if (ec || !it->is_regular_file(ec)) continue;
    std::ifstream in(it->path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    if (text.find('\0') != std::string::npos) continue;  // binary: the scanner skips it too
    total += text.size();
    out.push_back({it->path().lexically_relative(root).generic_string(), std::move(text)});
  }
  return out;
}

// Best-of-`repeat` CPU seconds of one detector over every buffer; -1 if it cannot be built.
double cost(RuleSet rules, const std::vector<Buffer>& bufs, int repeat, size_t* findings) {
  auto det = Detector::create(std::move(rules));
  if (!det.ok()) return -1;
  auto scratch = (*det)->new_scratch();
  if (!scratch.ok()) return -1;
  double best = 1e9;
  for (int i = 0; i < repeat; ++i) {
    std::vector<Finding> out;
    const double t0 = thread_cpu_seconds();
    for (const Buffer& b : bufs) {
      out.clear();
      if (!(*det)->detect(b.text, Fragment{b.path, {}, nullptr}, **scratch, out).ok()) return -1;
      if (findings) *findings += out.size();
    }
    best = std::min(best, thread_cpu_seconds() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: scan_rule_cost TREE [MAX_MB=64] [REPEAT=3]\n");
    return 2;
  }
  const size_t max_mb = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  const int repeat = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::vector<Buffer> bufs = read_tree(argv[1], max_mb << 20);
  size_t bytes = 0;
  for (const Buffer& b : bufs) bytes += b.text.size();
  const RuleSet& all = ferry::scan::default_rules();
  const double whole = cost(all, bufs, repeat, nullptr);
  std::printf("%zu files, %.1f MB; all %zu rules: %.3f CPU-s = %.0f MB per CPU-second\n",
              bufs.size(), static_cast<double>(bytes) / 1e6, all.rules.size(), whole,
              static_cast<double>(bytes) / 1e6 / whole);
  struct Row {
    std::string id;
    double alone, saved;
  };
  std::vector<Row> rows;
  for (size_t r = 0; r < all.rules.size(); ++r) {
    RuleSet one = all;
    one.rules = {all.rules[r]};
    RuleSet rest = all;
    rest.rules.erase(rest.rules.begin() + static_cast<std::ptrdiff_t>(r));
    rows.push_back({all.rules[r].id, cost(one, bufs, repeat, nullptr),
                    whole - cost(rest, bufs, repeat, nullptr)});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.saved > b.saved; });
  std::printf("%-44s %10s %10s\n", "rule", "alone s", "saved s");
  for (const Row& row : rows)
    std::printf("%-44s %10.3f %10.3f\n", row.id.c_str(), row.alone, row.saved);
  return 0;
}
