#include "spindle/sync/notify.hpp"

namespace spindle {

bool Notify::Awaiter::await_ready() noexcept {
  std::lock_guard lock(notify_->mutex_);
  return std::exchange(notify_->permit_, false);
}

bool Notify::Awaiter::await_suspend(std::coroutine_handle<> h) {
  waiter_.waker = detail::make_waker(h);
  std::lock_guard lock(notify_->mutex_);
  if (std::exchange(notify_->permit_, false)) return false;  // notified between await_ready and here
  notify_->waiters_.push_back(waiter_);
  return true;
}

Notify::Awaiter::~Awaiter() {
  std::lock_guard lock(notify_->mutex_);
  if (waiter_.queued) {
    notify_->waiters_.remove(waiter_);
  } else if (waiter_.chosen && !resumed_) {
    notify_->notify_one_locked();  // chosen by notify_one, then cancelled: the next waiter gets it
  }
}

void Notify::notify_one() noexcept {
  std::lock_guard lock(mutex_);
  notify_one_locked();
}

void Notify::notify_one_locked() noexcept {
  if (detail::SyncWaiter* waiter = waiters_.pop_front()) {
    waiter->chosen = true;
    waiter->waker.wake();
    return;
  }
  permit_ = true;
}

void Notify::notify_waiters() noexcept {
  std::lock_guard lock(mutex_);
  while (detail::SyncWaiter* waiter = waiters_.pop_front()) waiter->waker.wake();
}

}  // namespace spindle
