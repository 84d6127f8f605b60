// read_file (scan/file_reader.h): whole files in one read where it can, exact size caps below
// and above the first block, binary files dropped after it, and whatever is swapped in for a
// file (FIFO, device) never waited on.
#include "scan/file_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>

#include "scan/scanner.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::kAlnum;
using testing::rnd;
using testing::TempDir;

ReadResult read_path(const std::string& path, uint64_t max, ReadBuffer& buf, std::string& got) {
  std::string_view out;
  const ReadResult r = read_file(AT_FDCWD, path.c_str(), max, buf, out);
  got = r == ReadResult::kOk ? std::string(out) : std::string();
  return r;
}

// Sizes around the first block: the content comes back whole (the first block is kept when
// the buffer grows for the rest), with one buffer reused from large to small files.
TEST(FileReader, ReadsEveryByteOfFilesAroundTheFirstBlock) {
  TempDir d;
  ReadBuffer buf;
  const size_t sizes[] = {
      0, 1, kBinaryProbe, kFirstBlock - 1, kFirstBlock, kFirstBlock + 1, 3 * kFirstBlock + 17, 5};
  unsigned seed = 1;
  for (size_t n : sizes) {
    const std::string content = rnd(kAlnum, n, seed++);
    const std::string p = d.write("f" + std::to_string(n), content);
    std::string got;
    ASSERT_EQ(read_path(p, 20u << 20, buf, got), ReadResult::kOk) << n;
    EXPECT_EQ(got, content) << n;
  }
}

// The cap holds to the byte whether it is below the first block or above it, and the largest
// cap (no limit) does not wrap around.
TEST(FileReader, SizeCapIsExactBelowAndAboveTheFirstBlock) {
  TempDir d;
  ReadBuffer buf;
  std::string got;
  for (uint64_t cap :
       {uint64_t{0}, uint64_t{100}, uint64_t{kFirstBlock}, uint64_t{kFirstBlock} * 2 + 3}) {
    const std::string at = d.write("at", std::string(cap, 'a'));
    const std::string over = d.write("over", std::string(cap + 1, 'a'));
    EXPECT_EQ(read_path(at, cap, buf, got), ReadResult::kOk) << cap;
    EXPECT_EQ(got.size(), cap);
    EXPECT_EQ(read_path(over, cap, buf, got), ReadResult::kTooLarge) << cap;
  }
  const std::string big = d.write("big", std::string(kFirstBlock * 2, 'b'));
  EXPECT_EQ(read_path(big, std::numeric_limits<uint64_t>::max(), buf, got), ReadResult::kOk);
  EXPECT_EQ(got.size(), kFirstBlock * 2);
}

TEST(FileReader, ANulInTheFirstProbeMakesAFileBinary) {
  TempDir d;
  ReadBuffer buf;
  std::string got;
  std::string small(100, 'x');
  small[50] = '\0';
  std::string large(kFirstBlock * 3, 'x');
  large[kBinaryProbe - 1] = '\0';
  std::string late(kFirstBlock * 3, 'x');
  late[kBinaryProbe + 1] = '\0';  // past the probe: text, as before
  EXPECT_EQ(read_path(d.write("small", small), 20u << 20, buf, got), ReadResult::kBinary);
  EXPECT_EQ(read_path(d.write("large", large), 20u << 20, buf, got), ReadResult::kBinary);
  EXPECT_EQ(read_path(d.write("late", late), 20u << 20, buf, got), ReadResult::kOk);
  EXPECT_EQ(got, late);
}

// What a swapped-in FIFO or device gives: refused, and never waited on, unless a writer has
// less than a block of data ready (scanned, as documented in file_reader.h).
TEST(FileReader, FifosAndDevicesAreNeverWaitedOnAndRefusedUnlessTheyHoldData) {
  TempDir d;
  ReadBuffer buf;
  std::string got;
  const std::string fifo = d.str() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // No writer: reads empty, then fstat says it is no regular file.
  EXPECT_EQ(read_path(fifo, 20u << 20, buf, got), ReadResult::kUnreadable);
  // A writer that holds it open without writing: the read would block without O_NONBLOCK.
  const int keep_reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(keep_reader, 0);
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  ASSERT_GE(writer, 0);
  EXPECT_EQ(read_path(fifo, 20u << 20, buf, got), ReadResult::kUnreadable);
  // A writer that filled the pipe: the first block comes back full, fstat refuses it.
  std::string chunk(4096, 'p');
  while (::write(writer, chunk.data(), chunk.size()) > 0) {
  }
  EXPECT_EQ(read_path(fifo, 20u << 20, buf, got), ReadResult::kUnreadable);
  // Drain it, then a little data: scanned without waiting for more.
  char sink[4096];
  while (::read(keep_reader, sink, sizeof sink) > 0) {
  }
  ASSERT_EQ(::write(writer, "hello\n", 6), 6);
  EXPECT_EQ(read_path(fifo, 20u << 20, buf, got), ReadResult::kOk);
  EXPECT_EQ(got, "hello\n");
  ::close(writer);
  ::close(keep_reader);
  // Devices: /dev/null reads empty, /dev/zero fills the block; both refused by fstat.
  EXPECT_EQ(read_path("/dev/null", 20u << 20, buf, got), ReadResult::kUnreadable);
  EXPECT_EQ(read_path("/dev/zero", 20u << 20, buf, got), ReadResult::kUnreadable);
  // A directory swapped in for a file: its read fails.
  EXPECT_EQ(read_path(d.str(), 20u << 20, buf, got), ReadResult::kUnreadable);
}

// Files that grow and shrink while the scan reads them (between the listing, the first read,
// the fstat and the rest): the scan ends, and a file nobody touches is still reported.
TEST(FileReader, FilesChangingSizeDuringTheScanEndItCleanly) {
  TempDir d;
  const std::string secret = std::string("gh") + "p_" + rnd(kAlnum, 36, 5);
  d.write("stable/config.txt", "token " + secret + "\n");
  constexpr int kFiles = 200;
  for (int i = 0; i < kFiles; ++i)
    d.write("moving/" + std::to_string(i) + ".txt", std::string(kFirstBlock + 100, 'm'));
  std::atomic<bool> stop{false};
  std::thread resizer([&] {
    for (unsigned round = 0; !stop.load(); ++round) {
      for (int i = 0; i < kFiles && !stop.load(); ++i) {
        const std::string p = d.str() + "/moving/" + std::to_string(i) + ".txt";
        const off_t sizes[] = {0, 10, static_cast<off_t>(kFirstBlock),
                               static_cast<off_t>(3 * kFirstBlock)};
        if (::truncate(p.c_str(), sizes[(round + static_cast<unsigned>(i)) % 4]) != 0) return;
      }
    }
  });
  ScanOptions o;
  o.threads = 2;
  o.no_default_ignore_file = true;
  for (int run = 0; run < 5; ++run) {
    auto r = scan_path(d.str(), o);
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    ASSERT_EQ(r->findings.size(), 1u);
    EXPECT_EQ(r->findings[0].secret, secret);
    EXPECT_EQ(r->findings[0].file, "stable/config.txt");
    EXPECT_EQ(r->stats.files_scanned + r->stats.files_unreadable + r->stats.files_skipped_binary +
                  r->stats.files_skipped_large,
              static_cast<uint64_t>(kFiles + 1));
  }
  stop = true;
  resizer.join();
}

}  // namespace
}  // namespace ferry::scan
