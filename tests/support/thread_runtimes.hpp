#pragma once
// Test support: run a task on its own current-thread runtime in another thread, to exercise the sync
// primitives across threads (until the multi-threaded runtime exists, this is how tasks on different
// threads meet). TSan checks these tests in `make check`.

#include <thread>
#include <utility>

#include "spindle/runtime/runtime.hpp"

namespace spindle_test {

class RuntimeThread {
 public:
  explicit RuntimeThread(spindle::Task<void> task)
      : thread_([t = std::move(task)]() mutable {
          spindle::Runtime runtime;
          runtime.block_on(std::move(t));
        }) {}
  RuntimeThread(const RuntimeThread&) = delete;
  RuntimeThread& operator=(const RuntimeThread&) = delete;
  ~RuntimeThread() { join(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::thread thread_;
};

}  // namespace spindle_test
