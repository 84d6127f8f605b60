// The `ferry scan` command: exit codes, formats and options, run as a real process.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/json.h"
#include "scan/tokens.h"
#include "test_paths.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

struct CliRun {
  int code;
  std::string out;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

CliRun ferry(const TempDir& io, const std::string& args) {
  const std::string exe = ::ferry::testing::ferry_binary();
  const std::string out = (io.path() / "stdout").string(), err = (io.path() / "stderr").string();
  // The compiled-rules cache goes to the test's folder, never to the user's home.
  const std::string cmd = "XDG_CACHE_HOME='" + (io.path() / "xdg").string() + "' '" + exe +
                          "' scan " + args + " > '" + out + "' 2> '" + err + "'";
  const int rc = std::system(cmd.c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out), slurp(err)};
}

TEST(ScanCli, ExitCodes) {
  TempDir src, io;
  src.write("clean.txt", "nothing to see\n");
  EXPECT_EQ(ferry(io, "'" + src.str() + "'").code, 0);
  const std::string secret = std::string("sk") + "_live_" + rnd(kAlnum, 24);
  src.write("pay.py", "stripe.api_key = '" + secret + "'\n");
  CliRun r = ferry(io, "'" + src.str() + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("pay.py:1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stripe-secret-key"), std::string::npos);
  EXPECT_EQ(r.out.find(secret), std::string::npos) << "not redacted";
  EXPECT_NE(ferry(io, "--no-redact '" + src.str() + "'").out.find(secret), std::string::npos);
  CliRun missing = ferry(io, "/nonexistent/dir");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nonexistent/dir"), std::string::npos);
  EXPECT_EQ(ferry(io, "--format xml '" + src.str() + "'").code, 2);
  EXPECT_EQ(ferry(io, "").code, 2);
  EXPECT_EQ(ferry(io, "--max-file-size lots '" + src.str() + "'").code, 2);
}

TEST(ScanCli, JsonToFileThenBaseline) {
  TempDir src, io;
  src.write("a.env", "key " + std::string("gh") + "p_" + rnd(kAlnum, 36) + "\n");
  const std::string report = (io.path() / "report.json").string();
  CliRun r = ferry(io, "--format json --output '" + report + "' '" + src.str() + "'");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(r.out.empty());
  auto j = parse_json(slurp(report), "report");
  ASSERT_TRUE(j.ok());
  ASSERT_EQ((*j)["findings"].size(), 1u);
  EXPECT_EQ((*j)["findings"][0]["rule_id"], "github-pat");
  EXPECT_EQ(ferry(io, "--baseline '" + report + "' '" + src.str() + "'").code, 0);
}

TEST(ScanCli, SarifGitConfigAndProgress) {
  TempDir src, io;
  src.write("x.txt", "corp_" + rnd("abcdef0123456789", 20) + "\n");
  src.write("rules.toml", "[[rules]]\nid = \"corp\"\nregex = '''corp_[0-9a-f]{20}'''\n");
  CliRun clean = ferry(io, "--progress '" + src.str() + "'");
  EXPECT_EQ(clean.code, 0);
  EXPECT_NE(clean.err.find("scanning:"), std::string::npos);
  CliRun r = ferry(io, "--format sarif --config '" + (src.path() / "rules.toml").string() + "' '" +
                           src.str() + "'");
  EXPECT_EQ(r.code, 1);
  auto j = parse_json(r.out, "sarif");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["runs"][0]["results"][0]["ruleId"], "corp");
  src.write("bad.toml", "[[rules]]\nid = \"b\"\nregex = '''[z-a]'''\n");
  CliRun bad =
      ferry(io, "--config '" + (src.path() / "bad.toml").string() + "' '" + src.str() + "'");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("rule 'b'"), std::string::npos) << bad.err;
  // --git on a directory that is no repository is an error.
  EXPECT_EQ(ferry(io, "--git '" + src.str() + "'").code, 2);
}

TEST(ScanCli, GitHistory) {
  TempDir repo, io;
  const std::string secret = std::string("npm") + "_" + rnd(kAlnum, 36, 9);
  repo.write("pkg/.npmrc", "//registry/:_authToken=" + secret + "\n");
  const std::string git = "cd '" + repo.str() + "' && HOME='" + repo.str() +
                          "' GIT_CONFIG_NOSYSTEM=1 git -c user.name=T -c user.email=t@t.invalid ";
  ASSERT_EQ(
      std::system((git + "init -q . && " + git + "add -A && " + git + "commit -q -m leak && " +
                   git + "rm -q pkg/.npmrc && " + git + "commit -q -m fix")
                      .c_str()),
      0);
  CliRun r = ferry(io, "--git '" + repo.str() + "' --format json");
  EXPECT_EQ(r.code, 1);
  auto j = parse_json(r.out, "report");
  ASSERT_TRUE(j.ok()) << r.out;
  ASSERT_EQ((*j)["findings"].size(), 1u);
  EXPECT_EQ((*j)["findings"][0]["message"], "leak");
  EXPECT_EQ((*j)["findings"][0]["file"], "pkg/.npmrc");
  EXPECT_EQ((*j)["stats"]["commits_scanned"], 2);
  EXPECT_EQ(ferry(io, "--git '" + repo.str() + "' --since HEAD~1").code, 0);
  EXPECT_EQ(ferry(io, "--since HEAD '" + repo.str() + "'").code, 2);  // --since needs --git
}

TEST(ScanCli, PrintDefaultRulesRoundTrips) {
  TempDir io;
  CliRun r = ferry(io, "--print-default-rules");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("[[rules]]"), std::string::npos);
}

// `ferry scan` keeps the compiled rules in $XDG_CACHE_HOME/ferry (created private) and finds
// the same with and without it; --no-cache neither reads nor writes it.
TEST(ScanCli, CachesTheCompiledRulesUnlessToldNot) {
  TempDir src, io, home;
  const std::string secret = std::string("sk") + "_live_" + rnd(kAlnum, 24, 5);
  src.write("pay.py", "stripe.api_key = '" + secret + "'\n");
  const std::string cache = home.str() + "/xdg";
  const std::string env = "XDG_CACHE_HOME='" + cache + "' ";
  auto cached_files = [&] {
    size_t n = 0;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(cache + "/ferry", ec)) {
      n += e.path().extension() == ".db";
    }
    return n;
  };
  auto run = [&](const std::string& flags) {
    const std::string exe = ::ferry::testing::ferry_binary();
    const std::string out = (io.path() / "stdout").string();
    const int rc = std::system((env + "'" + exe + "' scan --no-redact " + flags + " '" + src.str() +
                                "' > '" + out + "' 2>/dev/null")
                                   .c_str());
    EXPECT_EQ(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, 1) << flags;
    return slurp(out).find(secret) != std::string::npos;
  };
  EXPECT_TRUE(run("--no-cache"));
  EXPECT_EQ(cached_files(), 0u);
  EXPECT_TRUE(run(""));
  EXPECT_EQ(cached_files(), 1u);
  EXPECT_TRUE(run(""));  // from the cache
  EXPECT_EQ(cached_files(), 1u);
}

}  // namespace
}  // namespace ferry::scan
