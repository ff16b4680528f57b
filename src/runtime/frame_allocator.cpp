#include "spindle/runtime/detail/frame_allocator.hpp"

#include <array>
#include <new>

namespace spindle::detail {
namespace {

constexpr std::size_t kClassCount = kMaxRecycledFrame / kFrameSizeClass;

struct FreeBlock {
  FreeBlock* next;
};

// One per thread. Blocks freed on another thread than the one that allocated them simply join that
// thread's lists: every block came from ::operator new with a size of its class, so any list may keep it.
struct ThreadFrameCache {
  std::array<FreeBlock*, kClassCount> heads{};
  std::array<std::size_t, kClassCount> counts{};
  FrameStats stats;

  ~ThreadFrameCache() {
    for (FreeBlock* head : heads) {
      while (head != nullptr) {
        FreeBlock* next = head->next;
        ::operator delete(head);
        head = next;
      }
    }
  }
};

thread_local ThreadFrameCache t_cache;

[[maybe_unused]] constexpr std::size_t class_index(std::size_t size) { return (size - 1) / kFrameSizeClass; }
[[maybe_unused]] constexpr std::size_t class_bytes(std::size_t index) { return (index + 1) * kFrameSizeClass; }

}  // namespace

void* allocate_frame(std::size_t size) {
  ThreadFrameCache& cache = t_cache;
  ++cache.stats.allocations;
  cache.stats.last_size = size;
#if SPINDLE_FRAME_RECYCLING
  if (size <= kMaxRecycledFrame) {
    const std::size_t index = class_index(size);
    if (FreeBlock* block = cache.heads[index]) {
      cache.heads[index] = block->next;
      --cache.counts[index];
      ++cache.stats.recycled;
      return block;
    }
    return ::operator new(class_bytes(index));
  }
#endif
  return ::operator new(size);
}

void deallocate_frame(void* frame, std::size_t size) noexcept {
#if SPINDLE_FRAME_RECYCLING
  if (size <= kMaxRecycledFrame) {
    ThreadFrameCache& cache = t_cache;
    const std::size_t index = class_index(size);
    if (cache.counts[index] < kMaxFramesPerClass) {
      cache.heads[index] = new (frame) FreeBlock{cache.heads[index]};
      ++cache.counts[index];
      return;
    }
  }
#else
  (void)size;
#endif
  ::operator delete(frame);
}

FrameStats frame_stats() noexcept { return t_cache.stats; }

}  // namespace spindle::detail
