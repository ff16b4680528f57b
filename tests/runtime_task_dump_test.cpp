// Task dumps: names, states, and the coroutines waiting tasks are suspended in.
#include "spindle/runtime/task_dump.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/notify.hpp"
#include "support/co_assert.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskSnapshot;

Task<void> dump_test_inner_wait(spindle::Notify& notify) { co_await notify.notified(); }
Task<void> dump_test_outer(spindle::Notify& notify) {
  co_await dump_test_inner_wait(notify);
  co_await dump_test_inner_wait(notify);
}

namespace {

const TaskSnapshot* find_named(const std::vector<TaskSnapshot>& tasks, const std::string& name) {
  auto it = std::find_if(tasks.begin(), tasks.end(), [&](const TaskSnapshot& t) { return t.name == name; });
  return it == tasks.end() ? nullptr : &*it;
}

TEST(TaskDump, NamesStatesAndSuspensionPoints) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    spindle::Notify notify;
    auto waiter = spindle::spawn(dump_test_outer(notify), {.name = "waiter"});
    auto queued = spindle::spawn(dump_test_outer(notify), {.name = "not yet run"});
    co_await spindle::yield_now();  // the waiter runs and parks; so does the second
    auto fresh = spindle::spawn(dump_test_outer(notify), {.name = "fresh"});  // queued, not run yet

    const std::vector<TaskSnapshot> tasks = spindle::dump_tasks();
    EXPECT_EQ(tasks.size(), 4u);  // three, and this one
    const TaskSnapshot* w = find_named(tasks, "waiter");
    CO_ASSERT(w != nullptr);
    EXPECT_EQ(w->state, TaskSnapshot::State::waiting);
    EXPECT_NE(w->spawned_as.find("dump_test_outer"), std::string::npos) << w->spawned_as;
    EXPECT_NE(w->suspended_in.find("dump_test_inner_wait"), std::string::npos) << w->suspended_in;
    const TaskSnapshot* f = find_named(tasks, "fresh");
    CO_ASSERT(f != nullptr);
    EXPECT_EQ(f->state, TaskSnapshot::State::queued);
    const auto self = std::find_if(tasks.begin(), tasks.end(), [](const TaskSnapshot& t) { return t.name.empty(); });
    CO_ASSERT(self != tasks.end());
    EXPECT_EQ(self->state, TaskSnapshot::State::running);

    const std::string text = spindle::format_task_dump(tasks);
    EXPECT_NE(
        text.find("waiting \"waiter\" dump_test_outer(spindle::Notify&) in dump_test_inner_wait(spindle::Notify&)"),
        std::string::npos)
        << text;

    // The inspected tasks were let go as they were: they wake and finish.
    for (int round = 0; round < 10 && !(waiter.is_finished() && queued.is_finished() && fresh.is_finished()); ++round) {
      notify.notify_waiters();
      co_await spindle::yield_now();
    }
    EXPECT_TRUE(co_await std::move(waiter));
    EXPECT_TRUE(co_await std::move(queued));
    EXPECT_TRUE(co_await std::move(fresh));
    EXPECT_EQ(spindle::dump_tasks().size(), 1u);
  }());
}

// Dumps taken from another thread while the workers run tasks that wake each other: every dump sees
// every task, and no wake is lost to the inspections.
TEST(TaskDump, DumpingAMultiThreadRuntimeWhileItRuns) {
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  std::atomic<bool> stop{false};
  std::thread dumper([&] {
    for (; !stop.load(); std::this_thread::sleep_for(1ms)) {
      for (const TaskSnapshot& task : runtime.dump_tasks()) {
        if (task.state == TaskSnapshot::State::waiting && task.name == "sleeper") {
          EXPECT_NE(task.spawned_as.find("lambda"), std::string::npos) << task.spawned_as;
          EXPECT_FALSE(task.suspended_in.empty());
        }
      }
    }
  });
  const long total = runtime.block_on([]() -> Task<long> {
    std::vector<spindle::JoinHandle<long>> handles;
    for (int i = 0; i < 50; ++i) {
      handles.push_back(spindle::spawn(
          [](int n) -> Task<long> {
            long sum = 0;
            for (int k = 0; k < 40; ++k) {
              co_await spindle::sleep(1ms);
              sum += n;
            }
            co_return sum;
          }(i),
          {.name = "sleeper"}));
    }
    long sum = 0;
    for (auto& handle : handles) sum += *co_await std::move(handle);
    co_return sum;
  }());
  stop = true;
  dumper.join();
  EXPECT_EQ(total, 40L * (49 * 50 / 2));
}

}  // namespace
