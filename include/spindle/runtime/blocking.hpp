#pragma once
// spawn_blocking: run a blocking function (SQLite, file I/O, getaddrinfo, heavy CPU work) on a pool of
// threads kept apart from the runtime's, and await its result. The pool grows on demand up to
// kMaxBlockingThreads and shrinks back: a thread idle for kBlockingKeepAlive exits.

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>

#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// Pool threads at most (Tokio's default); more jobs queue.
inline constexpr std::size_t kMaxBlockingThreads = 512;
/// An idle pool thread exits after this long.
inline constexpr std::chrono::seconds kBlockingKeepAlive{10};

namespace detail {

/// Hands `job` to the blocking pool (process-wide, started on first use).
void submit_blocking(std::function<void()> job);

struct BlockingPoolStats {
  std::size_t threads;       ///< threads alive
  std::size_t idle_threads;  ///< of those, waiting for a job
  std::size_t queued_jobs;   ///< jobs waiting for a thread
};
BlockingPoolStats blocking_pool_stats();

/// What a blocking job and its awaiter share: the awaiter may be destroyed (its task cancelled) while the
/// job runs, so the job only ever touches this.
template <class R>
struct BlockingState {
  std::mutex mutex;
  std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
  std::exception_ptr exception;
  bool done = false;
  Waker waker;  // set while the awaiter waits; cleared if it goes away
};

template <class R>
class BlockingAwaiter {
 public:
  explicit BlockingAwaiter(std::shared_ptr<BlockingState<R>> state) noexcept : state_(std::move(state)) {}
  BlockingAwaiter(BlockingAwaiter&&) noexcept = default;
  BlockingAwaiter& operator=(BlockingAwaiter&&) = delete;
  ~BlockingAwaiter() {
    if (!state_) return;
    std::lock_guard lock(state_->mutex);
    state_->waker = Waker{};  // the job finishes unobserved
  }
  bool await_ready() const {
    std::lock_guard lock(state_->mutex);
    return state_->done;
  }
  bool await_suspend(std::coroutine_handle<> h) {
    Waker waker = make_waker(h);
    std::lock_guard lock(state_->mutex);
    if (state_->done) return false;
    state_->waker = waker;
    return true;
  }
  R await_resume() {
    std::unique_lock lock(state_->mutex);
    if (state_->exception) {
      // Taken out of the shared state, so the exception object is released on this thread, not on the
      // pool thread (which may drop the state last): its refcount lives in uninstrumented libsupc++,
      // and TSan would see a free racing with the handler's reads.
      std::exception_ptr exception = std::exchange(state_->exception, nullptr);
      lock.unlock();
      std::rethrow_exception(std::move(exception));
    }
    if constexpr (!std::is_void_v<R>) return std::move(*state_->value);
  }

 private:
  std::shared_ptr<BlockingState<R>> state_;
};

}  // namespace detail

/// Runs `function` on the blocking pool; the awaiting task waits without holding a runtime thread.
/// Its result (or exception) becomes the co_await's. If the awaiting task is cancelled, the function
/// still runs to the end (a thread cannot be interrupted), and its result is dropped.
///
///   auto reading = spawn_blocking([path] { return read_whole_file(path); });
///   std::string text = co_await std::move(reading);   // bound first: see "GCC 12" in architecture.md
template <class F>
detail::BlockingAwaiter<std::invoke_result_t<F>> spawn_blocking(F function) {
  using R = std::invoke_result_t<F>;
  auto state = std::make_shared<detail::BlockingState<R>>();
  detail::submit_blocking([state, function = std::move(function)]() mutable {
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    std::exception_ptr exception;
    try {
      if constexpr (std::is_void_v<R>) {
        function();
        value.emplace(true);
      } else {
        value.emplace(function());
      }
    } catch (...) {
      exception = std::current_exception();
    }
    std::lock_guard lock(state->mutex);
    state->value = std::move(value);
    state->exception = std::move(exception);  // no reference stays on this thread
    state->done = true;
    if (state->waker) std::exchange(state->waker, detail::Waker{}).wake();
  });
  return detail::BlockingAwaiter<R>{std::move(state)};
}

}  // namespace spindle
