#include "spindle/runtime/detail/frame_allocator.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

namespace spindle::detail {
namespace {

constexpr std::size_t kClassCount = kMaxRecycledFrame / kFrameSizeClass;

struct FreeBlock {
  FreeBlock* next;
  FreeBlock* next_batch;  // in the depot only: the next batch of the same class
};
static_assert(sizeof(FreeBlock) <= kFrameSizeClass);

// A thread keeps at most this many free blocks of a class; past it, a batch moves to the depot.
[[maybe_unused]] constexpr std::uint32_t kTransferBatch = 64;
[[maybe_unused]] constexpr std::uint32_t kHighWater = 2 * kTransferBatch;

// Free blocks that no thread holds: batches handed over by threads that free more than they allocate
// (with work stealing, a task spawned on one worker often ends on another) and the lists of threads that
// exit. A thread that runs out takes a batch from here before it carves a new slab, so memory freed on
// one thread serves allocations on another (tcmalloc's transfer cache, in miniature).
struct Depot {
  std::mutex mutex;
  std::array<FreeBlock*, kClassCount> batches{};
};
Depot& depot() {
  static Depot* const instance = new Depot;  // never destroyed: threads may exit after static destruction
  return *instance;
}

struct ThreadFrameCache {
  std::array<FreeBlock*, kClassCount> heads{};
  std::array<std::uint32_t, kClassCount> counts{};
  FrameStats stats;

  ~ThreadFrameCache() {
    for (std::size_t index = 0; index < kClassCount; ++index) {
      if (heads[index] != nullptr) give_batch(index, heads[index]);
    }
  }
  static void give_batch(std::size_t index, FreeBlock* batch) {
    Depot& shared = depot();
    std::lock_guard lock(shared.mutex);
    batch->next_batch = shared.batches[index];
    shared.batches[index] = batch;
  }
};

thread_local ThreadFrameCache t_cache;

[[maybe_unused]] constexpr std::size_t class_index(std::size_t size) { return (size - 1) / kFrameSizeClass; }
[[maybe_unused]] constexpr std::size_t class_bytes(std::size_t index) { return (index + 1) * kFrameSizeClass; }

// Refills an empty list of class `index` from the depot, or else by carving a new slab; returns one block.
[[maybe_unused]] void* refill(ThreadFrameCache& cache, std::size_t index) {
  FreeBlock* batch = nullptr;
  {
    Depot& shared = depot();
    std::lock_guard lock(shared.mutex);
    batch = shared.batches[index];
    if (batch != nullptr) shared.batches[index] = batch->next_batch;
  }
  if (batch != nullptr) {
    std::uint32_t count = 0;
    for (FreeBlock* block = batch->next; block != nullptr; block = block->next) ++count;
    cache.heads[index] = batch->next;
    cache.counts[index] = count;
    return batch;
  }
  ++cache.stats.slabs;
  const std::size_t block = class_bytes(index);
  const std::size_t count = kFrameSlabBytes / block;
  auto* slab = static_cast<std::byte*>(::operator new(count* block));
  for (std::size_t i = 1; i < count; ++i)
    cache.heads[index] = new (slab + i * block) FreeBlock{cache.heads[index], nullptr};
  cache.counts[index] = static_cast<std::uint32_t>(count - 1);
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
      --cache.counts[index];
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
    cache.heads[index] = new (frame) FreeBlock{cache.heads[index], nullptr};
    if (++cache.counts[index] > kHighWater) {
      // Hand the most recently freed blocks over, keep the rest: cut the list after kTransferBatch.
      FreeBlock* batch = cache.heads[index];
      FreeBlock* last = batch;
      for (std::uint32_t i = 1; i < kTransferBatch; ++i) last = last->next;
      cache.heads[index] = last->next;
      last->next = nullptr;
      cache.counts[index] -= kTransferBatch;
      ThreadFrameCache::give_batch(index, batch);
    }
    return;
  }
#else
  (void)size;
#endif
  ::operator delete(frame);
}

FrameStats frame_stats() noexcept { return t_cache.stats; }

}  // namespace spindle::detail
