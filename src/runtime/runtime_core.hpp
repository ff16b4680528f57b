#pragma once
// The inside of a Runtime: a Scheduler that also drives its loop. Two flavors implement it,
// CurrentThreadCore (current_thread.cpp: every task on the thread calling block_on) and MultiThreadCore
// (multi_thread.cpp: work-stealing workers sharing one reactor). Private to the library.

#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "spindle/runtime/detail/scheduler.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle::detail {

class RuntimeCore : public Scheduler {
 public:
  /// Runs until `root` (already spawned) completes; called from outside any runtime.
  virtual void run_until_complete(TaskHeader& root) = 0;
  /// Runs until no spawned task is left or `limit` has passed; returns how many are left.
  virtual std::size_t drain(std::chrono::nanoseconds limit) = 0;
  virtual RuntimeMetrics metrics() const noexcept = 0;
};

std::unique_ptr<RuntimeCore> make_current_thread_core(const RuntimeOptions& options);
std::unique_ptr<RuntimeCore> make_multi_thread_core(const RuntimeOptions& options);

/// An intrusive FIFO of tasks, linked through TaskHeader::queue_next. Clearing it touches no task.
class RunQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(TaskHeader& task) noexcept {
    task.queue_next = nullptr;
    if (tail_ != nullptr)
      tail_->queue_next = &task;
    else
      head_ = &task;
    tail_ = &task;
  }
  TaskHeader* pop() noexcept {
    TaskHeader* task = head_;
    if (task != nullptr) {
      head_ = task->queue_next;
      if (head_ == nullptr) tail_ = nullptr;
    }
    return task;
  }
  void append(RunQueue& other) noexcept {
    if (other.head_ == nullptr) return;
    if (tail_ != nullptr)
      tail_->queue_next = other.head_;
    else
      head_ = other.head_;
    tail_ = other.tail_;
    other.head_ = other.tail_ = nullptr;
  }
  void clear() noexcept { head_ = tail_ = nullptr; }

 private:
  TaskHeader* head_ = nullptr;
  TaskHeader* tail_ = nullptr;
};

/// Milliseconds from `now` until `deadline` (both in clock ticks) for a reactor wait: -1 for none.
inline int wait_timeout(std::optional<std::uint64_t> deadline, std::uint64_t now) noexcept {
  if (!deadline) return -1;
  if (*deadline <= now) return 0;
  return static_cast<int>(std::min<std::uint64_t>(*deadline - now, INT_MAX));
}

/// Fills in the process-wide blocking pool's figures.
void add_blocking_pool_metrics(RuntimeMetrics& metrics) noexcept;

/// Adds to a counter written by one thread and read by any (a relaxed store, no read-modify-write).
inline void count_up(std::atomic<std::uint64_t>& counter, std::uint64_t by) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace spindle::detail
