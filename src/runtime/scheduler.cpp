#include "spindle/runtime/detail/scheduler.hpp"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/log.hpp"
#include "spindle/runtime/spawn.hpp"
#include "symbolize.hpp"

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

std::vector<TaskSnapshot> dump_tasks() {
  return detail::require_context("spindle::dump_tasks").scheduler->dump_tasks();
}

std::string format_task_dump(const std::vector<TaskSnapshot>& tasks) {
  std::string out;
  for (const TaskSnapshot& task : tasks) {
    char id[32];
    std::snprintf(id, sizeof id, "%p", task.id);
    out += id;
    out += task.state == TaskSnapshot::State::waiting  ? " waiting"
           : task.state == TaskSnapshot::State::queued ? " queued "
                                                       : " running";
    if (!task.name.empty()) out += " \"" + task.name + "\"";
    if (!task.spawned_as.empty()) out += " " + task.spawned_as;
    if (!task.suspended_in.empty()) out += " in " + task.suspended_in;
    out += '\n';
  }
  return out;
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

void Scheduler::spawn(TaskHeader& task, std::string_view name) {
  {
    std::lock_guard lock(owned_mutex_);
    if (!name.empty()) {
      names_.emplace(&task, name);
      task.set_named();
    }
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
    if (task.named()) names_.erase(&task);
  }
  task_finished(task, live_left);
  task.release();
}

std::size_t Scheduler::live_tasks() const noexcept {
  std::lock_guard lock(owned_mutex_);
  return live_tasks_;
}

namespace {

// The function a suspended coroutine frame resumes into: the first word of the frame, in the layout GCC,
// clang and MSVC share.
const void* resume_function(const void* frame) noexcept {
  if (frame == nullptr) return nullptr;
  const void* function = nullptr;
  std::memcpy(&function, frame, sizeof function);
  return function;
}

}  // namespace

std::vector<TaskSnapshot> Scheduler::dump_tasks() {
  struct Raw {
    TaskSnapshot snapshot;
    const void* root = nullptr;
    const void* innermost = nullptr;
  };
  std::vector<Raw> raw;
  {
    std::lock_guard lock(owned_mutex_);
    raw.reserve(live_tasks_);
    for (TaskHeader* task = owned_head_; task != nullptr; task = task->owned_next) {
      Raw entry;
      entry.snapshot.id = task;
      if (task->named()) {
        if (auto name = names_.find(task); name != names_.end()) entry.snapshot.name = name->second;
      }
      if (task->begin_inspection()) {
        // Held still: its frames cannot be resumed or destroyed until end_turn().
        entry.root = resume_function(task->root_frame());
        entry.innermost = resume_function(task->suspended_at());
        task->end_turn();
      } else {
        entry.snapshot.state = task->is_running() ? TaskSnapshot::State::running : TaskSnapshot::State::queued;
      }
      raw.push_back(std::move(entry));
    }
  }
  std::vector<TaskSnapshot> tasks;
  tasks.reserve(raw.size());
  for (Raw& entry : raw) {
    entry.snapshot.spawned_as = describe_function(entry.root);
    entry.snapshot.suspended_in = describe_function(entry.innermost);
    tasks.push_back(std::move(entry.snapshot));
  }
  return tasks;
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
