// A byte buffer for one side of a proxied connection: unread bytes sit in [begin, end);
// reads append at end, parsing consumes from begin. It grows (up to a limit) only when a
// single message head does not fit, and is reused across requests, so steady-state
// proxying allocates nothing here. The bytes are not zeroed: only [begin, end) is ever
// read, and an HTTP/2 stream makes a session (two buffers) per request; those come from a
// per-thread pool.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace ferry::routing {

// Spare blocks of one size for IoBuffers, kept up to a count. One thread only; it must
// outlive the buffers made from it.
class BufferPool {
 public:
  BufferPool(size_t block, size_t keep) : block_(block), keep_(keep) {}
  size_t block() const { return block_; }
  std::unique_ptr<char[]> take() {
    if (free_.empty()) return std::unique_ptr<char[]>(new char[block_]);
    std::unique_ptr<char[]> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  // `b` must hold block() bytes.
  void give(std::unique_ptr<char[]> b) {
    if (free_.size() < keep_) free_.push_back(std::move(b));
  }

 private:
  size_t block_;
  size_t keep_;
  std::vector<std::unique_ptr<char[]>> free_;
};

class IoBuffer {
 public:
  IoBuffer(size_t initial, size_t limit) : data_(new char[initial]), cap_(initial), limit_(limit) {}
  // Starts with a block of `pool` (its size) and gives it back at the end unless it grew.
  IoBuffer(BufferPool& pool, size_t limit)
      : data_(pool.take()), cap_(pool.block()), limit_(limit), pool_(&pool) {}
  ~IoBuffer() {
    if (pool_ != nullptr && data_ && cap_ == pool_->block()) pool_->give(std::move(data_));
  }
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;

  const char* data() const { return data_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  std::string_view view(size_t offset = 0) const { return {data() + offset, size() - offset}; }

  // Room to read into: moves unread bytes to the front and grows up to the limit when the
  // unread bytes fill it. Returns nullptr and 0 room when the buffer is full at its limit.
  char* prepare(size_t* room) {
    if (!data_) data_ = pool_->take();  // released while idle
    if (begin_ == end_) begin_ = end_ = 0;
    if (end_ == cap_ && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == cap_ && cap_ < limit_) {
      size_t cap = cap_ * 2 < limit_ ? cap_ * 2 : limit_;
      std::unique_ptr<char[]> bigger(new char[cap]);
      std::memcpy(bigger.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
      data_ = std::move(bigger);
      cap_ = cap;
    }
    *room = cap_ - end_;
    return *room == 0 ? nullptr : data_.get() + end_;
  }
  void commit(size_t n) { end_ += n; }
  void consume(size_t n) {
    begin_ += n;
    if (begin_ >= end_) begin_ = end_ = 0;
  }
  void clear() { begin_ = end_ = 0; }
  // A pooled buffer holding nothing gives its block back (an idle connection then holds
  // none); the next prepare() takes one again. Otherwise nothing happens.
  void release() {
    if (pool_ == nullptr || !data_ || begin_ != end_ || cap_ != pool_->block()) return;
    pool_->give(std::move(data_));
    data_.reset();
    begin_ = end_ = 0;
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_;
  size_t limit_;
  size_t begin_ = 0;
  size_t end_ = 0;
  BufferPool* pool_ = nullptr;
};

}  // namespace ferry::routing
