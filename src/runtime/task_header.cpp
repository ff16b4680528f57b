#include "spindle/runtime/detail/task_header.hpp"

#include <stdexcept>
#include <utility>

#include "spindle/runtime/detail/scheduler.hpp"

namespace spindle::detail {
namespace {

thread_local TaskHeader* t_current_task = nullptr;
thread_local unsigned t_coop_budget = kCoopBudget;

}  // namespace

TaskHeader* current_task() noexcept { return t_current_task; }

CurrentTaskScope::CurrentTaskScope(TaskHeader* task) noexcept : previous_(t_current_task) { t_current_task = task; }
CurrentTaskScope::~CurrentTaskScope() { t_current_task = previous_; }

bool coop_take() noexcept {
  if (t_current_task == nullptr) return true;  // not inside a task: nothing to be fair to
  if (t_coop_budget == 0) return false;
  --t_coop_budget;
  return true;
}

Waker make_waker(std::coroutine_handle<> h) {
  TaskHeader* task = t_current_task;
  if (task == nullptr) throw std::logic_error("spindle: a runtime awaitable was awaited outside a spawned task");
  task->record_suspension(h);
  return Waker{task, h};
}

void TaskHeader::schedule_claimed() noexcept {
  // The wake point was published by the claim (acq_rel); the run that takes it acquires the state below.
  std::uint32_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state & (kComplete | kScheduled)) != 0) return;
    const std::uint32_t next = (state & kRunning) != 0 ? (state | kNotified) : (state | kScheduled);
    if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
      if ((next & kScheduled) != 0) scheduler_->schedule(*this, ScheduleHint::woken);
      return;
    }
  }
}

void TaskHeader::schedule_first_run() noexcept {
  state_.fetch_or(kScheduled, std::memory_order_acq_rel);
  scheduler_->schedule(*this, ScheduleHint::spawned);
}

void TaskHeader::request_abort() noexcept {
  std::uint32_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state & (kComplete | kCancelled)) != 0) return;
    std::uint32_t next = state | kCancelled;
    const bool must_queue = (state & (kScheduled | kRunning)) == 0;
    if (must_queue) next |= kScheduled;
    if (state_.compare_exchange_weak(state, next, std::memory_order_acq_rel, std::memory_order_acquire)) {
      if (must_queue) scheduler_->schedule(*this, ScheduleHint::woken);
      return;
    }
  }
}

void TaskHeader::run() noexcept {
  std::uint32_t state = state_.load(std::memory_order_acquire);
  while (!state_.compare_exchange_weak(state, (state & ~kScheduled) | kRunning, std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
  }
  if ((state & kCancelled) != 0) {
    cancel_now();
    return;
  }
  // Nothing to resume when the wake that queued this run was taken back (retract_wake), or when a
  // waker holds a provisional claim (it queues the task again if it confirms). A plain wake point
  // cannot change under us: every other claim fails while it is there.
  const std::uintptr_t point = wake_point_.load(std::memory_order_acquire);
  if (point != 0 && (point & kTags) == 0) {
    wake_point_.store(kRunningMark, std::memory_order_relaxed);
    CurrentTaskScope guard(this);
    t_coop_budget = kCoopBudget;
    std::coroutine_handle<>::from_address(reinterpret_cast<void*>(point)).resume();
  }
  if (root_finished_) {
    complete();
    return;
  }
  end_turn();
}

bool TaskHeader::begin_inspection() noexcept {
  std::uint32_t state = state_.load(std::memory_order_acquire);
  do {
    if ((state & (kScheduled | kRunning | kComplete)) != 0) return false;
  } while (
      !state_.compare_exchange_weak(state, state | kRunning, std::memory_order_acq_rel, std::memory_order_acquire));
  return true;
}

void TaskHeader::end_turn() noexcept {
  std::uint32_t state = state_.load(std::memory_order_acquire);
  std::uint32_t next = 0;
  do {
    next = state & ~(kRunning | kNotified);
    if ((state & (kNotified | kCancelled)) != 0) next |= kScheduled;
  } while (!state_.compare_exchange_weak(state, next, std::memory_order_acq_rel, std::memory_order_acquire));
  // Woken while it ran (or it yielded): behind the other queued tasks, never in a LIFO slot.
  if ((next & kScheduled) != 0) scheduler_->schedule(*this, ScheduleHint::yielded);
}

void TaskHeader::cancel_now() noexcept {
  {
    // Destructors of the task's locals run now; they belong to this task (and may, for instance, abort
    // tasks they own), so they run as it.
    CurrentTaskScope guard(this);
    destroy_coroutines();
  }
  cancelled_outcome_ = true;
  complete();
}

void TaskHeader::complete() noexcept {
  add_ref();  // keep this alive until we are done: the scheduler's reference goes below
  state_.fetch_or(kComplete, std::memory_order_seq_cst);  // see is_complete()
  if (detached_.load(std::memory_order_acquire)) report_unobserved_exception();
  // Woken under the lock: the joiner's awaiter clears its waker under the same lock before its task can
  // go away, so the task is alive while this wake runs (the rule of every wake source).
  while (join_lock_.test_and_set(std::memory_order_acquire)) {
  }
  if (Waker joiner = std::exchange(join_waker_, Waker{})) joiner.wake();
  join_lock_.clear(std::memory_order_release);
  scheduler_->on_task_complete(*this);
  release();
}

bool TaskHeader::set_join_waker(Waker waker) noexcept {
  while (join_lock_.test_and_set(std::memory_order_acquire)) {
  }
  const bool complete = is_complete();
  if (!complete) join_waker_ = waker;
  join_lock_.clear(std::memory_order_release);
  return !complete;
}

void TaskHeader::clear_join_waker() noexcept {
  while (join_lock_.test_and_set(std::memory_order_acquire)) {
  }
  join_waker_ = Waker{};
  join_lock_.clear(std::memory_order_release);
}

void TaskHeader::detach() noexcept { detached_.store(true, std::memory_order_release); }

}  // namespace spindle::detail
