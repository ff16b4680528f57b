#pragma once
// Mutex<T>: an async mutex that owns the data it guards (Tokio's Mutex<T>). Waiting for it suspends the
// task, not the thread; holding the guard across an await is allowed (that is what it is for: use
// std::mutex for short critical sections without awaits, it is cheaper).

#include <coroutine>
#include <utility>

#include "spindle/sync/semaphore.hpp"

namespace spindle {

template <class T>
class MutexGuard {
 public:
  MutexGuard(Semaphore::Permit permit, T& value) noexcept : permit_(std::move(permit)), value_(&value) {}
  T& operator*() const noexcept { return *value_; }
  T* operator->() const noexcept { return value_; }

 private:
  Semaphore::Permit permit_;
  T* value_;
};

/// An async mutex guarding a T; lock() waits FIFO.
///
///   Mutex<std::vector<int>> shared;
///   {
///     auto guard = co_await shared.lock();
///     guard->push_back(1);
///     co_await flush(*guard);            // still held across the await
///   }                                    // released here
template <class T>
class Mutex {
 public:
  template <class... Args>
  explicit Mutex(Args&&... args) : value_(std::forward<Args>(args)...) {}
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  class Awaiter {
   public:
    explicit Awaiter(Mutex& mutex) noexcept : mutex_(&mutex), acquire_(mutex.semaphore_.acquire()) {}
    bool await_ready() noexcept { return acquire_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return acquire_.await_suspend(h); }
    MutexGuard<T> await_resume() noexcept {
      // A Mutex's semaphore is never closed, so the acquire always succeeds.
      return MutexGuard<T>{std::move(acquire_.await_resume()).value(), mutex_->value_};
    }

   private:
    Mutex* mutex_;
    Semaphore::Awaiter acquire_;
  };

  Awaiter lock() noexcept { return Awaiter{*this}; }
  std::optional<MutexGuard<T>> try_lock() noexcept {
    auto permit = semaphore_.try_acquire();
    if (!permit) return std::nullopt;
    return MutexGuard<T>{std::move(*permit), value_};
  }

 private:
  Semaphore semaphore_{1};
  T value_;
};

}  // namespace spindle
