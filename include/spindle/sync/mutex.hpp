#pragma once
// Mutex<T>: an async mutex that owns the data it guards (Tokio's Mutex<T>). Waiting for it suspends the
// task, not the thread; holding the guard across an await is allowed (that is what it is for: use
// std::mutex for short critical sections without awaits, it is cheaper).

#include <coroutine>
#include <cstddef>
#include <optional>
#include <utility>

#include "spindle/sync/semaphore.hpp"

namespace spindle {

/// Access to the data of a Mutex (or an RwLock: MutexGuard<const T> is a read guard), held until the
/// guard is destroyed.
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

namespace detail {
/// Acquires `Permits` from a lock's semaphore and yields a Guard over its value. The semaphores of
/// Mutex and RwLock are never closed, so the acquire always succeeds.
template <class Guard, class Value, std::size_t Permits>
class GuardAwaiter {
 public:
  GuardAwaiter(Semaphore& semaphore, Value& value) noexcept : value_(&value), acquire_(semaphore.acquire(Permits)) {}
  bool await_ready() noexcept { return acquire_.await_ready(); }
  bool await_suspend(std::coroutine_handle<> h) { return acquire_.await_suspend(h); }
  Guard await_resume() noexcept { return Guard{std::move(acquire_.await_resume()).value(), *value_}; }

 private:
  Value* value_;
  Semaphore::Awaiter acquire_;
};

template <class Guard, class Value>
std::optional<Guard> try_guard(Semaphore& semaphore, Value& value, std::size_t permits) noexcept {
  auto permit = semaphore.try_acquire(permits);
  if (!permit) return std::nullopt;
  return Guard{std::move(*permit), value};
}
}  // namespace detail

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

  detail::GuardAwaiter<MutexGuard<T>, T, 1> lock() noexcept { return {semaphore_, value_}; }
  std::optional<MutexGuard<T>> try_lock() noexcept { return detail::try_guard<MutexGuard<T>>(semaphore_, value_, 1); }

 private:
  Semaphore semaphore_{1};
  T value_;
};

}  // namespace spindle
