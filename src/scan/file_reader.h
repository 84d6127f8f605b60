// Reading one file of a scanned tree into memory: the scanner's only file access, with its
// limits (size cap, binary files, files that are not regular) in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

namespace ferry::scan {

// A file whose first kBinaryProbe bytes hold a NUL byte is binary and not scanned.
inline constexpr size_t kBinaryProbe = 8192;
// The first read of a file: enough for most source files in one call.
inline constexpr size_t kFirstBlock = 64 * 1024;

enum class ReadResult { kOk, kUnreadable, kTooLarge, kBinary };

// A growable byte buffer that, unlike std::string::resize, does not zero what it adds. One
// per worker thread, reused for every file it reads. Not thread-safe.
class ReadBuffer {
 public:
  // Room for `n` bytes; the first `keep` bytes held are kept when the buffer grows.
  char* reserve(size_t n, size_t keep = 0);
  std::string_view view(size_t n) const { return {data_.get(), n}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_ = 0;
};

// Whether `data` holds a NUL byte in its first kBinaryProbe bytes.
bool looks_binary(std::string_view data);

// Reads file `name` of directory `dirfd` (AT_FDCWD and a full path for a single file) into
// `buf`; on kOk `out` views the content (valid until `buf` is used again).
//   kTooLarge   the file holds more than `max_size` bytes (at most the first block was read);
//   kBinary     its first kBinaryProbe bytes hold a NUL (at most the first block was read);
//   kUnreadable it cannot be opened or read, or it turned out not to be a regular file.
// Never follows a symlink (O_NOFOLLOW) and never blocks (O_NONBLOCK), whatever was swapped in
// for the file after the walk listed it as regular.
//
// Most files cost three system calls: open, one read of up to kFirstBlock bytes, close. A
// read that returns fewer bytes than asked is the whole file (a regular file reads short only
// at its end), so such a file is not fstat'ed: the directory listing (getdents' d_type)
// already said it is regular. A file that fills the first block (its size decides the buffer
// and the cap) or reads empty is fstat'ed and refused unless regular: so a FIFO swapped in
// with no data, or one whose writer filled it, or a device like /dev/zero or /dev/null, is
// refused. What is not refused: a FIFO swapped in whose writer has less than a block ready;
// its bytes are scanned, read without waiting (bytes the writer could have put in a file).
ReadResult read_file(int dirfd, const char* name, uint64_t max_size, ReadBuffer& buf,
                     std::string_view& out);

}  // namespace ferry::scan
