// scan_git: the lines each commit added, read with libgit2 one file diff at a time.
#include <git2.h>

#include <chrono>
#include <ctime>
#include <memory>

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
  auto scratch = det.new_scratch();
  if (!scratch) return scratch.status();
  Odb odb;
  if (git_repository_odb(odb.out(), repo.get()) != 0) return git_failure("opening object database");

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

  ScanReport report;
  report.root = repo_path;
  git_oid oid;
  std::string buf;
  std::vector<int> line_map;
  while (git_revwalk_next(&oid, walk.get()) == 0) {
    if (opts.max_commits && report.stats.commits_scanned >= opts.max_commits) break;
    Commit commit;
    if (git_commit_lookup(commit.out(), repo.get(), &oid) != 0)
      return git_failure("reading commit");
    char hex[GIT_OID_HEXSZ + 1];
    git_oid_tostr(hex, sizeof hex, &oid);
    const std::string commit_id(hex);
    // A merge commit's diff against its first parent repeats the merged branch's commits,
    // which the walk visits anyway.
    if (git_commit_parentcount(commit.get()) > 1 || det.commit_allowed(commit_id)) continue;
    ++report.stats.commits_scanned;
    if (opts.progress) opts.progress->commits.fetch_add(1, std::memory_order_relaxed);
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
    if (git_diff_tree_to_tree(diff.out(), repo.get(), parent_tree.get(), tree.get(), &dopts) != 0) {
      return git_failure("diffing " + commit_id);
    }
    const git_signature* author = git_commit_author(commit.get());
    const size_t ndeltas = git_diff_num_deltas(diff.get());
    for (size_t d = 0; d < ndeltas; ++d) {
      const git_diff_delta* delta = git_diff_get_delta(diff.get(), d);
      if (delta->status != GIT_DELTA_ADDED && delta->status != GIT_DELTA_MODIFIED &&
          delta->status != GIT_DELTA_RENAMED && delta->status != GIT_DELTA_COPIED) {
        continue;
      }
      const std::string path = delta->new_file.path ? delta->new_file.path : "";
      if (det.path_allowed(path)) {
        ++report.stats.files_skipped_allowlisted;
        continue;
      }
      // Look at the blob's size before loading it: memory stays bounded by max_file_size.
      size_t size = 0;
      git_object_t type;
      if (git_odb_read_header(&size, &type, odb.get(), &delta->new_file.id) != 0) continue;
      if (size > opts.max_file_size) {
        ++report.stats.files_skipped_large;
        continue;
      }
      Patch patch;
      if (git_patch_from_diff(patch.out(), diff.get(), d) != 0) return git_failure("reading diff");
      if (!patch.get() || (git_patch_get_delta(patch.get())->flags & GIT_DIFF_FLAG_BINARY)) {
        ++report.stats.files_skipped_binary;
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
      const size_t before = report.findings.size();
      FERRY_RETURN_IF_ERROR(
          det.detect(buf, Fragment{path, commit_id, &line_map}, **scratch, report.findings));
      ++report.stats.files_scanned;
      report.stats.bytes_scanned += buf.size();
      if (opts.progress) {
        opts.progress->files.fetch_add(1, std::memory_order_relaxed);
        opts.progress->bytes.fetch_add(buf.size(), std::memory_order_relaxed);
        opts.progress->findings.fetch_add(report.findings.size() - before);
      }
      for (size_t i = before; i < report.findings.size(); ++i) {
        Finding& f = report.findings[i];
        f.author = author && author->name ? author->name : "";
        f.email = author && author->email ? author->email : "";
        f.date = author ? iso_time(author->when.time) : "";
        const char* summary = git_commit_summary(commit.get());
        f.message = summary ? summary : "";
      }
    }
  }
  finish_report(*setup, report);
  report.stats.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace ferry::scan
