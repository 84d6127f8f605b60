#include "scan/db_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <hs/hs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>

#include "common/crypto.h"

namespace ferry::scan {
namespace {

constexpr std::string_view kDbCacheMagic = "ferry-vectorscan-db-1\n";
constexpr size_t kDbCacheHashHex = 64;
// magic, key (hex) '\n', SHA-256 of the payload (hex) '\n', payload.
constexpr size_t kDbCacheHeader = kDbCacheMagic.size() + 2 * (kDbCacheHashHex + 1);

class DbCacheFd {
 public:
  explicit DbCacheFd(int fd) : fd_(fd) {}
  ~DbCacheFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  DbCacheFd(const DbCacheFd&) = delete;
  DbCacheFd& operator=(const DbCacheFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string db_cache_file_name(const std::string& key) {
  return "vs-" + key + ".db";
}

// Owned by us and writable by no one else: what the directory and the file must be.
bool db_cache_private(const struct stat& st) {
  return st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

// Opens `dir` for the cache, refusing a symlink, someone else's directory or one that others
// may write to. -1 (and `why`) when refused or missing.
int db_cache_open_dir(const std::string& dir, std::string* why) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (why) *why = "cache directory " + dir + ": " + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || !db_cache_private(st)) {
    if (why)
      *why = "cache directory " + dir + " is not owned by this user or is writable by others";
    ::close(fd);
    return -1;
  }
  return fd;
}

bool db_cache_write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Removes the oldest databases beyond kMaxDbCacheEntries (rule files edited over time each
// leave one behind).
void db_cache_trim(int dirfd) {
  const int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return;
  }
  std::vector<std::pair<struct timespec, std::string>> dbs;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name.size() < 6 || name.substr(0, 3) != "vs-" || name.substr(name.size() - 3) != ".db") {
      continue;
    }
    struct stat st {};
    if (::fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && dbs.size() < 4096) {
      dbs.emplace_back(st.st_mtim, std::string(name));
    }
  }
  ::closedir(d);
  if (dbs.size() <= kMaxDbCacheEntries) return;
  std::sort(dbs.begin(), dbs.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.tv_sec, a.first.tv_nsec) > std::pair(b.first.tv_sec, b.first.tv_nsec);
  });
  for (size_t i = kMaxDbCacheEntries; i < dbs.size(); ++i) {
    ::unlinkat(dirfd, dbs[i].second.c_str(), 0);
  }
}

}  // namespace

std::string default_db_cache_dir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && x[0] == '/') {
    return std::string(x) + "/ferry";
  }
  if (const char* h = std::getenv("HOME"); h && h[0] == '/') {
    return std::string(h) + "/.cache/ferry";
  }
  return {};
}

std::string db_cache_key(const std::vector<std::string>& patterns,
                         const std::vector<unsigned>& flags, unsigned mode) {
  std::string in = "vectorscan ";
  in += hs_version();
  hs_platform_info_t plat{};
  if (hs_populate_platform(&plat) == HS_SUCCESS) {
    in += " tune " + std::to_string(plat.tune) + " features " + std::to_string(plat.cpu_features);
  }
  in += " mode " + std::to_string(mode) + "\n";
  for (size_t i = 0; i < patterns.size(); ++i) {
    // Length-prefixed: no pattern can be made to look like two.
    in += std::to_string(i) + " " + std::to_string(i < flags.size() ? flags[i] : 0u) + " " +
          std::to_string(patterns[i].size()) + " " + patterns[i] + "\n";
  }
  return sha256_hex(in);
}

hs_database* db_cache_load(const std::string& dir, const std::string& key, std::string* why) {
  if (dir.empty() || key.size() != kDbCacheHashHex) {
    if (why) *why = "no cache";
    return nullptr;
  }
  const DbCacheFd dirfd(db_cache_open_dir(dir, why));
  if (dirfd.get() < 0) return nullptr;
  const std::string name = db_cache_file_name(key);
  const DbCacheFd fd(
      ::openat(dirfd.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    if (why) *why = name + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || !db_cache_private(st)) {
    if (why) *why = name + " is not a regular file owned by this user and writable by no one else";
    return nullptr;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size <= kDbCacheHeader || size > kMaxDbCacheFile) {
    if (why) *why = name + " has an impossible size";
    return nullptr;
  }
  std::string data(static_cast<size_t>(size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::read(fd.get(), data.data() + got, data.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  const std::string_view v(data.data(), got);
  const std::string_view payload = got > kDbCacheHeader ? v.substr(kDbCacheHeader) : "";
  const size_t key_at = kDbCacheMagic.size();
  const size_t sum_at = key_at + kDbCacheHashHex + 1;
  if (got != data.size() || v.substr(0, key_at) != kDbCacheMagic ||
      v.substr(key_at, kDbCacheHashHex) != key || v[key_at + kDbCacheHashHex] != '\n' ||
      v[sum_at + kDbCacheHashHex] != '\n' ||
      v.substr(sum_at, kDbCacheHashHex) != sha256_hex(payload)) {
    if (why) *why = name + " is damaged (key or checksum does not match)";
    return nullptr;
  }
  hs_database_t* db = nullptr;
  if (hs_deserialize_database(payload.data(), payload.size(), &db) != HS_SUCCESS) {
    if (why) *why = name + " is not a database this Vectorscan accepts";
    return nullptr;
  }
  if (why) why->clear();
  return db;
}

bool db_cache_store(const std::string& dir, const std::string& key, const hs_database* db) {
  if (dir.empty() || key.size() != kDbCacheHashHex || !db) return false;
  std::error_code ec;
  const std::filesystem::path p(dir);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return false;
  const DbCacheFd dirfd(db_cache_open_dir(dir, nullptr));
  if (dirfd.get() < 0) return false;
  char* bytes = nullptr;
  size_t len = 0;
  if (hs_serialize_database(db, &bytes, &len) != HS_SUCCESS || !bytes) return false;
  const std::unique_ptr<char, decltype(&std::free)> hold(bytes, &std::free);
  if (len > kMaxDbCacheFile - kDbCacheHeader) return false;
  const std::string_view payload(bytes, len);
  std::string header(kDbCacheMagic);
  header += key + "\n" + sha256_hex(payload) + "\n";
  const std::string name = db_cache_file_name(key);
  const std::string tmp = name + ".tmp-" + random_id("", 8);
  bool ok = false;
  {
    const DbCacheFd fd(::openat(dirfd.get(), tmp.c_str(),
                                O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd.get() < 0) return false;
    ok = db_cache_write_all(fd.get(), header.data(), header.size()) &&
         db_cache_write_all(fd.get(), payload.data(), payload.size());
  }
  if (ok) ok = ::renameat(dirfd.get(), tmp.c_str(), dirfd.get(), name.c_str()) == 0;
  if (!ok) {
    ::unlinkat(dirfd.get(), tmp.c_str(), 0);
    return false;
  }
  db_cache_trim(dirfd.get());
  return true;
}

}  // namespace ferry::scan
