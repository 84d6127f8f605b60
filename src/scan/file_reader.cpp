#include "scan/file_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ferry::scan {

char* ReadBuffer::reserve(size_t n, size_t keep) {
  if (n > cap_) {
    cap_ = std::max(n, cap_ * 2);
    auto bigger = std::make_unique_for_overwrite<char[]>(cap_);
    if (keep > 0) std::memcpy(bigger.get(), data_.get(), keep);
    data_ = std::move(bigger);
  }
  return data_.get();
}

bool looks_binary(std::string_view data) {
  return std::memchr(data.data(), '\0', std::min(data.size(), kBinaryProbe)) != nullptr;
}

ReadResult read_file(int dirfd, const char* name, uint64_t max_size, ReadBuffer& buf,
                     std::string_view& out) {
  const int fd = ::openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return ReadResult::kUnreadable;
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // One byte over the cap tells a file over it from one at it.
  const size_t first = max_size < kFirstBlock ? static_cast<size_t>(max_size) + 1 : kFirstBlock;
  char* p = buf.reserve(first);
  ssize_t n;
  do {
    n = ::read(fd, p, first);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ReadResult::kUnreadable;  // EAGAIN (a FIFO or device), EISDIR, EIO ...
  size_t got = static_cast<size_t>(n);
  if (got > 0 && got < first) {
    out = buf.view(got);
    return looks_binary(out) ? ReadResult::kBinary : ReadResult::kOk;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return ReadResult::kUnreadable;
  if (got == 0) {
    out = buf.view(0);
    return ReadResult::kOk;
  }
  if (got > max_size || static_cast<uint64_t>(st.st_size) > max_size) return ReadResult::kTooLarge;
  if (looks_binary({p, got})) return ReadResult::kBinary;
  // The file filled the first block: read the rest of the size fstat gives (a file that
  // grew since is read up to that size; one that shrank, to its end).
  const size_t size = std::max(got, static_cast<size_t>(st.st_size));
  p = buf.reserve(size, got);
  while (got < size) {
    const ssize_t m = ::read(fd, p + got, size - got);
    if (m < 0 && errno == EINTR) continue;
    if (m <= 0) break;
    got += static_cast<size_t>(m);
  }
  out = buf.view(got);
  return ReadResult::kOk;
}

}  // namespace ferry::scan
