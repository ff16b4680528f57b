#pragma once
// Runtime: owns a scheduler, a reactor, a timer wheel and a clock, and drives them. Two flavors, as in
// Tokio:
// - current_thread: every task runs on the thread that calls block_on() (src/runtime/current_thread.cpp);
// - multi_thread: worker threads with work stealing share one reactor and timer wheel; block_on() waits
//   for its task to finish on them (src/runtime/multi_thread.cpp; docs/architecture.md has the design).
//
// Either loop runs up to event_interval tasks between two polls of the reactor, so a flood of ready tasks
// cannot starve sockets (Tokio uses 61, "copied from Go").

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/task_dump.hpp"

namespace spindle {

namespace detail {
class RuntimeCore;
struct RuntimeOptions {
  enum class Flavor { current_thread, multi_thread };
  Flavor flavor = Flavor::current_thread;
  unsigned worker_threads = 0;  // multi_thread: 0 means one per hardware thread
  bool start_paused = false;
  unsigned event_interval = 61;
};
Scheduler& scheduler_of(RuntimeCore& core) noexcept;
void run_until_complete(RuntimeCore& core, TaskHeader& root);
}  // namespace detail

/// Counters of a runtime's activity since it started (for /metrics and debugging). Cheap to read from
/// any thread; each is exact for the runtime's own thread and may lag by a few events for others.
struct RuntimeMetrics {
  std::size_t live_tasks = 0;             ///< spawned and not finished
  std::uint64_t polls = 0;                ///< task turns (resumptions) run
  std::uint64_t parks = 0;                ///< times the loop slept in the reactor
  std::uint64_t io_completions = 0;       ///< socket operations finished by the reactor
  std::uint64_t timers_fired = 0;         ///< timers that expired
  std::uint64_t remote_schedules = 0;     ///< tasks queued from outside the runtime's threads
  std::size_t workers = 1;                ///< threads running tasks
  std::uint64_t steals = 0;               ///< batches of tasks one worker took from another's queue
  std::uint64_t overflows = 0;            ///< times a full local queue moved half of itself to the injection queue
  std::size_t injection_queue_depth = 0;  ///< tasks waiting in the shared injection queue
  std::size_t blocking_threads = 0;       ///< threads of the (process-wide) blocking pool
  std::size_t blocking_queue_depth = 0;   ///< jobs waiting for a blocking thread
};

/// A handle to a runtime, to spawn onto it from another thread. Valid while the runtime lives.
class Handle {
 public:
  explicit Handle(detail::RuntimeCore* core) noexcept : core_(core) {}

  /// Starts `task` on the runtime; thread-safe. It runs when the runtime's loop next runs.
  template <class T>
  JoinHandle<T> spawn(Task<T> task) {
    detail::Scheduler& scheduler = detail::scheduler_of(*core_);
    auto* spawned = new detail::SpawnedTask<T>(scheduler, std::move(task));
    spawned->add_ref();
    scheduler.spawn(*spawned);
    return JoinHandle<T>{spawned};
  }

 private:
  detail::RuntimeCore* core_;
};

/// The runtime.
///
///   int main() {
///     spindle::Runtime runtime = spindle::Runtime::multi_thread().build();   // one worker per core
///     return runtime.block_on(serve());         // runs serve() and everything it spawns
///   }
///
/// `Runtime runtime;` is the current_thread flavor (tests: `Runtime::current_thread().start_paused().build()`).
class Runtime {
 public:
  class Builder {
   public:
    explicit Builder(detail::RuntimeOptions::Flavor flavor) noexcept { options_.flavor = flavor; }
    /// Starts with the clock paused (deterministic timer tests): time moves only by time::advance(), or
    /// jumps to the next timer when every task is waiting. current_thread only, as in Tokio.
    Builder& start_paused(bool paused = true) noexcept {
      options_.start_paused = paused;
      return *this;
    }
    /// multi_thread: how many worker threads (default: one per hardware thread).
    Builder& worker_threads(unsigned count) noexcept {
      options_.worker_threads = count;
      return *this;
    }
    /// How many tasks run between two polls of the reactor when tasks are always ready.
    Builder& event_interval(unsigned tasks) noexcept {
      options_.event_interval = tasks == 0 ? 1 : tasks;
      return *this;
    }
    /// Throws std::invalid_argument for a paused multi_thread runtime.
    Runtime build() const { return Runtime{options_}; }

   private:
    detail::RuntimeOptions options_;
  };

  /// The builder of a runtime whose tasks all run on the thread calling block_on().
  static Builder current_thread() noexcept { return Builder{detail::RuntimeOptions::Flavor::current_thread}; }
  /// The builder of a work-stealing runtime: worker threads run the tasks, block_on() waits for its own.
  static Builder multi_thread() noexcept { return Builder{detail::RuntimeOptions::Flavor::multi_thread}; }

  Runtime() : Runtime(detail::RuntimeOptions{}) {}
  explicit Runtime(const detail::RuntimeOptions& options);
  Runtime(Runtime&&) noexcept;
  Runtime& operator=(Runtime&&) noexcept;
  /// Destroys every task still alive (their coroutines unwind; nothing more of theirs runs).
  ~Runtime();

  /// Runs `task` to completion on this thread, together with every task spawned meanwhile; returns its
  /// value or rethrows its exception.
  template <class T>
  T block_on(Task<T> task) {
    // Tokio refuses this too: the inner loop would run other tasks inside one that is running.
    if (detail::current_context() != nullptr)
      throw std::logic_error("spindle::Runtime::block_on called from inside a runtime; use co_await");
    detail::Scheduler& scheduler = detail::scheduler_of(*core_);
    auto* root = new detail::SpawnedTask<T>(scheduler, std::move(task));
    root->add_ref();
    JoinHandle<T> handle{root};
    scheduler.spawn(*root);
    detail::run_until_complete(*core_, *root);
    Result<T, JoinError> outcome = root->take_outcome();
    if (!outcome) {
      if (outcome.error().exception) std::rethrow_exception(outcome.error().exception);
      throw std::logic_error("spindle::Runtime::block_on: the root task was cancelled");
    }
    if constexpr (!std::is_void_v<T>) return std::move(outcome).value();
  }

  Handle handle() const noexcept { return Handle{core_.get()}; }
  /// Tasks spawned on this runtime and not yet finished.
  std::size_t live_tasks() const noexcept;
  /// Activity counters; see RuntimeMetrics.
  RuntimeMetrics metrics() const noexcept;
  /// Every live task: name, state, and where each waiting task is suspended (task_dump.hpp).
  std::vector<TaskSnapshot> dump_tasks();

  /// Graceful shutdown: keeps running the spawned tasks until all have finished or `limit` has passed;
  /// returns how many are still alive (the destructor then cancels them). Tell them to stop first
  /// (a CancellationToken) if they would not finish by themselves.
  ///
  ///   runtime.block_on(serve(listener, shutdown));   // returns once shutdown was requested
  ///   if (std::size_t left = runtime.drain(10s)) log("cancelling %zu tasks", left);
  std::size_t drain(std::chrono::nanoseconds limit);

 private:
  std::unique_ptr<detail::RuntimeCore> core_;
};

}  // namespace spindle
