#pragma once
// TaskTracker: counts the tasks spawned through it, so shutdown can wait for them (with a deadline,
// through timeout()). Tokio-util's TaskTracker.

#include <coroutine>
#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle {

/// Graceful shutdown: spawn connection tasks through the tracker; at shutdown close() it and wait.
///
///   TaskTracker connections;
///   connections.spawn(serve(std::move(stream))).detach();
///   ...
///   connections.close();
///   if (!co_await timeout(30s, connections.wait())) log("gave up on stragglers");
class TaskTracker {
  struct State {
    std::mutex mutex;
    std::size_t active = 0;
    bool closed = false;
    detail::WaiterList waiters;

    bool done_locked() const noexcept { return closed && active == 0; }
    void wake_if_done_locked() noexcept {
      if (done_locked())
        while (auto* waiter = waiters.pop_front()) waiter->waker.wake();
    }
  };

 public:
  TaskTracker() : state_(std::make_shared<State>()) {}

  /// Spawns `task`, counted until it ends (returns, throws, or is aborted).
  template <class T>
  JoinHandle<T> spawn(Task<T> task) {
    return spindle::spawn(track(std::move(task)));
  }
  /// Wraps `task` so that it is counted from now until it ends (for tasks started some other way).
  template <class T>
  Task<T> track(Task<T> task) {
    {
      std::lock_guard lock(state_->mutex);
      ++state_->active;
    }
    return detail::with_guard(std::move(task), Untrack{state_});
  }

  /// No more tasks are expected: wait() completes once the count reaches zero. Tasks may still be
  /// added (wait() then waits for them too).
  void close() {
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
    state_->wake_if_done_locked();
  }
  void reopen() {
    std::lock_guard lock(state_->mutex);
    state_->closed = false;
  }
  std::size_t size() const {
    std::lock_guard lock(state_->mutex);
    return state_->active;
  }

  class Awaiter {
   public:
    explicit Awaiter(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
    Awaiter(Awaiter&& other) noexcept : state_(other.state_) {}  // until awaited
    Awaiter& operator=(Awaiter&&) = delete;
    ~Awaiter() {
      std::lock_guard lock(state_->mutex);
      state_->waiters.remove(waiter_);
    }
    bool await_ready() const {
      std::lock_guard lock(state_->mutex);
      return state_->done_locked();
    }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = detail::make_waker(h);
      std::lock_guard lock(state_->mutex);
      if (state_->done_locked()) return false;
      state_->waiters.push_back(waiter_);
      return true;
    }
    void await_resume() const noexcept {}

   private:
    std::shared_ptr<State> state_;
    detail::SyncWaiter waiter_;
  };

  /// Completes once the tracker is closed and every tracked task has ended.
  Awaiter wait() const noexcept { return Awaiter{state_}; }

 private:
  // Drops the count when the tracked task ends, however it ends (run under detail::with_guard).
  struct Untrack {
    std::shared_ptr<State> state;
    Untrack(std::shared_ptr<State> s) noexcept : state(std::move(s)) {}
    Untrack(Untrack&&) noexcept = default;
    ~Untrack() {
      if (!state) return;
      std::lock_guard lock(state->mutex);
      --state->active;
      state->wake_if_done_locked();
    }
  };

  std::shared_ptr<State> state_;
};

}  // namespace spindle
