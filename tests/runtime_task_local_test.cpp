#include "spindle/runtime/task_local.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskLocal;

namespace {

const TaskLocal<std::string> request_id;
const TaskLocal<int> depth;

Task<std::string> deep_inside() {
  co_await spindle::sleep(1ms);  // survives a suspension
  co_return request_id.get();
}

TEST(TaskLocal, VisibleInNestedCoroutinesAcrossAwaits) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    EXPECT_EQ(request_id.try_get(), nullptr);
    auto seen = co_await request_id.scope("req-1", deep_inside());
    EXPECT_EQ(seen, "req-1");
    EXPECT_EQ(request_id.try_get(), nullptr);  // the scope ended
    EXPECT_THROW((void)request_id.get(), std::logic_error);
  }());
}

TEST(TaskLocal, InnerScopesShadowAndKeysAreIndependent) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto inner = []() -> Task<std::string> {
      auto innermost = []() -> Task<std::string> { co_return request_id.get() + "/" + std::to_string(depth.get()); };
      co_return co_await request_id.scope("inner", innermost());
    };
    auto result = co_await depth.scope(7, request_id.scope("outer", inner()));
    EXPECT_EQ(result, "inner/7");
  }());
}

TEST(TaskLocal, EachTaskHasItsOwn) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    auto a = spindle::spawn(request_id.scope("a", deep_inside()));
    auto b = spindle::spawn(request_id.scope("b", deep_inside()));
    EXPECT_EQ((co_await std::move(a)).value(), "a");
    EXPECT_EQ((co_await std::move(b)).value(), "b");
    // Not inherited by spawned tasks.
    auto child = co_await request_id.scope("parent", []() -> Task<bool> {
      auto inner = co_await spindle::spawn([]() -> Task<bool> { co_return request_id.try_get() == nullptr; }());
      co_return inner.value();
    }());
    EXPECT_TRUE(child);
  }());
}

TEST(TaskLocal, ACancelledScopeIsUnwound) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    auto slow = request_id.scope("gone", []() -> Task<int> {
      co_await spindle::sleep(1h);
      co_return 0;
    }());
    auto timed_out = co_await spindle::timeout(1ms, std::move(slow));
    EXPECT_FALSE(timed_out);
    EXPECT_EQ(request_id.try_get(), nullptr);
  }());
}

// On the multi_thread runtime a task may resume on another worker after any await: its task-locals go
// with it (they live in the task, not in the thread). Many tasks, each checking its own value after
// every sleep; with two workers some of them certainly move.
TEST(TaskLocal, FollowsTasksThatMoveBetweenWorkers) {
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  const int wrong = runtime.block_on([]() -> Task<int> {
    std::vector<spindle::JoinHandle<int>> tasks;
    for (int i = 0; i < 200; ++i) {
      const std::string id = "req-" + std::to_string(i);
      auto body = [](std::string expected) -> Task<int> {
        int mismatches = 0;
        for (int k = 0; k < 20; ++k) {
          co_await spindle::sleep(1ms);
          if (request_id.get() != expected) ++mismatches;
        }
        co_return mismatches;
      };
      tasks.push_back(spindle::spawn(request_id.scope(id, body(id))));
    }
    int total = 0;
    for (auto& task : tasks) total += *co_await std::move(task);
    co_return total;
  }());
  EXPECT_EQ(wrong, 0);
}

}  // namespace
