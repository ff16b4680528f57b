#pragma once
// spawn(): start a task that runs on its own, concurrently with the caller, and JoinHandle<T> to wait for
// its outcome, abort it, or let it go (detach).

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/runtime/detail/scheduler.hpp"
#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// Why a spawned task produced no value: it was aborted, or it threw.
struct JoinError {
  enum class Kind { cancelled, exception };
  Kind kind = Kind::cancelled;
  std::exception_ptr exception;

  bool is_cancelled() const noexcept { return kind == Kind::cancelled; }
  /// A short description: "task was cancelled" or the exception's what().
  std::string message() const;
};

namespace detail {

void log_unobserved_exception(const std::exception_ptr& exception) noexcept;

/// A spawned Task<T> with its header: the header and the frame of the task's root coroutine.
template <class T>
class SpawnedTask final : public TaskHeader {
 public:
  SpawnedTask(Scheduler& scheduler, Task<T> task) noexcept
      : TaskHeader(scheduler, task.handle()), task_(std::move(task)) {
    task_.handle().promise().set_root_of(this);
  }

  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* block, std::size_t size) noexcept { deallocate_frame(block, size); }

  Result<T, JoinError> take_outcome() {
    if (was_cancelled()) return Err{JoinError{JoinError::Kind::cancelled, nullptr}};
    auto& promise = task_.handle().promise();
    if (promise.has_exception()) return Err{JoinError{JoinError::Kind::exception, promise.exception()}};
    if constexpr (std::is_void_v<T>) {
      return {};
    } else {
      return promise.take_result();
    }
  }

 private:
  void* root_frame() const noexcept override { return task_.valid() ? task_.handle().address() : nullptr; }
  void destroy_coroutines() noexcept override { task_ = Task<T>{}; }
  void report_unobserved_exception() noexcept override {
    if (task_.valid() && task_.handle().promise().has_exception())
      log_unobserved_exception(task_.handle().promise().exception());
  }

  Task<T> task_;
};

}  // namespace detail

/// Owns the right to a spawned task's outcome. Awaiting it yields Result<T, JoinError>; dropping it
/// detaches the task, which keeps running (an exception it throws is then logged to stderr).
///
///   JoinHandle<int> h = spawn(compute());
///   Result<int, JoinError> r = co_await std::move(h);
template <class T>
class [[nodiscard]] JoinHandle {
 public:
  explicit JoinHandle(detail::SpawnedTask<T>* task) noexcept : task_(task) {}
  JoinHandle(JoinHandle&& other) noexcept : task_(std::exchange(other.task_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& other) noexcept {
    if (this != &other) {
      drop();
      task_ = std::exchange(other.task_, nullptr);
    }
    return *this;
  }
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { drop(); }

  /// Lets the task run on unobserved.
  void detach() noexcept { drop(); }
  /// Cancels the task: its coroutines are destroyed at its next turn; awaiting yields a cancelled error.
  void abort() noexcept {
    if (task_ != nullptr) task_->request_abort();
  }
  bool is_finished() const noexcept { return task_ != nullptr && task_->is_complete(); }

  class Awaiter {
   public:
    explicit Awaiter(detail::SpawnedTask<T>* task) noexcept : task_(task) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    ~Awaiter() {
      if (registered_) task_->clear_join_waker();
    }
    bool await_ready() const noexcept { return task_->is_complete(); }
    bool await_suspend(std::coroutine_handle<> h) {
      registered_ = task_->set_join_waker(detail::make_waker(h));
      return registered_;
    }
    Result<T, JoinError> await_resume() {
      registered_ = false;
      return task_->take_outcome();
    }

   private:
    detail::SpawnedTask<T>* task_;
    bool registered_ = false;
  };

  Awaiter operator co_await() && noexcept { return Awaiter{task_}; }

 private:
  void drop() noexcept {
    if (task_ != nullptr) {
      task_->detach();
      task_->release();
      task_ = nullptr;
    }
  }

  detail::SpawnedTask<T>* task_;
};

/// How to spawn a task.
struct SpawnOptions {
  std::string_view name;  ///< shown in task dumps (task_dump.hpp); copied
};

/// Starts `task` on the current runtime; it runs concurrently with the caller.
///
///   spawn(handle_connection(std::move(stream))).detach();
///   spawn(accept_loop(listener), {.name = "accept loop"}).detach();
template <class T>
JoinHandle<T> spawn(Task<T> task, SpawnOptions options = {}) {
  detail::Scheduler& scheduler = *detail::require_context("spindle::spawn").scheduler;
  auto* spawned = new detail::SpawnedTask<T>(scheduler, std::move(task));
  spawned->add_ref();  // the JoinHandle's
  scheduler.spawn(*spawned, options.name);
  return JoinHandle<T>{spawned};
}

/// Starts `task` on the current runtime, bound to the calling worker thread for its whole life: it is
/// never stolen by another worker, and wakes from other threads send it home. For code that is not
/// thread-safe (thread_local state, a library handle used from one thread). On the current_thread
/// runtime it is spawn().
///
///   spawn_local(serve_with(thread_local_cache)).detach();
template <class T>
JoinHandle<T> spawn_local(Task<T> task, SpawnOptions options = {}) {
  detail::Scheduler& scheduler = *detail::require_context("spindle::spawn_local").scheduler;
  const std::uint16_t pin = scheduler.pin_for_current_thread();
  auto* spawned = new detail::SpawnedTask<T>(scheduler, std::move(task));
  spawned->pin_to(pin);
  spawned->add_ref();  // the JoinHandle's
  scheduler.spawn(*spawned, options.name);
  return JoinHandle<T>{spawned};
}

}  // namespace spindle
