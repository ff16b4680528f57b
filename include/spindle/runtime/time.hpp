#pragma once
// Time: sleep, sleep_until, timeout, interval, and the paused clock for deterministic tests.
// All of it runs on the runtime's timer wheel (detail/timer_wheel.hpp) with millisecond resolution.

#include <chrono>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/detail/timer_wheel.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

using Duration = std::chrono::nanoseconds;
using Instant = std::chrono::steady_clock::time_point;

/// The current time on this runtime's clock (paused-aware); steady_clock::now() outside a runtime.
Instant now() noexcept;

namespace detail {
detail::TimerWheel& current_timers(const char* what);
std::uint64_t deadline_ticks(Instant deadline);
}  // namespace detail

/// Awaitable returned by sleep() and sleep_until(): completes once the deadline has passed.
///
///   co_await sleep(std::chrono::milliseconds(50));   // the thread serves other tasks meanwhile
class [[nodiscard]] Sleep {
 public:
  explicit Sleep(Instant deadline) noexcept : deadline_(deadline) {}
  Sleep(const Sleep&) = delete;
  Sleep& operator=(const Sleep&) = delete;
  ~Sleep() { entry_.disarm(); }

  Instant deadline() const noexcept { return deadline_; }

  bool await_ready() const noexcept { return deadline_ <= now(); }
  void await_suspend(std::coroutine_handle<> h) {
    waker_ = detail::make_waker(h);
    entry_.deadline = detail::deadline_ticks(deadline_);
    entry_.on_fire = &fire;
    entry_.owner = this;
    detail::current_timers("spindle::sleep").insert(entry_);
  }
  void await_resume() const noexcept {}

 private:
  static bool fire(detail::TimerEntry& entry) noexcept {
    static_cast<Sleep*>(entry.owner)->waker_.wake();
    return false;
  }

  detail::TimerEntry entry_;
  detail::Waker waker_;
  Instant deadline_;
};

inline Sleep sleep_until(Instant deadline) noexcept { return Sleep{deadline}; }
inline Sleep sleep(Duration duration) noexcept { return Sleep{now() + duration}; }

/// Gives other ready tasks a turn before continuing.
struct [[nodiscard]] YieldNow {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { detail::make_waker(h).wake(); }
  void await_resume() const noexcept {}
};
inline YieldNow yield_now() noexcept { return {}; }

/// The error of timeout(): the deadline passed before the operation finished.
struct TimedOut {
  friend bool operator==(TimedOut, TimedOut) = default;
};

namespace detail {

/// Runs `inner` as part of the awaiting task, racing a timer. The task has one wake point and the first
/// wake of a suspension takes it (task_header.hpp), which settles the race on any thread:
/// - the timer fires first: it wakes the task at the outer coroutine (this awaiter's await_resume), which
///   destroys the inner coroutines (their awaiters deregister, so the operation is cancelled cleanly)
///   and returns TimedOut. A socket read parked meanwhile cannot complete: the reactor claims the wake
///   point before it performs a read, and finds it taken;
/// - the operation's wake-up came first (same tick, or another thread): the timer finds the point taken
///   and re-arms for the next tick, so a finished operation is not cut short;
/// - the timer fires while the task runs and the operation then finishes in that same run: the result
///   wins, and await_resume takes back the timer's wake-up.
template <class T>
class TimeoutAwaiter {
 public:
  TimeoutAwaiter(Task<T> inner, Instant deadline) noexcept : inner_(std::move(inner)), deadline_(deadline) {}
  TimeoutAwaiter(const TimeoutAwaiter&) = delete;
  TimeoutAwaiter& operator=(const TimeoutAwaiter&) = delete;
  ~TimeoutAwaiter() { entry_.disarm(); }

  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> outer) {
    outer_ = make_waker(outer);
    entry_.deadline = deadline_ticks(deadline_);
    entry_.on_fire = &fire;
    entry_.owner = this;
    current_timers("spindle::timeout").insert(entry_);
    inner_.handle().promise().set_continuation(outer);
    return inner_.handle();  // the operation is polled once even if the deadline has passed, as in Tokio
  }
  Result<T, TimedOut> await_resume() {
    entry_.disarm();  // from here on the timer cannot fire: fired_ is settled (written under the wheel's lock)
    if (fired_) {
      if (!inner_.handle().done()) {
        inner_ = Task<T>{};  // runs as this task: we are inside it
        return Err{TimedOut{}};
      }
      outer_.task->retract_wake(outer_.resume_at);
    }
    if constexpr (std::is_void_v<T>) {
      inner_.handle().promise().take_result();
      return {};
    } else {
      return inner_.handle().promise().take_result();
    }
  }

 private:
  static bool fire(TimerEntry& entry) noexcept {
    auto* self = static_cast<TimeoutAwaiter*>(entry.owner);
    if (!self->outer_.task->claim_wake(self->outer_.resume_at)) {
      // The operation's own wake-up is queued: look again at the next tick of the clock (not of the
      // wheel, which may be far behind during a large time::advance()).
      entry.deadline = deadline_ticks(now()) + 1;
      return true;
    }
    self->fired_ = true;
    self->outer_.task->schedule_claimed();
    return false;
  }

  TimerEntry entry_;
  Task<T> inner_;
  Waker outer_;
  Instant deadline_;
  bool fired_ = false;
};

template <class A>
auto as_task(A awaitable) -> Task<await_result_t<A>> {
  co_return co_await std::move(awaitable);
}

}  // namespace detail

/// Runs `task`, giving up at `deadline`: the result is the task's value, or TimedOut. On expiry the task
/// is cancelled (its coroutines destroyed, its pending operations deregistered).
///
///   auto n = co_await timeout_at(now() + 5s, stream.read(buffer));
template <class T>
detail::TimeoutAwaiter<T> timeout_at(Instant deadline, Task<T> task) {
  return detail::TimeoutAwaiter<T>{std::move(task), deadline};
}

/// Runs `task` for at most `duration`.
///
///   Result<IoResult<std::size_t>, TimedOut> n = co_await timeout(30s, stream.read(buffer));
///   if (!n) co_return;   // the client was silent for 30 s
template <class T>
detail::TimeoutAwaiter<T> timeout(Duration duration, Task<T> task) {
  return timeout_at(now() + duration, std::move(task));
}

/// timeout() for any awaitable that is not a Task (a Sleep, a socket operation, a JoinHandle...).
template <class A>
requires(!is_task_v<A>) && requires { typename detail::await_result_t<A>; }
auto timeout(Duration duration, A awaitable) { return timeout(duration, detail::as_task(std::move(awaitable))); }

/// What an Interval does when ticks were missed (the task was busy past one or more periods).
enum class MissedTickBehavior {
  burst,  ///< fire the missed ticks back to back until caught up (Tokio's default)
  delay,  ///< start again one period from now
  skip,   ///< drop the missed ticks; the next one is the next multiple of the period
};

/// Ticks every `period`, the first tick at once.
///
///   Interval every_second = interval(1s);
///   for (;;) { co_await every_second.tick(); flush_metrics(); }
class Interval {
 public:
  Interval(Instant first_tick, Duration period, MissedTickBehavior behavior = MissedTickBehavior::burst);

  /// Waits for the next tick; returns the instant it was scheduled for.
  Task<Instant> tick();
  void set_missed_tick_behavior(MissedTickBehavior behavior) noexcept { behavior_ = behavior; }
  /// The next tick comes one period from now.
  void reset();
  Duration period() const noexcept { return period_; }

 private:
  Instant next_;
  Duration period_;
  MissedTickBehavior behavior_;
};

/// An Interval whose first tick is now.
Interval interval(Duration period);

namespace time {
/// Stops this runtime's clock (tests): from now on time moves only by advance(), or by jumping to the
/// next deadline when every task is waiting.
void pause();
/// Restarts the real clock.
void resume();
/// Moves a paused clock forward, fires the timers that came due, and lets their tasks run first.
Task<void> advance(Duration by);
}  // namespace time

}  // namespace spindle
