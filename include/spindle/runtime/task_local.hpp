#pragma once
// TaskLocal<T>: a value that belongs to the running task (a request id, a tracing span) and follows it
// across awaits and, later, across threads: it lives in the task's header, not in thread-local storage.
// Spawned tasks do not inherit it; pass what they need, or scope them again.

#include <stdexcept>
#include <utility>

#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// A key for task-local values of type T. Declare one per meaning, usually as a global constant.
///
///   inline const TaskLocal<std::string> request_id;
///   co_await request_id.scope(make_id(), handle(request));    // inside handle(): request_id.get()
template <class T>
class TaskLocal {
 public:
  TaskLocal() = default;
  TaskLocal(const TaskLocal&) = delete;
  TaskLocal& operator=(const TaskLocal&) = delete;

  /// Runs `task` with this key set to `value` (an inner scope of the same key shadows an outer one).
  template <class R>
  Task<R> scope(T value, Task<R> task) const {
    return scoped(this, std::move(value), std::move(task));
  }

  /// Runs the synchronous `function` with this key set to `value` (outside a task, simply runs it).
  ///
  ///   request_id.with(id, [&] { return handle_now(request); });
  template <class F>
  decltype(auto) with(T& value, F&& function) const {
    if (detail::current_task() == nullptr) return std::forward<F>(function)();
    ScopeGuard guard(this, &value);
    return std::forward<F>(function)();
  }

  /// The value of the innermost scope in the current task, or null outside any.
  T* try_get() const noexcept {
    const detail::TaskHeader* task = detail::current_task();
    if (task == nullptr) return nullptr;
    for (auto* entry = task->locals; entry != nullptr; entry = entry->outer)
      if (entry->key == this) return static_cast<T*>(entry->value);
    return nullptr;
  }
  /// The same; outside any scope of this key it throws std::logic_error (a bug, as in Tokio).
  T& get() const {
    if (T* value = try_get()) return *value;
    throw std::logic_error("spindle::TaskLocal::get() outside a scope of this key");
  }

 private:
  // Pushes the entry on the current task's list for the life of the scope coroutine's body.
  class ScopeGuard {
   public:
    ScopeGuard(const void* key, void* value)
        : task_(detail::current_task()), entry_{key, value, task_ != nullptr ? task_->locals : nullptr} {
      if (task_ == nullptr) throw std::logic_error("spindle::TaskLocal::scope awaited outside a task");
      task_->locals = &entry_;
    }
    ScopeGuard(const ScopeGuard&) = delete;
    ScopeGuard& operator=(const ScopeGuard&) = delete;
    ~ScopeGuard() { task_->locals = entry_.outer; }

   private:
    detail::TaskHeader* task_;
    detail::TaskHeader::LocalEntry entry_;
  };

  template <class R>
  static Task<R> scoped(const TaskLocal* key, T value, Task<R> task) {
    ScopeGuard guard(key, &value);
    co_return co_await std::move(task);
  }
};

}  // namespace spindle
