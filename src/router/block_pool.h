// Memory blocks of one size kept for reuse by one thread, and an allocator over them for
// std::allocate_shared. The router makes a Session (about 2 KiB, past malloc's fast
// per-thread cache) for every HTTP/2 stream; taking the block from here instead costs a
// vector pop. Not thread-safe: the owner (a Worker) uses it on its io thread only, and must
// outlive every block it handed out.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace ferry::routing {

class BlockPool {
 public:
  explicit BlockPool(size_t keep) : keep_(keep) {}
  ~BlockPool() {
    for (void* p : free_) ::operator delete(p);
  }
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // `n` bytes, aligned for any fundamental type. The first size asked for is the pool's;
  // other sizes come from operator new directly.
  void* take(size_t n) {
    if (block_ == 0) block_ = n;
    if (n == block_ && !free_.empty()) {
      void* p = free_.back();
      free_.pop_back();
      return p;
    }
    return ::operator new(n);
  }
  void give(void* p, size_t n) {
    if (n == block_ && free_.size() < keep_) {
      free_.push_back(p);
      return;
    }
    ::operator delete(p);
  }

 private:
  size_t block_ = 0;
  size_t keep_;
  std::vector<void*> free_;
};

template <typename T>
struct PoolAllocator {
  using value_type = T;
  explicit PoolAllocator(BlockPool& p) : pool(&p) {}
  template <typename U>
  PoolAllocator(const PoolAllocator<U>& other) : pool(other.pool) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(pool->take(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { pool->give(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const PoolAllocator<U>& other) const {
    return pool == other.pool;
  }
  BlockPool* pool;
};

}  // namespace ferry::routing
