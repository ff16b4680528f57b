#include "spindle/sync/semaphore.hpp"

namespace spindle {

bool Semaphore::Awaiter::await_ready() noexcept {
  std::lock_guard lock(semaphore_->mutex_);
  if (semaphore_->closed_) return true;
  if (!semaphore_->can_take_locked(waiter_.needed)) return false;
  semaphore_->permits_ -= waiter_.needed;
  waiter_.chosen = true;
  return true;
}

bool Semaphore::Awaiter::await_suspend(std::coroutine_handle<> h) {
  waiter_.waker = detail::make_waker(h);
  std::lock_guard lock(semaphore_->mutex_);
  if (semaphore_->closed_) return false;
  if (semaphore_->can_take_locked(waiter_.needed)) {
    semaphore_->permits_ -= waiter_.needed;
    waiter_.chosen = true;
    return false;
  }
  semaphore_->waiters_.push_back(waiter_);
  return true;
}

Result<Semaphore::Permit, SemaphoreClosed> Semaphore::Awaiter::await_resume() noexcept {
  resumed_ = true;
  if (!waiter_.chosen) return Err{SemaphoreClosed{}};
  return Permit{*semaphore_, waiter_.needed};
}

Semaphore::Awaiter::~Awaiter() {
  bool give_back = false;
  {
    std::lock_guard lock(semaphore_->mutex_);
    if (waiter_.queued) {
      semaphore_->waiters_.remove(waiter_);
      semaphore_->grant_waiters_locked();  // it may have been the large request blocking smaller ones
    } else {
      give_back = waiter_.chosen && !resumed_;
    }
  }
  if (give_back) semaphore_->release(waiter_.needed);
}

std::optional<Semaphore::Permit> Semaphore::try_acquire(std::size_t count) noexcept {
  std::lock_guard lock(mutex_);
  if (closed_ || !can_take_locked(count)) return std::nullopt;
  permits_ -= count;
  return Permit{*this, count};
}

void Semaphore::release(std::size_t count) noexcept {
  std::lock_guard lock(mutex_);
  permits_ += count;
  grant_waiters_locked();
}

void Semaphore::grant_waiters_locked() noexcept {
  while (detail::SyncWaiter* front = waiters_.front()) {
    auto& waiter = static_cast<Awaiter::Waiter&>(*front);
    if (permits_ < waiter.needed) return;
    permits_ -= waiter.needed;
    waiters_.remove(waiter);
    waiter.chosen = true;
    waiter.waker.wake();
  }
}

void Semaphore::close() noexcept {
  std::lock_guard lock(mutex_);
  closed_ = true;
  while (detail::SyncWaiter* waiter = waiters_.pop_front()) waiter->waker.wake();
}

bool Semaphore::is_closed() const noexcept {
  std::lock_guard lock(mutex_);
  return closed_;
}

std::size_t Semaphore::available() const noexcept {
  std::lock_guard lock(mutex_);
  return permits_;
}

}  // namespace spindle
