#pragma once
// Task<T>: the coroutine type of Spindle. Lazily started (nothing runs until it is awaited or spawned),
// move-only, and symmetric: awaiting a Task transfers control straight into it, and its completion
// transfers straight back to the awaiter, so a loop of awaits that finish without suspending runs in
// constant stack (given the tail call; see docs/architecture.md on GCC at -O0 and under ASan).

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/runtime/detail/task_header.hpp"

namespace spindle {

template <class T = void>
class Task;

namespace detail {

class TaskPromiseBase {
 public:
  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      TaskPromiseBase& promise = self.promise();
      if (promise.continuation_) return promise.continuation_;
      // No awaiter: this is the root coroutine of a spawned task. Tell its header and yield to the
      // scheduler, which reads the outcome and frees the frame.
      if (promise.root_of_ != nullptr) promise.root_of_->mark_root_finished();
      return std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  std::suspend_always initial_suspend() const noexcept { return {}; }
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* frame, std::size_t size) noexcept { deallocate_frame(frame, size); }

  void set_continuation(std::coroutine_handle<> continuation) noexcept { continuation_ = continuation; }
  void set_root_of(TaskHeader* header) noexcept { root_of_ = header; }
  bool has_exception() const noexcept { return exception_ != nullptr; }
  std::exception_ptr exception() const noexcept { return exception_; }

 protected:
  void rethrow_if_exception() {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::coroutine_handle<> continuation_;
  TaskHeader* root_of_ = nullptr;
  std::exception_ptr exception_;
};

template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;

  template <class U = T>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }

  T take_result() {
    rethrow_if_exception();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take_result() { rethrow_if_exception(); }
};

}  // namespace detail

/// A lazily started coroutine producing a T (or throwing).
///
///   Task<int> answer() { co_return 42; }
///   Task<void> caller() {
///     int n = co_await answer();   // runs answer() to completion, then continues here
///   }
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { destroy(); }

  bool valid() const noexcept { return static_cast<bool>(handle_); }

  struct Awaiter {
    std::coroutine_handle<promise_type> handle;

    bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      handle.promise().set_continuation(awaiting);
      return handle;
    }
    T await_resume() { return handle.promise().take_result(); }
  };

  /// Runs the task until it completes; its result or exception becomes the co_await's.
  Awaiter operator co_await() && noexcept { return Awaiter{handle_}; }
  Awaiter operator co_await() & noexcept { return Awaiter{handle_}; }

  /// The coroutine handle, for the runtime (spawn, timeout). The Task keeps ownership.
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }

 private:
  void destroy() noexcept {
    if (handle_) handle_.destroy();
    handle_ = {};
  }

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<TaskPromise<T>>::from_promise(*this)};
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<TaskPromise<void>>::from_promise(*this)};
}
/// Runs `task` while holding `guard`, whose destructor then fires exactly once however the task ends:
/// it returns, throws, or is destroyed by a cancellation, even before its first run. The guard travels as
/// a parameter (so a frame destroyed unstarted still destroys it) and is moved into a local at the start
/// (so a task that ran releases it as its body ends, not when its frame is freed later). Guard must be
/// movable, its moved-from state inert. Used by JoinSet and TaskTracker.
template <class T, class Guard>
Task<T> with_guard(Task<T> task, Guard guard) {
  Guard held = std::move(guard);
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
  } else {
    co_return co_await std::move(task);
  }
}

template <class A>
struct AwaitResult {
  using type = decltype(std::declval<A>().await_resume());
};
template <class A>
requires requires(A a) { std::move(a).operator co_await(); }
struct AwaitResult<A> {
  using type = decltype(std::declval<A>().operator co_await().await_resume());
};
/// What `co_await std::declval<A>()` yields.
template <class A>
using await_result_t = typename AwaitResult<A>::type;

}  // namespace detail

template <class T>
inline constexpr bool is_task_v = false;
template <class T>
inline constexpr bool is_task_v<Task<T>> = true;

}  // namespace spindle
