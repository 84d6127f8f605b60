#include "server/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/clock.h"
#include "store/store_url.h"

namespace ferry {

namespace {

constexpr size_t kMaxOwnerLine = 512;

std::string read_owner(int fd) {
  char buf[kMaxOwnerLine];
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  std::string s(buf, static_cast<size_t>(n));
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0')) s.pop_back();
  // The file is ours, but a message must stay one printable line.
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
}

}  // namespace

Result<DataDirLock> DataDirLock::acquire(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return internal_error("cannot open the server lock " + path + ": " + std::strerror(errno));
  DataDirLock lock(fd, path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK)
      return internal_error("cannot lock " + path + ": " + std::strerror(err));
    const std::string owner = read_owner(fd);
    return failed_precondition(
        "another ferry server holds the lock " + path +
        (owner.empty() ? std::string(" (it has not written its pid yet)") : " (" + owner + ")") +
        ": two servers on one store would both run deployments; stop that server first, or "
        "give this one its own server.data_dir and server.store");
  }
  FERRY_RETURN_IF_ERROR(lock.describe_owner(""));
  return lock;
}

Result<std::vector<DataDirLock>> DataDirLock::acquire_for_server(const std::string& data_dir,
                                                                 const std::string& store_url) {
  std::vector<DataDirLock> out;
  auto dir_lock = acquire(data_dir + "/server.lock");
  if (!dir_lock.ok()) return dir_lock.status();
  const std::string own = std::filesystem::weakly_canonical(data_dir + "/server.lock").string();
  out.push_back(std::move(*dir_lock));
  const std::string db = sqlite_file_of(store_url);
  if (!db.empty() && db != ":memory:") {
    std::error_code ec;
    const auto parent = std::filesystem::path(db).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    const std::string store_lock = db + ".server-lock";
    if (std::filesystem::weakly_canonical(store_lock, ec).string() != own) {
      auto l = acquire(store_lock);
      if (!l.ok()) return l.status();
      out.push_back(std::move(*l));
    }
  }
  return out;
}

DataDirLock::DataDirLock(DataDirLock&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) {
  o.fd_ = -1;
}

DataDirLock& DataDirLock::operator=(DataDirLock&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    path_ = std::move(o.path_);
    o.fd_ = -1;
  }
  return *this;
}

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor drops the flock
}

Status DataDirLock::describe_owner(const std::string& listen) {
  std::string line = "pid " + std::to_string(getpid());
  if (!listen.empty()) line += ", listening on " + listen;
  line += ", started " + format_rfc3339(SystemClock().now()) + "\n";
  if (line.size() >= kMaxOwnerLine) line.resize(kMaxOwnerLine - 1);
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, line.data(), line.size(), 0) < 0)
    return internal_error("cannot write " + path_ + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace ferry
