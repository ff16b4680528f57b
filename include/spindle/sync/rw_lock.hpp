#pragma once
// RwLock<T>: many readers or one writer, fairly (Tokio's RwLock, built the same way on a FIFO semaphore:
// a read takes one permit, a write takes them all; FIFO order means a waiting writer is not starved by
// readers that arrive after it).

#include <coroutine>
#include <optional>
#include <utility>

#include "spindle/sync/mutex.hpp"
#include "spindle/sync/semaphore.hpp"

namespace spindle {

/// Shared access to an RwLock's data; released on destruction.
template <class T>
using ReadGuard = MutexGuard<const T>;
/// Exclusive access to an RwLock's data; released on destruction.
template <class T>
using WriteGuard = MutexGuard<T>;

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

  detail::GuardAwaiter<ReadGuard<T>, const T, 1> read() noexcept { return {semaphore_, value_}; }
  detail::GuardAwaiter<WriteGuard<T>, T, kMaxReaders> write() noexcept { return {semaphore_, value_}; }
  std::optional<ReadGuard<T>> try_read() noexcept {
    return detail::try_guard<ReadGuard<T>>(semaphore_, std::as_const(value_), 1);
  }
  std::optional<WriteGuard<T>> try_write() noexcept {
    return detail::try_guard<WriteGuard<T>>(semaphore_, value_, kMaxReaders);
  }

 private:
  Semaphore semaphore_{kMaxReaders};
  T value_;
};

}  // namespace spindle
