#pragma once
// Scheduler: what a runtime flavor must provide to run tasks. The current-thread flavor implements it
// with one FIFO run queue; the multi-threaded flavor (work stealing) implements the same interface.
// The base class keeps the list of live tasks, so that shutdown can destroy every task still suspended.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/task_dump.hpp"

namespace spindle::detail {

/// Why a task is being queued; the work-stealing scheduler places it accordingly.
enum class ScheduleHint {
  spawned,  ///< a new task: back of the spawning worker's queue
  woken,    ///< woken by an event: the waking worker's LIFO slot (message passing stays on one thread)
  yielded,  ///< yielded or woken while it ran: back of the queue, so it cannot starve the others
};

class Scheduler {
 public:
  Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;
  virtual ~Scheduler() = default;

  /// Takes ownership of a new task (it stays listed until it completes) and queues its first run.
  void spawn(TaskHeader& task, std::string_view name = {});
  /// The value of TaskHeader::pin_to() that keeps a task on the calling thread (0 where tasks never move).
  /// Throws std::logic_error if the calling thread does not run this scheduler's tasks.
  virtual std::uint16_t pin_for_current_thread() const { return 0; }
  /// Queues a task to run. Callable from any thread.
  virtual void schedule(TaskHeader& task, ScheduleHint hint) noexcept = 0;
  /// Called by a task as it completes: unlists it and drops the scheduler's reference.
  void on_task_complete(TaskHeader& task) noexcept;
  /// Tasks spawned and not yet complete.
  std::size_t live_tasks() const noexcept;
  /// A snapshot of every live task (task_dump.hpp). Waiting tasks are held still while they are read.
  std::vector<TaskSnapshot> dump_tasks();

 protected:
  /// Destroys every task still listed (runtime shutdown). Their awaiters deregister as frames unwind.
  void cancel_all_tasks() noexcept;
  /// Called once a task has completed and been unlisted, with the number of tasks still live.
  virtual void task_finished(TaskHeader& /*task*/, std::size_t /*live_left*/) noexcept {}

 private:
  mutable std::mutex owned_mutex_;
  TaskHeader* owned_head_ = nullptr;
  std::size_t live_tasks_ = 0;
  std::unordered_map<const TaskHeader*, std::string> names_;  // only tasks spawned with a name
};

}  // namespace spindle::detail
