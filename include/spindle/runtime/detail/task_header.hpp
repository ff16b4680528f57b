#pragma once
// TaskHeader: the unit the scheduler moves around. Every spawned task (and the root of block_on) has one;
// the coroutines a task awaits inside it (Task<T> chains) do not, they run on their root's header.
//
// Waking. An event (a readable socket, an expired timer, a finished task) wakes a task through a Waker:
// the header plus the coroutine to resume, which is the innermost coroutine of the chain, the one that
// suspended. wake() claims the task's wake point for that coroutine and puts the header on a run queue
// unless it is already queued or running. A task waits for one thing at a time, so one wake point
// suffices, and the first wake of a suspension wins: a second one (timeout() races its timer against the
// operation, which may finish on another thread at the same instant) finds the point taken and is
// dropped. The next run of the task takes the point back (resumes it) and marks it running: only the
// next suspension, which make_waker records, can be claimed again, so a waker left over from the
// suspension that just ended (the operation a timeout is destroying) cannot wake the task.
//
// The wake point word also says where a waiting task is suspended (make_waker records the coroutine,
// tagged, for task dumps), and a waker that must do work before it knows whether it wakes the task (the
// reactor retrying a parked syscall) holds a provisional claim meanwhile: other wakes fail, a run of the
// task started for another reason (a wake-up taken back) does not resume it, and the waker then
// confirms or withdraws it.
//
// State. The bits follow Tokio's task state: SCHEDULED (in a run queue), RUNNING (a worker is resuming
// it), NOTIFIED (woken while running: the worker queues it again when the resume returns), CANCELLED
// (abort requested: the next run destroys the coroutine chain instead of resuming it), COMPLETE. They are
// atomic so the same protocol holds once tasks are woken from other threads.
//
// Cancellation is destruction. Aborting a task destroys its suspended coroutine frames; every awaiter
// that registered a waker (socket, timer, join) removes it in its destructor, so nothing can wake a task
// that no longer exists. That rule is what makes abort() and timeout() safe; new awaiters must keep it.

#include <atomic>
#include <coroutine>
#include <cstdint>

namespace spindle::detail {

class Scheduler;
class TaskHeader;

/// What an awaiter keeps in order to resume its task later: call wake() once, from the task's own thread
/// or any other.
struct Waker {
  TaskHeader* task = nullptr;
  std::coroutine_handle<> resume_at;

  explicit operator bool() const noexcept { return task != nullptr; }
  inline void wake() const noexcept;
};

/// The task whose coroutine this thread is running now (null outside any task).
TaskHeader* current_task() noexcept;

/// Cooperative scheduling (Tokio's coop budget): each turn of a task may complete this many operations
/// without suspending (a read that finds data, a receive that finds a value). Past that, the operation
/// still completes but its task yields before continuing, so a connection whose socket is always ready
/// cannot keep the thread from every other task.
inline constexpr unsigned kCoopBudget = 128;

/// Takes one unit of the running task's budget; false once it is spent (the caller must yield).
bool coop_take() noexcept;

/// Makes `task` the current task for its lifetime: destructors that run when a task's coroutines are
/// destroyed from outside it (cancellation, a timeout) belong to that task and must see it as current.
class CurrentTaskScope {
 public:
  explicit CurrentTaskScope(TaskHeader* task) noexcept;
  ~CurrentTaskScope();
  CurrentTaskScope(const CurrentTaskScope&) = delete;
  CurrentTaskScope& operator=(const CurrentTaskScope&) = delete;

 private:
  TaskHeader* previous_;
};

/// A waker for the coroutine `h`, which is suspending inside the current task. Awaiters call this from
/// await_suspend. Awaiting outside a task is a bug: Spindle's awaitables need a runtime.
Waker make_waker(std::coroutine_handle<> h);

class TaskHeader {
 public:
  enum StateBit : std::uint32_t {
    kScheduled = 1u << 0,
    kRunning = 1u << 1,
    kNotified = 1u << 2,
    kCancelled = 1u << 3,
    kComplete = 1u << 4,
  };

  TaskHeader(const TaskHeader&) = delete;
  TaskHeader& operator=(const TaskHeader&) = delete;

  /// Resumes `resume_at` on this task's scheduler soon, unless this suspension was woken already.
  void wake(std::coroutine_handle<> resume_at) noexcept {
    if (claim(address_of(resume_at))) schedule_claimed();
  }
  /// Takes the wake point for `resume_at`; false if another wake took it first (this one must be dropped).
  /// Follow a successful claim with schedule_claimed().
  bool claim_wake(std::coroutine_handle<> resume_at) noexcept { return claim(address_of(resume_at)); }
  /// Takes the wake point without deciding yet; then confirm_wake() or withdraw_wake().
  bool claim_wake_provisionally(std::coroutine_handle<> resume_at) noexcept {
    return claim(address_of(resume_at) | kProvisional);
  }
  void confirm_wake(std::coroutine_handle<> resume_at) noexcept {
    wake_point_.store(address_of(resume_at), std::memory_order_release);
    schedule_claimed();
  }
  void withdraw_wake(std::coroutine_handle<> resume_at) noexcept {
    wake_point_.store(address_of(resume_at) | kSuspendedAt, std::memory_order_release);
  }
  /// Takes back a wake-up the task itself no longer needs (it is running); true if `resume_at` held it.
  bool retract_wake(std::coroutine_handle<> resume_at) noexcept {
    std::uintptr_t expected = address_of(resume_at);
    return wake_point_.compare_exchange_strong(expected, kRunningMark, std::memory_order_acq_rel,
                                               std::memory_order_acquire);
  }
  /// Queues the task after a successful claim_wake() (or marks it notified if it is running).
  void schedule_claimed() noexcept;
  /// Opens a new suspension at `h`: from now on a wake for it may claim the wake point (and one left
  /// over from the previous suspension may not). Also what dumps show. Never overrides a pending wake.
  void record_suspension(std::coroutine_handle<> h) noexcept {
    std::uintptr_t current = wake_point_.load(std::memory_order_relaxed);
    while ((current == kRunningMark || (current & kTags) == kSuspendedAt) &&
           !wake_point_.compare_exchange_weak(current, address_of(h) | kSuspendedAt, std::memory_order_release,
                                              std::memory_order_relaxed)) {
    }
  }
  /// The innermost coroutine of a waiting task (where it is suspended), if known; else null.
  void* suspended_at() const noexcept {
    const std::uintptr_t current = wake_point_.load(std::memory_order_acquire);
    return reinterpret_cast<void*>(current & ~kTags);
  }
  /// Queues the first run of a new task (its resume point is the root coroutine, set at construction).
  void schedule_first_run() noexcept;
  /// Asks for cancellation: the task's frames are destroyed at its next turn on the scheduler.
  void request_abort() noexcept;
  /// Called by the scheduler that dequeued this task: resumes it, or destroys it if cancelled.
  void run() noexcept;
  /// Destroys the task's coroutines now, without running them: runtime shutdown only.
  void cancel_now() noexcept;

  /// For task dumps: holds a waiting task as if running it (nothing resumes or destroys its frames
  /// meanwhile; wakes are kept and acted on by end_turn()). False if it is queued, running or finished.
  bool begin_inspection() noexcept;
  /// Ends a run or an inspection: queues the task again if it was woken or aborted meanwhile.
  void end_turn() noexcept;
  /// The frame of the task's root coroutine (while the task is held or waiting).
  virtual void* root_frame() const noexcept = 0;
  bool is_running() const noexcept { return (state_.load(std::memory_order_acquire) & kRunning) != 0; }
  /// Whether the scheduler's name table has an entry for this task (spawned with a name).
  bool named() const noexcept { return named_; }
  void set_named() noexcept { named_ = true; }

  // seq_cst, with complete()'s fetch_or: a thread that publishes "I wait for this task" and then checks
  // is_complete(), against the task that completes and then checks who waits (block_on), cannot both
  // miss each other.
  bool is_complete() const noexcept { return (state_.load(std::memory_order_seq_cst) & kComplete) != 0; }
  bool was_cancelled() const noexcept { return cancelled_outcome_; }

  /// Registers who to wake on completion; false if the task is complete already.
  bool set_join_waker(Waker waker) noexcept;
  void clear_join_waker() noexcept;
  /// Marks the task as detached: nobody will read its outcome, so an exception it throws is logged.
  void detach() noexcept;

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  Scheduler& scheduler() const noexcept { return *scheduler_; }
  /// The worker (index + 1) a spawn_local() task must run on; 0 for a task free to migrate.
  std::uint16_t pinned_worker() const noexcept { return pinned_worker_; }
  void pin_to(std::uint16_t worker) noexcept { pinned_worker_ = worker; }

  /// Set by the root coroutine's final awaiter: the task has returned.
  void mark_root_finished() noexcept { root_finished_ = true; }

  /// The task's task-local values, innermost scope first (see task_local.hpp). Only the task touches it.
  struct LocalEntry {
    const void* key;
    void* value;
    LocalEntry* outer;
  };
  LocalEntry* locals = nullptr;

  // Intrusive links, owned by the scheduler: run queue, and the list of the runtime's live tasks.
  TaskHeader* queue_next = nullptr;
  TaskHeader* owned_prev = nullptr;
  TaskHeader* owned_next = nullptr;

 protected:
  explicit TaskHeader(Scheduler& scheduler, std::coroutine_handle<> root) noexcept
      : scheduler_(&scheduler), wake_point_(address_of(root)) {}
  virtual ~TaskHeader() = default;

  /// Destroys the coroutine chain (its awaiters deregister their wakers as they go).
  virtual void destroy_coroutines() noexcept = 0;
  /// Reports an exception nobody will observe (detached task); returns false if there is none.
  virtual void report_unobserved_exception() noexcept = 0;

 private:
  void complete() noexcept;

  Scheduler* scheduler_;
  // Tags in the low bits of the wake point (coroutine frames are at least 8-byte aligned).
  static constexpr std::uintptr_t kSuspendedAt = 1;  // not a wake: where the task waits, for dumps
  static constexpr std::uintptr_t kProvisional = 2;  // claimed by a waker that has not decided yet
  static constexpr std::uintptr_t kTags = kSuspendedAt | kProvisional;
  // Set by run() as it takes the wake point: resumed, no new suspension yet. Nothing can claim it, so
  // a waker of the suspension just ended (the operation a timeout is about to destroy, still
  // registered) cannot wake a coroutine that is about to be gone.
  static constexpr std::uintptr_t kRunningMark = kTags;
  static std::uintptr_t address_of(std::coroutine_handle<> h) noexcept {
    return reinterpret_cast<std::uintptr_t>(h.address());
  }
  // Only an open suspension (recorded by make_waker, not yet woken) can be claimed.
  bool claim(std::uintptr_t point) noexcept {
    std::uintptr_t current = wake_point_.load(std::memory_order_acquire);
    while ((current & kTags) == kSuspendedAt) {
      if (wake_point_.compare_exchange_weak(current, point, std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
    }
    return false;
  }

  // The coroutine the next run resumes, untagged; or, tagged, where the task waits, a provisional claim,
  // or kRunningMark. See claim_wake().
  std::atomic<std::uintptr_t> wake_point_;
  std::atomic<std::uint32_t> state_{0};
  std::atomic<std::uint32_t> refs_{1};  // the scheduler's reference, dropped when the task completes
  Waker join_waker_;
  // The small fields together, after the 8-byte ones: the header is 88 bytes, 96 with a Task<T>.
  std::atomic_flag join_lock_;
  bool root_finished_ = false;
  bool cancelled_outcome_ = false;
  std::atomic<bool> detached_{false};
  std::uint16_t pinned_worker_ = 0;  // set before the first run, read by the scheduler only
  bool named_ = false;
};

inline void Waker::wake() const noexcept { task->wake(resume_at); }

}  // namespace spindle::detail
