// scan_git on a repository made with the git CLI in a temporary directory.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "scan/scanner.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

class GitRepo {
 public:
  GitRepo() { git("init -q -b main ."); }
  // Runs git in the repository with a fixed identity; returns its stdout trimmed.
  std::string git(const std::string& args) {
    const std::string out = (dir_.path() / ".ferry-git-out").string();
    const std::string cmd = "cd '" + dir_.str() +
                            "' && GIT_AUTHOR_NAME=Tester GIT_AUTHOR_EMAIL=t@example.test "
                            "GIT_COMMITTER_NAME=Tester GIT_COMMITTER_EMAIL=t@example.test "
                            "GIT_CONFIG_NOSYSTEM=1 HOME='" +
                            dir_.str() + "' git " + args + " > '" + out + "' 2>&1";
    int rc = std::system(cmd.c_str());
    EXPECT_EQ(rc, 0) << cmd;
    std::ifstream in(out);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(out);
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  std::string commit(const std::string& file, const std::string& content, const std::string& msg) {
    dir_.write(file, content);
    git("add -A");
    git("commit -q -m '" + msg + "'");
    return git("rev-parse HEAD");
  }
  void remove(const std::string& file, const std::string& msg) {
    git("rm -q " + file);
    git("commit -q -m '" + msg + "'");
  }
  std::string str() const { return dir_.str(); }
  TempDir& dir() { return dir_; }

 private:
  TempDir dir_;
};

std::string gh_token(unsigned seed) {
  return std::string("gh") + "p_" + rnd(kAlnum, 36, seed);
}

TEST(ScanGit, FindsSecretsAddedInHistory) {
  GitRepo repo;
  const std::string c1 = repo.commit("README", "hello\n", "first");
  const std::string secret = gh_token(1);
  const std::string c2 =
      repo.commit("config/app.env", "A=1\nB=2\nvalue " + secret + "\n", "add config");
  repo.remove("config/app.env", "remove the leaked token");
  repo.commit("README", "hello\nworld\n", "docs");

  auto r = scan_git(repo.str(), {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  ASSERT_EQ(r->findings.size(), 1u);
  const Finding& f = r->findings[0];
  EXPECT_EQ(f.commit, c2);
  EXPECT_EQ(f.file, "config/app.env");
  EXPECT_EQ(f.line, 3);
  EXPECT_EQ(f.secret, secret);
  EXPECT_EQ(f.author, "Tester");
  EXPECT_EQ(f.email, "t@example.test");
  EXPECT_EQ(f.message, "add config");
  EXPECT_EQ(f.fingerprint.rfind(c2 + ":config/app.env:github-pat:", 0), 0u);
  EXPECT_EQ(r->stats.commits_scanned, 4u);

  // The working tree is clean: only history has it.
  auto tree = scan_path(repo.str(), {});
  ASSERT_TRUE(tree.ok());
  EXPECT_TRUE(tree->findings.empty());

  // --since the commit that added it: nothing new.
  ScanOptions since;
  since.since = c2;
  auto later = scan_git(repo.str(), since);
  ASSERT_TRUE(later.ok());
  EXPECT_TRUE(later->findings.empty());
  EXPECT_EQ(later->stats.commits_scanned, 2u);
  since.since = c1;
  EXPECT_EQ(scan_git(repo.str(), since)->findings.size(), 1u);
}

TEST(ScanGit, OnlyAddedLinesCountAndLineNumbersFollowTheFile) {
  GitRepo repo;
  const std::string a = gh_token(2), b = gh_token(3);
  repo.commit("f.txt", "one\n" + a + "\nthree\n", "a");
  const std::string c = repo.commit("f.txt", "zero\none\n" + a + "\nthree\nfour " + b + "\n", "b");
  auto r = scan_git(repo.str(), {});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->findings.size(), 2u);
  // Newest commit first; its only new secret is b, on line 5 of the file.
  EXPECT_EQ(r->findings[0].commit, c);
  EXPECT_EQ(r->findings[0].secret, b);
  EXPECT_EQ(r->findings[0].line, 5);
  EXPECT_EQ(r->findings[1].secret, a);
  EXPECT_EQ(r->findings[1].line, 2);
}

TEST(ScanGit, IgnoreWithoutCommitMatchesAnyCommitAndSkipsLargeBlobs) {
  GitRepo repo;
  repo.commit("a.txt", "k " + gh_token(4) + "\n", "a");
  repo.commit("big.txt", std::string(5000, 'x') + "\n" + gh_token(5) + "\n", "big");
  ScanOptions opts;
  opts.max_file_size = 1000;
  auto r = scan_git(repo.str(), opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->findings.size(), 1u);
  EXPECT_EQ(r->stats.files_skipped_large, 1u);
  const Finding& f = r->findings[0];
  // "file:rule:hash" without the commit part.
  const std::string fp = f.fingerprint.substr(f.commit.size() + 1);
  repo.dir().write(".ferryignore", fp + "\n");
  auto again = scan_git(repo.str(), opts);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->findings.empty());
  EXPECT_EQ(again->stats.findings_ignored, 1u);
}

TEST(ScanGit, ThreadsKeepHistoryOrder) {
  GitRepo repo;
  std::vector<std::string> ids;
  for (unsigned i = 0; i < 12; ++i) {
    ids.push_back(repo.commit("f" + std::to_string(i) + ".txt", "k " + gh_token(20 + i) + "\n",
                              "c" + std::to_string(i)));
  }
  ScanOptions opts;
  opts.threads = 3;
  auto r = scan_git(repo.str(), opts);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->findings.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(r->findings[i].commit, ids[11 - i]);
  opts.max_commits = 5;
  auto some = scan_git(repo.str(), opts);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some->stats.commits_scanned, 5u);
  EXPECT_EQ(some->findings.size(), 5u);
}

TEST(ScanGit, Errors) {
  TempDir d;
  auto r = scan_git(d.str(), {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(d.str()), std::string::npos);
  GitRepo repo;
  repo.commit("a", "a\n", "a");
  ScanOptions opts;
  opts.since = "no-such-rev";
  auto bad = scan_git(repo.str(), opts);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no-such-rev"), std::string::npos);
}

}  // namespace
}  // namespace ferry::scan
