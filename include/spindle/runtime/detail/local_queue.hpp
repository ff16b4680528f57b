#pragma once
// LocalQueue: a worker's own run queue in the work-stealing scheduler, after Tokio's
// (tokio/src/runtime/scheduler/multi_thread/queue.rs). The owning worker pushes and pops at its two ends
// without a lock; idle workers steal half of it at a time. When the ring is full the owner moves half of it
// to the scheduler's shared injection queue in one batch, so a burst of spawns costs one lock, not one each.

#include <array>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>

namespace spindle::detail {

/// A bounded ring of `Capacity` task pointers with one producer (the owning worker) and any number of
/// stealers. Nothing here allocates or blocks; the queue does not own the items.
///
/// Indices. `tail` and the two halves of `head` are positions that count pushes and pops since the queue
/// was made, as wrapping u32; a position maps to slot `position % Capacity`. Because Capacity divides 2^32
/// the mapping survives the wrap, and because positions are wider than slot numbers `tail - head` tells a
/// full ring (Capacity) from an empty one (0). The width is also what makes ABA on `head` harmless: a
/// stealer's compare-exchange could only succeed wrongly if the owner went through 2^32 pops between the
/// stealer's load and its compare-exchange.
///
/// Head. One 64-bit atomic holds {steal (high 32 bits), real (low 32 bits)}. `real` is the next position to
/// pop or steal. `steal` equals `real` except while a stealer copies out the batch it claimed: the claim
/// moves only `real` past the batch, so the batch is invisible to everyone else but its slots stay
/// reserved, and when the copy is done the stealer sets `steal = real` again. Hence:
///   - the owner may write position p only if p - steal < Capacity: slots from `steal` on may still be read;
///   - a stealer that sees steal != real gives up: one `steal` can reserve one batch, so one steal at a time
///     per queue (a second batch would lose its reservation when the first stealer ends its own);
///   - the owner's pop moves `real` only, leaving a running steal's `steal` in place, and moves both when
///     no steal runs. The stealer's release loop retries against such pops.
/// Every change to head is a compare-exchange on the whole word, so a claim, a pop and a release of the
/// reservation can never interleave halfway: each one sees the other's result or fails and retries.
///
/// Steal. A stealer takes half, rounded up, of what it sees (tail - real): one steal evens out the load of the
/// two workers and leaves the owner work of its own. With at most Capacity items the batch is at most
/// Capacity / 2, which is why the destination must have half its ring free (counted from its own `steal`,
/// since a third worker may be copying out of it). The batch goes to the destination's ring except its last
/// item, which the stealer runs at once; the others are published with one release store of the
/// destination's tail.
///
/// Overflow. A full ring with no steal running claims its oldest half with one compare-exchange of head
/// (real and steal together), exactly like a stealer that never has to release the reservation, then hands
/// those items and the new one to `overflow`. If a steal is running, that steal is about to free half the
/// ring, so only the new item goes to `overflow` rather than waiting for it.
///
/// Memory orderings. Order comes from three release/acquire pairs on head and tail; the slots take no part:
///   1. owner's release store of tail -> acquire load of tail by a stealer (or len()): the slot writes of a
///      push happen before any thread that sees the new tail reads those slots.
///   2. a stealer's release compare-exchange that ends its steal (steal = real) -> the owner's acquire load
///      of head before a push (and a stealer's acquire load of its destination's head): the stealer's slot
///      reads happen before the owner writes those slots again one lap later, so it cannot read the new
///      item instead of the one it claimed.
///   3. the owner's release compare-exchanges of head (pop, overflow) -> a stealer's acquire load of head:
///      the tail the owner published before moving `real` is visible to the stealer, which reads tail after
///      head, so it never sees real past tail (with wrapping arithmetic that would read as ~2^32 items).
/// Since every write of head is a read-modify-write, an acquire load of head synchronizes with every earlier
/// release on head, not only the latest (the writes form one release sequence). A stealer's claim that fails
/// needs acquire for pair 3 too, as it retries with the head it got and reads tail after it. The acquire
/// halves of the other compare-exchanges (pop, a successful claim, ending a steal) are more than the argument
/// needs; they are kept as in Tokio, whose loom tests exercise these orderings, and cost nothing on x86 (a
/// lock cmpxchg is a full barrier either way). No std::atomic_thread_fence is used: ThreadSanitizer does not
/// model fences.
///
/// Pairs 1 and 2 order every access to a slot, so no slot is ever read and written at once, and Tokio keeps
/// plain cells. Here the slots are std::atomic<T*> with relaxed accesses all the same: that is free on the
/// targets we build for, and a protocol bug that did overlap two accesses would produce a wrong pointer,
/// which the stress tests' exact counts catch, instead of undefined behaviour.
template <class T, std::uint32_t Capacity = 256>
class LocalQueue {
  static_assert(Capacity >= 2 && (Capacity & (Capacity - 1)) == 0, "Capacity must be a power of two, at least 2");
  static_assert(Capacity <= (std::uint32_t{1} << 31), "positions must tell a full ring from an empty one");

 public:
  static constexpr std::uint32_t kCapacity = Capacity;

  LocalQueue() noexcept = default;
  /// Starts every position at `first_index` instead of 0. For tests: a queue that starts just below
  /// UINT32_MAX crosses the u32 wrap in a few hundred operations instead of four billion.
  explicit LocalQueue(std::uint32_t first_index) noexcept : head_(pack(first_index, first_index)), tail_(first_index) {}
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  /// Owner only. Appends `item`; if the ring is full, moves its older half and `item` (in FIFO order) to
  /// `overflow`, a callable `void(T** items, std::size_t count)`. If a steal is running while the ring is
  /// full, `item` alone goes to `overflow`. The items handed over have left the queue, so `overflow` must
  /// not throw; no lock of the queue is held while it runs.
  template <class Overflow>
  void push_back_or_overflow(T* item, Overflow&& overflow) {
    const std::uint32_t tail = tail_.load(std::memory_order_relaxed);  // only this thread writes it
    for (;;) {
      // Acquire: pair 2, the stealer that last freed the slot at `tail` has finished reading it.
      const std::uint64_t head = head_.load(std::memory_order_acquire);
      const std::uint32_t steal = steal_of(head);
      const std::uint32_t real = real_of(head);
      if (tail - steal < Capacity) break;
      if (steal != real) {
        T* single[1] = {item};
        overflow(single, 1);
        return;
      }
      if (push_overflow(item, real, tail, overflow)) return;
      // A stealer claimed items between our load and our compare-exchange: there may be room now.
    }
    buffer_[tail & kMask].store(item, std::memory_order_relaxed);
    tail_.store(tail + 1, std::memory_order_release);  // pair 1
  }

  /// Owner only. Appends `items[0..count)` in order, published together. Requires count <= remaining_slots().
  void push_back_batch(T* const* items, std::size_t count) noexcept {
    if (count == 0) return;
    std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    [[maybe_unused]] const std::uint32_t steal = steal_of(head_.load(std::memory_order_acquire));  // pair 2
    assert(count <= Capacity - (tail - steal) && "push_back_batch: not enough room");
    for (std::size_t i = 0; i < count; ++i, ++tail) buffer_[tail & kMask].store(items[i], std::memory_order_relaxed);
    tail_.store(tail, std::memory_order_release);  // pair 1
  }

  /// Owner only. Takes the oldest item; nullptr when there is none.
  T* pop() noexcept {
    const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    std::uint64_t head = head_.load(std::memory_order_acquire);
    std::uint32_t real;
    for (;;) {
      const std::uint32_t steal = steal_of(head);
      real = real_of(head);
      if (real == tail) return nullptr;
      // While a steal runs its `steal` must stay put: it still reads the slots from there to `real`.
      const std::uint64_t next = steal == real ? pack(real + 1, real + 1) : pack(steal, real + 1);
      // Release: pair 3. On failure we retry with the head that beat us.
      if (head_.compare_exchange_weak(head, next, std::memory_order_acq_rel, std::memory_order_acquire)) break;
    }
    // We wrote this slot ourselves, and the claim above keeps every stealer away from it.
    return buffer_[real & kMask].load(std::memory_order_relaxed);
  }

  /// Called by the owner of `dst`, a worker other than this queue's owner. Moves half, rounded up, of this
  /// queue's items to `dst` and returns the last of them for the caller to run at once (it is not pushed to
  /// `dst`). Returns nullptr if there is nothing to steal, another steal of this queue is running, or `dst`
  /// has less than half its capacity free.
  T* steal_into(LocalQueue& dst) noexcept {
    assert(&dst != this && "a worker cannot steal from itself");
    const std::uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);  // we own dst
    // Acquire: pair 2 for dst, a worker still copying out of dst reserves its slots until it is done.
    const std::uint32_t dst_steal = steal_of(dst.head_.load(std::memory_order_acquire));
    if (dst_tail - dst_steal > Capacity / 2) return nullptr;

    // Claim: move `real` past the batch, keep `steal`, so the slots stay ours until the release below.
    std::uint64_t head = head_.load(std::memory_order_acquire);  // pair 3
    std::uint32_t first = 0;
    std::uint32_t n = 0;
    for (;;) {
      const std::uint32_t steal = steal_of(head);
      const std::uint32_t real = real_of(head);
      if (steal != real) return nullptr;  // another stealer is at work

      const std::uint32_t tail = tail_.load(std::memory_order_acquire);  // pair 1; read after head, see pair 3
      const std::uint32_t available = tail - real;
      n = available - available / 2;
      if (n == 0) return nullptr;
      first = real;
      if (head_.compare_exchange_weak(head, pack(steal, real + n), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
        break;
      }
    }
    // A claim that succeeded saw steal == real with tail - real <= Capacity, so the batch fits dst's free half.
    assert(n <= Capacity / 2);

    for (std::uint32_t i = 0; i + 1 < n; ++i) {
      T* item = buffer_[(first + i) & kMask].load(std::memory_order_relaxed);
      dst.buffer_[(dst_tail + i) & kMask].store(item, std::memory_order_relaxed);
    }
    T* const ret = buffer_[(first + n - 1) & kMask].load(std::memory_order_relaxed);

    // End the steal (steal = real). The owner may have popped meanwhile, moving `real`: retry with its value.
    // Release: pair 2, our slot reads above happen before the owner reuses the slots.
    head = pack(first, first + n);
    for (;;) {
      const std::uint32_t real = real_of(head);
      assert(steal_of(head) == first && "only this stealer moves steal while it holds the reservation");
      if (head_.compare_exchange_weak(head, pack(real, real), std::memory_order_acq_rel, std::memory_order_acquire)) {
        break;
      }
    }

    if (n > 1) dst.tail_.store(dst_tail + (n - 1), std::memory_order_release);  // pair 1 for dst
    return ret;
  }

  /// Items queued (not counting a batch a stealer is copying out). Exact for the owner; from another thread
  /// a snapshot that may already be stale.
  std::size_t len() const noexcept {
    // Head before tail, both acquire: pair 3 keeps tail at or past real.
    const std::uint32_t real = real_of(head_.load(std::memory_order_acquire));
    const std::uint32_t tail = tail_.load(std::memory_order_acquire);
    const std::uint32_t n = tail - real;
    // From another thread the owner may pop and push between the two loads; a ring holds no more than this.
    return n < Capacity ? n : Capacity;
  }
  bool is_empty() const noexcept { return len() == 0; }

  /// Owner only. How many items push_back_batch accepts now. Slots a stealer is still copying out of count
  /// as taken.
  std::size_t remaining_slots() const noexcept {
    const std::uint32_t steal = steal_of(head_.load(std::memory_order_acquire));
    const std::uint32_t tail = tail_.load(std::memory_order_relaxed);
    return Capacity - (tail - steal);
  }

  /// For other threads: whether a steal could find something now. It may be wrong by the time it returns
  /// (the owner pops, another stealer wins), which only costs a steal_into that returns nullptr.
  bool is_stealable() const noexcept { return !is_empty(); }

 private:
  static constexpr std::uint32_t kMask = Capacity - 1;
  static constexpr std::size_t kCacheLine = 64;

  static constexpr std::uint64_t pack(std::uint32_t steal, std::uint32_t real) noexcept {
    return (std::uint64_t{steal} << 32) | real;
  }
  static constexpr std::uint32_t steal_of(std::uint64_t head) noexcept {
    return static_cast<std::uint32_t>(head >> 32);
  }
  static constexpr std::uint32_t real_of(std::uint64_t head) noexcept { return static_cast<std::uint32_t>(head); }

  /// The full-ring path of push_back_or_overflow, with no steal running (steal == real == head). False if a
  /// stealer moved head first; the caller then looks again.
  template <class Overflow>
  bool push_overflow(T* item, std::uint32_t head, [[maybe_unused]] std::uint32_t tail, Overflow& overflow) {
    constexpr std::uint32_t kTaken = Capacity / 2;
    assert(tail - head == Capacity && "overflow of a ring that is not full");
    std::uint64_t expected = pack(head, head);
    // Release: pair 3. Relaxed on failure: the caller reloads head with acquire.
    if (!head_.compare_exchange_strong(expected, pack(head + kTaken, head + kTaken), std::memory_order_release,
                                       std::memory_order_relaxed)) {
      return false;
    }
    // The claim moved steal too, so no stealer reads these slots, and only this thread writes them.
    std::array<T*, kTaken + 1> batch;
    for (std::uint32_t i = 0; i < kTaken; ++i) batch[i] = buffer_[(head + i) & kMask].load(std::memory_order_relaxed);
    batch[kTaken] = item;
    overflow(batch.data(), batch.size());
    return true;
  }

  // head_ is written by stealers and by the owner's pops, tail_ and the slots by the owner alone: separate
  // lines, so a steal does not take the line the owner writes on every push.
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  alignas(kCacheLine) std::atomic<std::uint32_t> tail_{0};
  std::array<std::atomic<T*>, Capacity> buffer_{};
};

}  // namespace spindle::detail
