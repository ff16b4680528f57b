#pragma once
// Coroutine frames (and task headers) come from a per-thread recycling allocator: a server allocates and
// frees the same few frame sizes over and over, and a size-class free list turns malloc/free into a
// pointer pop/push (Asio caches awaitable frames the same way). Blocks are carved from 64 KiB slabs, so a
// frame costs its size rounded up to 16 bytes, without malloc's per-block header: that is what brings an
// idle task (header + frame) to 256 bytes. Freed blocks go to the freeing thread's list and are reused;
// a thread holding more than 128 free blocks of a class, or exiting, hands them to a shared depot where
// other threads find them before carving new slabs (a task spawned on one worker may end on another).
// Memory is never returned to the system: it stays at its peak (a deliberate trade, as in Seastar).
// Under AddressSanitizer recycling is off, so ASan sees every frame free and a use-after-free cannot hide
// in a recycled block.

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
/// Size classes are multiples of this (the alignment operator new guarantees).
inline constexpr std::size_t kFrameSizeClass = 16;
/// Blocks of one class are carved from slabs of this size.
inline constexpr std::size_t kFrameSlabBytes = 64 * 1024;

/// Counters of this thread's frame allocations, for tests and for reporting frame sizes per compiler.
struct FrameStats {
  std::uint64_t allocations = 0;  ///< frames allocated on this thread
  std::uint64_t recycled = 0;     ///< of those, served from a free list
  std::size_t last_size = 0;      ///< size of the most recent frame, as the compiler asked for it
  std::uint64_t slabs = 0;        ///< slabs this thread carved (the rest came from free lists)
};
FrameStats frame_stats() noexcept;

/// A standard allocator on the frame allocator, for the objects a server holds one of per connection
/// (a WebSocket's state, by allocate_shared): size classes instead of malloc, so no per-block header, and
/// no interleaving with the short-lived allocations of the request that created them, which would leave
/// holes behind once those are freed.
template <class T>
struct FrameAllocator {
  using value_type = T;
  FrameAllocator() noexcept = default;
  template <class U>
  FrameAllocator(const FrameAllocator<U>&) noexcept {}  // NOLINT: rebinding is implicit by design
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_frame(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { deallocate_frame(p, n * sizeof(T)); }
  friend bool operator==(FrameAllocator, FrameAllocator) noexcept { return true; }
};

}  // namespace spindle::detail
