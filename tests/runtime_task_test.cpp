#include "spindle/runtime/task.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "spindle/runtime/runtime.hpp"

using spindle::Runtime;
using spindle::Task;

namespace {

Task<int> forty_two() { co_return 42; }

Task<int> add_one(int x) { co_return x + 1; }

Task<std::string> chained() {
  const int a = co_await forty_two();
  const int b = co_await add_one(a);
  co_return std::to_string(b);
}

TEST(Task, AwaitsValuesThroughAChain) {
  Runtime runtime;
  EXPECT_EQ(runtime.block_on(chained()), "43");
}

TEST(Task, IsLazy) {
  bool started = false;
  auto body = [&]() -> Task<void> {
    started = true;
    co_return;
  };
  Task<void> task = body();
  EXPECT_FALSE(started);
  Runtime runtime;
  runtime.block_on(std::move(task));
  EXPECT_TRUE(started);
}

TEST(Task, DestroyingAnUnstartedTaskRunsNothingAndFreesItsFrame) {
  auto owned = std::make_shared<int>(1);
  bool ran = false;
  {
    auto body = [&ran]([[maybe_unused]] std::shared_ptr<int> keep) -> Task<void> {
      ran = true;
      co_return;
    };
    Task<void> task = body(owned);
    EXPECT_EQ(owned.use_count(), 2);  // the parameter lives in the frame
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(owned.use_count(), 1);
}

Task<int> throws_logic_error() {
  throw std::logic_error("bad thing");
  co_return 0;
}

Task<std::string> catches() {
  try {
    co_await throws_logic_error();
  } catch (const std::logic_error& e) {
    co_return std::string("caught: ") + e.what();
  }
  co_return "not caught";
}

TEST(Task, ExceptionsPropagateToTheAwaiter) {
  Runtime runtime;
  EXPECT_EQ(runtime.block_on(catches()), "caught: bad thing");
  EXPECT_THROW(runtime.block_on(throws_logic_error()), std::logic_error);
}

TEST(Task, MoveOnlyResults) {
  Runtime runtime;
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(9); };
  std::unique_ptr<int> p = runtime.block_on(make());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 9);
}

TEST(Task, MoveAssignmentDestroysThePreviousFrame) {
  auto owned = std::make_shared<int>(1);
  auto body = []([[maybe_unused]] std::shared_ptr<int> keep) -> Task<void> { co_return; };
  Task<void> task = body(owned);
  EXPECT_EQ(owned.use_count(), 2);
  task = []() -> Task<void> { co_return; }();
  EXPECT_EQ(owned.use_count(), 1);
}

Task<void> completes_synchronously() { co_return; }

Task<long> await_in_a_loop(long iterations) {
  long count = 0;
  for (long i = 0; i < iterations; ++i) {
    co_await completes_synchronously();
    ++count;
  }
  co_return count;
}

// Symmetric transfer: each await enters the child and the child's completion jumps back, so a million
// awaits that never suspend must not grow the stack (they overflow it if the tail call is not made).
TEST(Task, AMillionSynchronousAwaitsRunInConstantStack) {
  Runtime runtime;
  EXPECT_EQ(runtime.block_on(await_in_a_loop(1'000'000)), 1'000'000);
}

}  // namespace
