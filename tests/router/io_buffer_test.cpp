// IoBuffer (router/io_buffer.h): a pooled buffer gives its block back only when it holds
// nothing, and takes one again when next read into.
#include "router/io_buffer.h"

#include <gtest/gtest.h>

#include <cstring>

namespace ferry::routing {
namespace {

TEST(IoBuffer, AnEmptyPooledBufferGivesItsBlockBackAndTakesOneWhenNextUsed) {
  BufferPool pool(64, 4);
  IoBuffer b(pool, 1024);
  size_t room = 0;
  char* at = b.prepare(&room);
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(room, 64u);
  const char* block = at;
  std::memcpy(at, "abc", 3);
  b.commit(3);

  b.release();  // holds bytes: kept
  EXPECT_EQ(b.view(), "abc");
  std::unique_ptr<char[]> other = pool.take();
  EXPECT_NE(other.get(), block) << "the block was given back while it held bytes";

  b.consume(3);
  b.release();
  EXPECT_TRUE(b.empty());
  std::unique_ptr<char[]> given = pool.take();
  EXPECT_EQ(given.get(), block) << "the empty buffer's block is not back in the pool";
  pool.give(std::move(given));

  at = b.prepare(&room);  // takes a block again
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(room, 64u);
  std::memcpy(at, "de", 2);
  b.commit(2);
  EXPECT_EQ(b.view(), "de");
}

TEST(IoBuffer, AGrownBufferIsNotGivenToThePool) {
  BufferPool pool(8, 4);
  IoBuffer b(pool, 64);
  size_t room = 0;
  char* at = b.prepare(&room);
  std::memset(at, 'x', room);
  b.commit(room);
  at = b.prepare(&room);  // full: grows to 16
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(room, 8u);
  b.clear();
  b.release();  // not the pool's size: kept, so the pool stays empty
  at = b.prepare(&room);
  EXPECT_EQ(room, 16u);
}

}  // namespace
}  // namespace ferry::routing
