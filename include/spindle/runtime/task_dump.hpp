#pragma once
// Task dumps: what every live task of a runtime is doing, for a /debug/tasks endpoint or a log line when
// shutdown takes too long. Each entry names the task (spawn(task, {.name = ...})), its state, the
// coroutine it was spawned as and, for a waiting task, the innermost coroutine it is suspended in.
//
// Function names come from the module's symbol table (read from the file once, on the first dump): a
// stripped binary shows module+offset instead, which `addr2line -f -C -e <module> <offset>` resolves
// with the unstripped one. Reading where a coroutine is suspended relies on the coroutine frame layout
// GCC, clang and MSVC share (a frame starts with its resume function). A dump holds each waiting task
// still for the moment it is read (wakes meanwhile are kept), so it is safe while the runtime runs, and
// costs a lock of the task list: for debugging endpoints, not hot paths.

#include <string>
#include <vector>

namespace spindle {

/// One live task as a dump saw it.
struct TaskSnapshot {
  enum class State {
    waiting,  ///< suspended, waiting for an event
    queued,   ///< ready, in a run queue
    running,  ///< being resumed by a worker right now (the task taking the dump, for one)
  };
  const void* id = nullptr;  ///< the task's address: stable for its life, reused after
  std::string name;          ///< given at spawn; empty if none
  State state = State::waiting;
  std::string spawned_as;    ///< the task's root coroutine (waiting tasks)
  std::string suspended_in;  ///< the innermost coroutine, where it waits (waiting tasks)
};

/// The live tasks of the runtime the calling task runs on (throws std::logic_error outside one).
///
///   for (const TaskSnapshot& t : spindle::dump_tasks()) log("{} {} in {}", t.name, t.spawned_as, t.suspended_in);
std::vector<TaskSnapshot> dump_tasks();

/// One line per task: "0x55d0c8a0 waiting  "accept loop"  serve(TcpListener) in TcpListener::accept()".
std::string format_task_dump(const std::vector<TaskSnapshot>& tasks);

}  // namespace spindle
