// The scanner never waits on a FIFO and never follows a link swapped in for a file
// (issue 13, item 7): files are opened O_NOFOLLOW | O_NONBLOCK and read only when regular.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "scan/scanner.h"
#include "scan/tokens.h"

namespace ferry::scan {
namespace {

using testing::TempDir;

TEST(ScanSpecialFiles, FifosSwappedInDuringTheWalkAreSkippedNotWaitedOn) {
  TempDir d;
  constexpr int kFiles = 1500;
  for (int i = 0; i < kFiles; ++i) d.write("f/" + std::to_string(i) + ".txt", "nothing\n");
  ScanProgress progress;
  ScanOptions o;
  o.threads = 1;
  o.progress = &progress;
  // Once the first file was read, every file not yet read becomes a FIFO nobody writes
  // to: an open without O_NONBLOCK would block for ever.
  std::atomic<bool> swapped{false};
  std::thread swapper([&] {
    while (progress.files.load() == 0) std::this_thread::yield();
    for (int i = kFiles - 1; i >= 0; --i) {
      const std::string p = d.str() + "/f/" + std::to_string(i) + ".txt";
      const std::string tmp = p + ".fifo";
      if (::mkfifo(tmp.c_str(), 0600) == 0) ::rename(tmp.c_str(), p.c_str());
    }
    swapped = true;
  });
  auto scan = std::async(std::launch::async, [&] { return scan_path(d.str(), o); });
  const bool finished = scan.wait_for(std::chrono::seconds(60)) == std::future_status::ready;
  swapper.join();
  if (!finished) {
    // Unblock the stuck reader (open for writing) so the test can end, then fail.
    for (int i = 0; i < kFiles; ++i) {
      const int fd =
          ::open((d.str() + "/f/" + std::to_string(i) + ".txt").c_str(), O_WRONLY | O_NONBLOCK);
      if (fd >= 0) ::close(fd);
    }
  }
  ASSERT_TRUE(finished) << "the scan blocked on a FIFO";
  auto r = scan.get();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(swapped);
  EXPECT_LT(r->stats.files_scanned, static_cast<uint64_t>(kFiles)) << "no file was swapped in time";
}

TEST(ScanSpecialFiles, ALinkSwappedInForAFileIsNotFollowed) {
  TempDir d;
  TempDir outside;
  const std::string secret = std::string("gh") + "p_" + testing::rnd(testing::kAlnum, 36, 9);
  outside.write("secret.txt", "token " + secret + "\n");
  constexpr int kFiles = 1500;
  for (int i = 0; i < kFiles; ++i) d.write("f/" + std::to_string(i) + ".txt", "nothing\n");
  ScanProgress progress;
  ScanOptions o;
  o.threads = 1;
  o.progress = &progress;
  std::thread swapper([&] {
    while (progress.files.load() == 0) std::this_thread::yield();
    for (int i = kFiles - 1; i >= 0; --i) {
      const std::string p = d.str() + "/f/" + std::to_string(i) + ".txt";
      const std::string tmp = p + ".lnk";
      if (::symlink((outside.str() + "/secret.txt").c_str(), tmp.c_str()) == 0)
        ::rename(tmp.c_str(), p.c_str());
    }
  });
  auto r = scan_path(d.str(), o);
  swapper.join();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->findings.empty()) << "followed a link out of the tree to " << r->findings[0].file;
  EXPECT_LT(r->stats.files_scanned, static_cast<uint64_t>(kFiles));
}

}  // namespace
}  // namespace ferry::scan
