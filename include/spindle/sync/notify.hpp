#pragma once
// Notify: wake one waiting task, or all of them, without passing data (Tokio's Notify).

#include <coroutine>
#include <mutex>
#include <utility>

#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle {

/// A task waits with `co_await notify.notified()`; another wakes it with notify_one() or
/// notify_waiters(). notify_one() with nobody waiting stores one permit, so a notification sent just
/// before the wait is not lost. Thread-safe; usable across runtimes.
///
///   Notify ready;
///   spawn(producer(ready));            // calls ready.notify_one() when done
///   co_await ready.notified();
class Notify {
 public:
  Notify() = default;
  Notify(const Notify&) = delete;
  Notify& operator=(const Notify&) = delete;

  class Awaiter {
   public:
    explicit Awaiter(Notify& notify) noexcept : notify_(&notify) {}
    /// Movable until awaited (timeout() moves it into its own coroutine), like every Spindle awaiter.
    Awaiter(Awaiter&& other) noexcept : notify_(other.notify_) {}
    Awaiter& operator=(Awaiter&&) = delete;
    /// Cancellation-safe: a waiter dropped after notify_one() chose it passes the notification on.
    ~Awaiter();

    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() noexcept { resumed_ = true; }

   private:
    Notify* notify_;
    detail::SyncWaiter waiter_;
    bool resumed_ = false;
  };

  /// Completes at the next notify_one() meant for this waiter, or at notify_waiters().
  Awaiter notified() noexcept { return Awaiter{*this}; }
  /// Wakes the longest-waiting task, or stores a permit (at most one) if none waits.
  void notify_one() noexcept;
  /// Wakes every task waiting now; stores no permit.
  void notify_waiters() noexcept;

 private:
  void notify_one_locked() noexcept;

  std::mutex mutex_;
  detail::WaiterList waiters_;
  bool permit_ = false;
};

}  // namespace spindle
