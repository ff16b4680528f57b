#pragma once
// A lock for critical sections of a few dozen instructions (a socket's parked operations, a join
// waker): one atomic exchange when uncontended, and it yields the CPU rather than spin for long, because
// the holder may have been preempted (2-core machines, oversubscribed containers).

#include <atomic>
#include <thread>

namespace spindle::detail {

class SpinLock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace spindle::detail
