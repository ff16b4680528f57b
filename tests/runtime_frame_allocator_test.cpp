#include "spindle/runtime/detail/frame_allocator.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <thread>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/task.hpp"

using spindle::Task;
using spindle::detail::frame_stats;

namespace {

Task<int> small_frame(int x) { co_return x * 2; }

// The buffer escapes (to an empty asm block) after the await, so no optimiser can drop it from the frame.
Task<int> frame_with_buffer() {
  std::array<char, 1000> buffer{};
  std::memset(buffer.data(), 1, buffer.size());
  co_await small_frame(1);
  asm volatile("" : : "r"(buffer.data()) : "memory");
  co_return buffer[999];
}

// Tasks are kept in a vector so that they escape: clang elides the allocation of a coroutine frame whose
// whole life it can see (HALO), and then nothing reaches the allocator.
TEST(FrameAllocator, FramesGoThroughThePromiseAndTheirSizesAreVisible) {
  std::vector<Task<int>> kept;
  const auto before = frame_stats().allocations;
  kept.push_back(small_frame(1));
  EXPECT_EQ(frame_stats().allocations, before + 1);
  const std::size_t small = frame_stats().last_size;
  EXPECT_GT(small, 0u);
  EXPECT_LT(small, 256u);  // a frame with one int parameter and no locals kept across awaits

  kept.push_back(frame_with_buffer());
  // A local array that lives across an await is kept in the frame by every compiler.
  EXPECT_GE(frame_stats().last_size, 1000u);
}

TEST(FrameAllocator, RecyclesFramesOfTheSameSizeClass) {
  std::vector<Task<int>> kept;
  kept.reserve(1);
  kept.push_back(small_frame(1));
  kept.clear();
  const auto before = frame_stats();
  for (int i = 0; i < 100; ++i) {
    kept.push_back(small_frame(i));
    kept.clear();
  }
  const auto after = frame_stats();
  EXPECT_EQ(after.allocations - before.allocations, 100u);
#if SPINDLE_FRAME_RECYCLING
  EXPECT_EQ(after.recycled - before.recycled, 100u);
#else
  EXPECT_EQ(after.recycled - before.recycled, 0u);  // off under ASan, so it sees every free
#endif
}

TEST(FrameAllocator, LargeFramesBypassTheCache) {
  void* big = spindle::detail::allocate_frame(spindle::detail::kMaxRecycledFrame + 1);
  ASSERT_NE(big, nullptr);
  std::memset(big, 0xab, spindle::detail::kMaxRecycledFrame + 1);
  spindle::detail::deallocate_frame(big, spindle::detail::kMaxRecycledFrame + 1);
  const auto before = frame_stats().recycled;
  void* again = spindle::detail::allocate_frame(spindle::detail::kMaxRecycledFrame + 1);
  EXPECT_EQ(frame_stats().recycled, before);
  spindle::detail::deallocate_frame(again, spindle::detail::kMaxRecycledFrame + 1);
}

TEST(FrameAllocator, FramesFreedOnAnotherThreadAreSafe) {
  Task<int> task = small_frame(3);
  std::thread([t = std::move(task)]() mutable { t = Task<int>{}; }).join();
  spindle::Runtime runtime;
  EXPECT_EQ(runtime.block_on(small_frame(4)), 8);
}

// A thread that only allocates (a feeder spawning tasks) while another only frees (the worker running
// them): the freeing thread hands its surplus to the shared depot and the allocating one takes it from
// there, so memory is reused instead of new slabs being carved every round.
TEST(FrameAllocator, BlocksFreedOnOneThreadServeAllocationsOnAnother) {
  if (!SPINDLE_FRAME_RECYCLING) GTEST_SKIP() << "recycling is off under AddressSanitizer";
  constexpr std::size_t kSize = 48;
  constexpr int kBlocks = 4000;  // 3 slabs of 48-byte blocks per round
  constexpr int kRounds = 50;
  std::uint64_t slabs = 0;
  std::thread([&slabs] {
    const std::uint64_t before = frame_stats().slabs;
    for (int round = 0; round < kRounds; ++round) {
      std::vector<void*> blocks;
      for (int i = 0; i < kBlocks; ++i) blocks.push_back(spindle::detail::allocate_frame(kSize));
      std::thread([&blocks] {
        for (void* block : blocks) spindle::detail::deallocate_frame(block, kSize);
      }).join();  // the freeing thread exits: what it kept goes to the depot too
    }
    slabs = frame_stats().slabs - before;
  }).join();
  // Without the depot: 50 rounds x 3 slabs. With it: the first round's slabs, then reuse.
  EXPECT_LE(slabs, 4u);
}

}  // namespace
