#pragma once
// The waiting room shared by the sync primitives: an intrusive FIFO of waiters, each embedded in the
// awaiter of a suspended task, guarded by its primitive's mutex.
//
// Wakers are called with that mutex held, on purpose: an awaiter whose task is being cancelled removes
// itself in its destructor, which takes the same mutex, so while a waker runs its task cannot be gone.

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

struct SyncWaiter {
  Waker waker;
  SyncWaiter* prev = nullptr;
  SyncWaiter* next = nullptr;
  bool queued = false;
  bool chosen = false;  // picked by a one-to-one hand-off (notify_one, a permit grant): must pass it on if dropped
};

class WaiterList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  SyncWaiter* front() const noexcept { return head_; }

  void push_back(SyncWaiter& waiter) noexcept {
    waiter.prev = tail_;
    waiter.next = nullptr;
    if (tail_ != nullptr)
      tail_->next = &waiter;
    else
      head_ = &waiter;
    tail_ = &waiter;
    waiter.queued = true;
  }

  void remove(SyncWaiter& waiter) noexcept {
    if (!waiter.queued) return;
    if (waiter.prev != nullptr)
      waiter.prev->next = waiter.next;
    else
      head_ = waiter.next;
    if (waiter.next != nullptr)
      waiter.next->prev = waiter.prev;
    else
      tail_ = waiter.prev;
    waiter.prev = waiter.next = nullptr;
    waiter.queued = false;
  }

  SyncWaiter* pop_front() noexcept {
    SyncWaiter* waiter = head_;
    if (waiter != nullptr) remove(*waiter);
    return waiter;
  }

 private:
  SyncWaiter* head_ = nullptr;
  SyncWaiter* tail_ = nullptr;
};

}  // namespace spindle::detail
