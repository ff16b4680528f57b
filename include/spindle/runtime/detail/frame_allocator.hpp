#pragma once
// Coroutine frames come from a per-thread recycling allocator: a request handler allocates and frees the
// same few frame sizes over and over, and a size-class free list turns malloc/free into a pointer pop/push.
// Asio does the same (awaitable frames cached in thread_info_base). Under AddressSanitizer recycling is
// off, so ASan sees every frame free and a use-after-free cannot hide in a recycled block.

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_FRAME_RECYCLING 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPINDLE_FRAME_RECYCLING 0
#endif
#endif
#ifndef SPINDLE_FRAME_RECYCLING
#define SPINDLE_FRAME_RECYCLING 1
#endif

namespace spindle::detail {

/// Allocates a coroutine frame of `size` bytes; blocks of up to kMaxRecycledFrame bytes are recycled.
void* allocate_frame(std::size_t size);
/// Returns a frame; `size` must be the size it was allocated with (C++ passes it to sized delete).
void deallocate_frame(void* frame, std::size_t size) noexcept;

/// Frames up to this size are recycled; larger ones (rare: a 4 KiB buffer kept in a frame) go to malloc.
inline constexpr std::size_t kMaxRecycledFrame = 2048;
/// Size classes are multiples of this, so frames of similar size share a free list.
inline constexpr std::size_t kFrameSizeClass = 64;
/// Blocks each size class keeps per thread at most: enough for a burst of requests, bounded after it.
inline constexpr std::size_t kMaxFramesPerClass = 256;

/// Counters of this thread's frame allocations, for tests and for reporting frame sizes per compiler.
struct FrameStats {
  std::uint64_t allocations = 0;  ///< frames allocated on this thread
  std::uint64_t recycled = 0;     ///< of those, served from a free list
  std::size_t last_size = 0;      ///< size of the most recent frame, as the compiler asked for it
};
FrameStats frame_stats() noexcept;

}  // namespace spindle::detail
