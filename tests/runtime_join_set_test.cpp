#include "spindle/runtime/join_set.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/time.hpp"
#include "support/co_assert.hpp"

using namespace std::chrono_literals;
using spindle::JoinSet;
using spindle::Runtime;
using spindle::Task;

namespace {

Task<int> after(std::chrono::milliseconds delay, int value) {
  co_await spindle::sleep(delay);
  co_return value;
}

TEST(JoinSet, YieldsOutcomesInOrderOfCompletion) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    JoinSet<int> set;
    set.spawn(after(30ms, 3));
    set.spawn(after(10ms, 1));
    set.spawn(after(20ms, 2));
    std::vector<int> got;
    while (auto outcome = co_await set.join_next()) got.push_back(outcome->value());
    EXPECT_EQ(got, (std::vector<int>{1, 2, 3}));
    EXPECT_TRUE(set.empty());
  }());
}

TEST(JoinSet, ExceptionsAndAbortsAreOutcomesToo) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    JoinSet<int> set;
    set.spawn([]() -> Task<int> {
      throw std::runtime_error("boom");
      co_return 0;
    }());
    set.spawn(after(1h, 0));
    auto first = co_await set.join_next();
    CO_ASSERT(first && !*first);
    EXPECT_EQ(first->error().message(), "boom");
    set.abort_all();
    auto second = co_await set.join_next();
    CO_ASSERT(second && !*second);
    EXPECT_TRUE(second->error().is_cancelled());
    EXPECT_FALSE(co_await set.join_next());
  }());
}

TEST(JoinSet, AbortedBeforeItsFirstRunStillReports) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    JoinSet<void> set;
    set.spawn([]() -> Task<void> { co_return; }());
    set.abort_all();  // before the task ever ran
    auto outcome = co_await spindle::timeout(1s, set.join_next());
    CO_ASSERT(outcome);
    EXPECT_TRUE(outcome->has_value());
  }());
}

TEST(JoinSet, DestroyingTheSetAbortsItsTasks) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  auto witness = std::make_shared<int>(0);
  runtime.block_on([&]() -> Task<void> {
    {
      JoinSet<void> set;
      for (int i = 0; i < 5; ++i)
        set.spawn([](std::shared_ptr<int> held) -> Task<void> {
          (void)held;
          co_await spindle::sleep(1h);
        }(witness));
      co_await spindle::yield_now();
      EXPECT_EQ(witness.use_count(), 6);
    }
    co_await spindle::yield_now();  // aborted tasks are destroyed at their next turn
    EXPECT_EQ(witness.use_count(), 1);
  }());
}

}  // namespace
