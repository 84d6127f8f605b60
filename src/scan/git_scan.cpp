// scan_git: the lines each commit added, read with libgit2 one file diff at a time, commits
// spread over worker threads.
#include <git2.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <thread>

#include "scan/scan_setup.h"
#include "scan/scanner.h"

namespace ferry::scan {
namespace {

// RAII for libgit2 objects and the library itself.
template <typename T, void (*Free)(T*)>
struct GitPtr {
  T* p = nullptr;
  GitPtr() = default;
  GitPtr(const GitPtr&) = delete;
  GitPtr& operator=(const GitPtr&) = delete;
  ~GitPtr() {
    if (p) Free(p);
  }
  T** out() { return &p; }
  T* get() const { return p; }
};
using Repo = GitPtr<git_repository, git_repository_free>;
using Walk = GitPtr<git_revwalk, git_revwalk_free>;
using Commit = GitPtr<git_commit, git_commit_free>;
using Tree = GitPtr<git_tree, git_tree_free>;
using Diff = GitPtr<git_diff, git_diff_free>;
using Patch = GitPtr<git_patch, git_patch_free>;
using Object = GitPtr<git_object, git_object_free>;
using Odb = GitPtr<git_odb, git_odb_free>;

struct LibGit {
  LibGit() { git_libgit2_init(); }
  ~LibGit() { git_libgit2_shutdown(); }
};

Status git_failure(std::string_view what) {
  const ::git_error* e = git_error_last();
  return unavailable(std::string(what) + ": " + (e && e->message ? e->message : "libgit2 error"));
}

std::string iso_time(git_time_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Scans the lines one commit added. Each worker thread has its own repository handle:
// libgit2 objects must not be shared between threads.
Status scan_commit(git_repository* repo, git_odb* odb, const git_oid& oid, const Detector& det,
                   Detector::Scratch& scratch, const ScanOptions& opts, std::vector<Finding>& out,
                   ScanStats& stats) {
  Commit commit;
  if (git_commit_lookup(commit.out(), repo, &oid) != 0) return git_failure("reading commit");
  char hex[GIT_OID_HEXSZ + 1];
  git_oid_tostr(hex, sizeof hex, &oid);
  const std::string commit_id(hex);
  Tree tree, parent_tree;
  if (git_commit_tree(tree.out(), commit.get()) != 0) return git_failure("reading tree");
  if (git_commit_parentcount(commit.get()) == 1) {
    Commit parent;
    if (git_commit_parent(parent.out(), commit.get(), 0) != 0 ||
        git_commit_tree(parent_tree.out(), parent.get()) != 0) {
      return git_failure("reading parent of " + commit_id);
    }
  }
  git_diff_options dopts = GIT_DIFF_OPTIONS_INIT;
  dopts.context_lines = 0;
  Diff diff;
  if (git_diff_tree_to_tree(diff.out(), repo, parent_tree.get(), tree.get(), &dopts) != 0) {
    return git_failure("diffing " + commit_id);
  }
  const git_signature* author = git_commit_author(commit.get());
  std::string buf;
  std::vector<int> line_map;
  const size_t ndeltas = git_diff_num_deltas(diff.get());
  for (size_t d = 0; d < ndeltas; ++d) {
    const git_diff_delta* delta = git_diff_get_delta(diff.get(), d);
    if (delta->status != GIT_DELTA_ADDED && delta->status != GIT_DELTA_MODIFIED &&
        delta->status != GIT_DELTA_RENAMED && delta->status != GIT_DELTA_COPIED) {
      continue;
    }
    const std::string path = delta->new_file.path ? delta->new_file.path : "";
    if (det.path_allowed(path)) {
      ++stats.files_skipped_allowlisted;
      continue;
    }
    // Look at the blob's size before loading it: memory stays bounded by max_file_size.
    size_t size = 0;
    git_object_t type;
    if (git_odb_read_header(&size, &type, odb, &delta->new_file.id) != 0) continue;
    if (size > opts.max_file_size) {
      ++stats.files_skipped_large;
      continue;
    }
    Patch patch;
    if (git_patch_from_diff(patch.out(), diff.get(), d) != 0) return git_failure("reading diff");
    if (!patch.get() || (git_patch_get_delta(patch.get())->flags & GIT_DIFF_FLAG_BINARY)) {
      ++stats.files_skipped_binary;
      continue;
    }
    buf.clear();
    line_map.clear();
    const size_t nhunks = git_patch_num_hunks(patch.get());
    for (size_t h = 0; h < nhunks; ++h) {
      const int nlines = git_patch_num_lines_in_hunk(patch.get(), h);
      for (int l = 0; l < nlines; ++l) {
        const git_diff_line* line = nullptr;
        if (git_patch_get_line_in_hunk(&line, patch.get(), h, static_cast<size_t>(l)) != 0) {
          continue;
        }
        if (line->origin != GIT_DIFF_LINE_ADDITION) continue;
        buf.append(line->content, line->content_len);
        if (buf.empty() || buf.back() != '\n') buf.push_back('\n');
        line_map.push_back(line->new_lineno);
      }
    }
    const size_t before = out.size();
    FERRY_RETURN_IF_ERROR(det.detect(buf, Fragment{path, commit_id, &line_map}, scratch, out));
    ++stats.files_scanned;
    stats.bytes_scanned += buf.size();
    if (opts.progress) {
      opts.progress->files.fetch_add(1, std::memory_order_relaxed);
      opts.progress->bytes.fetch_add(buf.size(), std::memory_order_relaxed);
      opts.progress->findings.fetch_add(out.size() - before, std::memory_order_relaxed);
    }
    for (size_t i = before; i < out.size(); ++i) {
      Finding& f = out[i];
      f.author = author && author->name ? author->name : "";
      f.email = author && author->email ? author->email : "";
      f.date = author ? iso_time(author->when.time) : "";
      const char* summary = git_commit_summary(commit.get());
      f.message = summary ? summary : "";
    }
  }
  if (opts.progress) opts.progress->commits.fetch_add(1, std::memory_order_relaxed);
  return Status::Ok();
}

}  // namespace

Result<ScanReport> scan_git(const std::string& repo_path, const ScanOptions& opts) {
  const auto t0 = std::chrono::steady_clock::now();
  LibGit lib;
  Repo repo;
  if (git_repository_open_ext(repo.out(), repo_path.c_str(), 0, nullptr) != 0) {
    return git_failure("opening git repository " + repo_path);
  }
  const char* workdir = git_repository_workdir(repo.get());
  auto setup = prepare_scan(workdir ? workdir : repo_path, opts);
  if (!setup) return setup.status();
  const Detector& det = *setup->detector;

  // The commits to scan, newest first: ids only, so memory is 20 bytes a commit.
  std::vector<git_oid> commits;
  {
    Walk walk;
    if (git_revwalk_new(walk.out(), repo.get()) != 0) return git_failure("starting revwalk");
    git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
    if (git_revwalk_push_head(walk.get()) != 0) return git_failure("reading HEAD of " + repo_path);
    if (!opts.since.empty()) {
      Object since;
      if (git_revparse_single(since.out(), repo.get(), opts.since.c_str()) != 0) {
        return invalid_argument("--since " + opts.since + " is not a revision of " + repo_path);
      }
      if (git_revwalk_hide(walk.get(), git_object_id(since.get())) != 0) {
        return git_failure("--since " + opts.since);
      }
    }
    git_oid oid;
    while (git_revwalk_next(&oid, walk.get()) == 0) {
      if (opts.max_commits && commits.size() >= opts.max_commits) break;
      Commit commit;
      if (git_commit_lookup(commit.out(), repo.get(), &oid) != 0) {
        return git_failure("reading commit");
      }
      char hex[GIT_OID_HEXSZ + 1];
      git_oid_tostr(hex, sizeof hex, &oid);
      // A merge commit's diff against its first parent repeats the merged branch's commits,
      // which the walk visits anyway.
      if (git_commit_parentcount(commit.get()) > 1 || det.commit_allowed(hex)) continue;
      commits.push_back(oid);
    }
  }

  // Workers take commits in turn; findings keep their commit's index for history order.
  const std::string path = git_repository_path(repo.get());
  const unsigned nthreads =
      std::min<unsigned>(thread_count(opts), std::max<size_t>(commits.size(), 1));
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  std::vector<std::pair<size_t, Finding>> found;
  ScanStats totals;
  auto worker = [&] {
    Repo own;
    Odb odb;
    auto scratch = det.new_scratch();
    Status s;
    if (!scratch) {
      s = scratch.status();
    } else if (git_repository_open(own.out(), path.c_str()) != 0) {
      s = git_failure("opening git repository " + repo_path);
    } else if (git_repository_odb(odb.out(), own.get()) != 0) {
      s = git_failure("opening object database");
    }
    std::vector<std::pair<size_t, Finding>> local;
    std::vector<Finding> out;
    ScanStats st;
    for (size_t i = next++; s.ok() && i < commits.size(); i = next++) {
      out.clear();
      s = scan_commit(own.get(), odb.get(), commits[i], det, **scratch, opts, out, st);
      for (Finding& f : out) local.emplace_back(i, std::move(f));
    }
    std::lock_guard lk(mu);
    if (!s.ok() && first_error.ok()) first_error = s;
    for (auto& f : local) found.push_back(std::move(f));
    totals.files_scanned += st.files_scanned;
    totals.bytes_scanned += st.bytes_scanned;
    totals.files_skipped_binary += st.files_skipped_binary;
    totals.files_skipped_large += st.files_skipped_large;
    totals.files_skipped_allowlisted += st.files_skipped_allowlisted;
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < nthreads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (!first_error.ok()) return first_error;

  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  ScanReport report;
  report.root = repo_path;
  for (auto& [i, f] : found) report.findings.push_back(std::move(f));
  report.stats = totals;
  report.stats.commits_scanned = commits.size();
  finish_report(*setup, report);
  report.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace ferry::scan
