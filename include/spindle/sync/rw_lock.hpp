#pragma once
// RwLock<T>: many readers or one writer, fairly (Tokio's RwLock, built the same way on a FIFO semaphore:
// a read takes one permit, a write takes them all; FIFO order means a waiting writer is not starved by
// readers that arrive after it).

#include <coroutine>
#include <optional>
#include <utility>

#include "spindle/sync/semaphore.hpp"

namespace spindle {

template <class T>
class RwLock;

/// Shared access; released on destruction.
template <class T>
class ReadGuard {
 public:
  ReadGuard(Semaphore::Permit permit, const T& value) noexcept : permit_(std::move(permit)), value_(&value) {}
  const T& operator*() const noexcept { return *value_; }
  const T* operator->() const noexcept { return value_; }

 private:
  Semaphore::Permit permit_;
  const T* value_;
};

/// Exclusive access; released on destruction.
template <class T>
class WriteGuard {
 public:
  WriteGuard(Semaphore::Permit permit, T& value) noexcept : permit_(std::move(permit)), value_(&value) {}
  T& operator*() const noexcept { return *value_; }
  T* operator->() const noexcept { return value_; }

 private:
  Semaphore::Permit permit_;
  T* value_;
};

/// A reader-writer lock owning its data.
///
///   RwLock<Config> config;
///   { auto r = co_await config.read(); use(r->port); }
///   { auto w = co_await config.write(); w->port = 8081; }
template <class T>
class RwLock {
 public:
  /// Readers at once at most (more wait); also the number of permits a writer takes.
  static constexpr std::size_t kMaxReaders = 1u << 20;

  template <class... Args>
  explicit RwLock(Args&&... args) : value_(std::forward<Args>(args)...) {}
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;

  template <class Guard, std::size_t Permits>
  class Awaiter {
   public:
    explicit Awaiter(RwLock& lock) noexcept : lock_(&lock), acquire_(lock.semaphore_.acquire(Permits)) {}
    bool await_ready() noexcept { return acquire_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) { return acquire_.await_suspend(h); }
    Guard await_resume() noexcept {
      // The semaphore is never closed, so the acquire always succeeds.
      return Guard{std::move(acquire_.await_resume()).value(), lock_->value_};
    }

   private:
    RwLock* lock_;
    Semaphore::Awaiter acquire_;
  };

  Awaiter<ReadGuard<T>, 1> read() noexcept { return Awaiter<ReadGuard<T>, 1>{*this}; }
  Awaiter<WriteGuard<T>, kMaxReaders> write() noexcept { return Awaiter<WriteGuard<T>, kMaxReaders>{*this}; }

  std::optional<ReadGuard<T>> try_read() noexcept {
    auto permit = semaphore_.try_acquire(1);
    if (!permit) return std::nullopt;
    return ReadGuard<T>{std::move(*permit), value_};
  }
  std::optional<WriteGuard<T>> try_write() noexcept {
    auto permit = semaphore_.try_acquire(kMaxReaders);
    if (!permit) return std::nullopt;
    return WriteGuard<T>{std::move(*permit), value_};
  }

 private:
  Semaphore semaphore_{kMaxReaders};
  T value_;
};

}  // namespace spindle
