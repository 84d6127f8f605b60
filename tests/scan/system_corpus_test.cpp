// Precision of the built-in rules on the machine's own source trees (issue 20, item 3): a
// bounded corpus of real files (C/C++ headers, the Python standard library and packages,
// /usr/share/doc, a real node_modules, Perl), spread over each tree, is scanned with the default
// rules; any finding not in the documented list below fails the test. The list holds
// example credentials that ship in documentation (and are reported on purpose).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "scan/detector.h"
#include "scan/rule_parser.h"
#include "scan/scan_setup.h"

namespace ferry::scan {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kBudgetPerRoot = 6u << 20;  // bytes read from each tree
constexpr uint64_t kMaxFile = 512u << 10;

struct Known {
  const char* path_suffix;
  const char* rule;
};

// Documented findings in system files: real-looking credentials in docs and examples.
constexpr Known kDocumented[] = {
    // RFC 6749 / RFC 5849 examples in oauthlib's docstrings.
    {"oauthlib/oauth2/rfc6749/clients/base.py", "basic-auth-header"},
    {"oauthlib/oauth1/rfc5849/parameters.py", "generic-secret-assignment"},
    {"oauthlib/oauth2/rfc6749/parameters.py", "generic-secret-assignment"},
    // Example JWTs in PyJWT's README.
    {"PyJWT-2.6.0.egg-info/PKG-INFO", "jwt"},
    {"python3-jwt/README.rst", "jwt"},
    // urllib.request's docstring: an example password for HTTPPasswordMgr.
    {"urllib/request.py", "generic-password"},
    // Example keys shipped with libxmlsec1 and Alertmanager's HA example.
    {"libxmlsec1-dev/examples/rsakey.pem", "private-key"},
    {"prometheus-alertmanager/examples/ha/tls/certs/", "private-key"},
    // ccache's manual: a redis:// URL with a password; arborist's README: a registry login.
    {"ccache/manual.html", "connection-string-password"},
    {"@npmcli/arborist/README.md", "generic-password"},
};

bool documented(const std::string& path, const std::string& rule) {
  return std::any_of(std::begin(kDocumented), std::end(kDocumented), [&](const Known& k) {
    return rule == k.rule && path.find(k.path_suffix) != std::string::npos;
  });
}

// Every regular file of `root` under kMaxFile, in path order, then every k-th of them so
// the bytes chosen come to about kBudgetPerRoot spread over the whole tree.
std::vector<fs::path> spread_sample(const fs::path& root) {
  std::vector<std::pair<fs::path, uint64_t>> all;
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(
           root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_symlink(ec) || !it->is_regular_file(ec)) continue;
    const uint64_t size = it->file_size(ec);
    if (ec || size == 0 || size > kMaxFile) continue;
    all.emplace_back(it->path(), size);
    total += size;
  }
  std::sort(all.begin(), all.end());
  const size_t stride = std::max<uint64_t>(1, total / kBudgetPerRoot);
  std::vector<fs::path> out;
  for (size_t i = 0; i < all.size(); i += stride) out.push_back(all[i].first);
  return out;
}

TEST(SystemCorpus, NoUndocumentedFindingsInTheMachinesSourceTrees) {
  auto det = default_detector(true);
  ASSERT_TRUE(det.ok()) << det.status().to_string();
  auto scratch = (*det)->new_scratch();
  ASSERT_TRUE(scratch.ok());
  std::vector<std::string> roots = {"/usr/include",     "/usr/share/doc",  "/usr/lib/node_modules",
                                    "/usr/lib/python3", "/usr/share/perl", "/usr/share/perl5"};
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("python3.", 0) == 0 && e.is_directory(ec)) roots.push_back(e.path().string());
  }
  uint64_t bytes = 0;
  size_t files = 0;
  std::vector<std::string> unexpected;
  for (const std::string& root : roots) {
    if (!fs::is_directory(root, ec)) continue;
    for (const fs::path& p : spread_sample(root)) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string data = ss.str();
      if (data.find('\0') != std::string::npos) continue;  // binary: the scanner skips it too
      const std::string rel = p.string();
      std::vector<Finding> out;
      ASSERT_TRUE((*det)->detect(data, Fragment{rel, {}, nullptr}, **scratch, out).ok());
      ++files;
      bytes += data.size();
      for (const Finding& f : out) {
        if (!documented(rel, f.rule_id))
          unexpected.push_back(rel + ":" + std::to_string(f.line) + ": " + f.rule_id + ": " +
                               redact(f.secret) + " in '" + f.match.substr(0, 80) + "'");
      }
    }
  }
  if (bytes < (1u << 20)) GTEST_SKIP() << "too little source text on this machine";
  RecordProperty("files", static_cast<int>(files));
  RecordProperty("bytes", static_cast<int>(bytes));
  EXPECT_TRUE(unexpected.empty()) << unexpected.size() << " undocumented findings in " << files
                                  << " files (" << bytes << " bytes), first: " << unexpected[0];
  for (size_t i = 0; i < std::min<size_t>(unexpected.size(), 20); ++i)
    ADD_FAILURE() << unexpected[i];
}

}  // namespace
}  // namespace ferry::scan
