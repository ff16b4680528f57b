#include "spindle/runtime/detail/scheduler.hpp"

#include <exception>
#include <string>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/log.hpp"
#include "spindle/runtime/spawn.hpp"

namespace spindle {

std::string JoinError::message() const {
  if (kind == Kind::cancelled) return "task was cancelled";
  try {
    std::rethrow_exception(exception);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "task threw a non-standard exception";
  }
}

namespace detail {

void log_unobserved_exception(const std::exception_ptr& exception) noexcept {
  const JoinError error{JoinError::Kind::exception, exception};
  try {
    log_warning("a detached task ended with an exception: %s", error.message().c_str());
  } catch (...) {  // message() allocates; logging must not throw
  }
}

namespace {
thread_local RuntimeContext* t_context = nullptr;
}  // namespace

RuntimeContext* current_context() noexcept { return t_context; }

RuntimeContext& require_context(const char* what) {
  if (t_context == nullptr) throw std::logic_error(std::string(what) + " called outside a Spindle runtime");
  return *t_context;
}

ContextGuard::ContextGuard(RuntimeContext* context) noexcept : previous_(t_context) { t_context = context; }
ContextGuard::~ContextGuard() { t_context = previous_; }

void Scheduler::spawn(TaskHeader& task) {
  {
    std::lock_guard lock(owned_mutex_);
    task.owned_prev = nullptr;
    task.owned_next = owned_head_;
    if (owned_head_ != nullptr) owned_head_->owned_prev = &task;
    owned_head_ = &task;
    ++live_tasks_;
  }
  task.schedule_first_run();
}

void Scheduler::on_task_complete(TaskHeader& task) noexcept {
  std::size_t live_left = 0;
  {
    std::lock_guard lock(owned_mutex_);
    if (task.owned_prev != nullptr)
      task.owned_prev->owned_next = task.owned_next;
    else
      owned_head_ = task.owned_next;
    if (task.owned_next != nullptr) task.owned_next->owned_prev = task.owned_prev;
    task.owned_prev = task.owned_next = nullptr;
    live_left = --live_tasks_;
  }
  task_finished(task, live_left);
  task.release();
}

std::size_t Scheduler::live_tasks() const noexcept {
  std::lock_guard lock(owned_mutex_);
  return live_tasks_;
}

void Scheduler::cancel_all_tasks() noexcept {
  // A destroyed task may own JoinHandles or spawn nothing new; repeat until the list stays empty.
  for (;;) {
    TaskHeader* task = nullptr;
    {
      std::lock_guard lock(owned_mutex_);
      task = owned_head_;
    }
    if (task == nullptr) return;
    task->cancel_now();
  }
}

}  // namespace detail
}  // namespace spindle
