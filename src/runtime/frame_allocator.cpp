#include "spindle/runtime/detail/frame_allocator.hpp"

#include <array>
#include <cstddef>
#include <new>

namespace spindle::detail {
namespace {

constexpr std::size_t kClassCount = kMaxRecycledFrame / kFrameSizeClass;

struct FreeBlock {
  FreeBlock* next;
};

// One per thread. A block freed on another thread than the one that carved it simply joins that thread's
// list: every block of a class has the same size, whichever slab it came from.
struct ThreadFrameCache {
  std::array<FreeBlock*, kClassCount> heads{};
  FrameStats stats;
};

thread_local ThreadFrameCache t_cache;

[[maybe_unused]] constexpr std::size_t class_index(std::size_t size) { return (size - 1) / kFrameSizeClass; }
[[maybe_unused]] constexpr std::size_t class_bytes(std::size_t index) { return (index + 1) * kFrameSizeClass; }

// Carves a new slab into blocks of class `index`: returns one, lists the others.
[[maybe_unused]] void* refill(ThreadFrameCache& cache, std::size_t index) {
  const std::size_t block = class_bytes(index);
  const std::size_t count = kFrameSlabBytes / block;
  auto* slab = static_cast<std::byte*>(::operator new(count* block));
  for (std::size_t i = 1; i < count; ++i) cache.heads[index] = new (slab + i * block) FreeBlock{cache.heads[index]};
  return slab;
}

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
      ++cache.stats.recycled;
      return block;
    }
    return refill(cache, index);
  }
#endif
  return ::operator new(size);
}

void deallocate_frame(void* frame, std::size_t size) noexcept {
#if SPINDLE_FRAME_RECYCLING
  if (size <= kMaxRecycledFrame) {
    ThreadFrameCache& cache = t_cache;
    const std::size_t index = class_index(size);
    cache.heads[index] = new (frame) FreeBlock{cache.heads[index]};
    return;
  }
#else
  (void)size;
#endif
  ::operator delete(frame);
}

FrameStats frame_stats() noexcept { return t_cache.stats; }

}  // namespace spindle::detail
