#include "spindle/runtime/when.hpp"

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "spindle/net/unix_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/time.hpp"
#include "support/co_assert.hpp"

using namespace std::chrono_literals;
using spindle::Instant;
using spindle::Runtime;
using spindle::Task;

namespace {

Task<int> after(std::chrono::milliseconds delay, int value) {
  co_await spindle::sleep(delay);
  co_return value;
}

Task<std::string> text_after(std::chrono::milliseconds delay, std::string value) {
  co_await spindle::sleep(delay);
  co_return value;
}

Task<void> nothing_after(std::chrono::milliseconds delay) { co_await spindle::sleep(delay); }

TEST(WhenAll, RunsConcurrentlyAndKeepsArgumentOrder) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    const Instant start = spindle::now();
    auto [a, b, c] = co_await spindle::when_all(after(30ms, 1), text_after(10ms, "two"), nothing_after(20ms));
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, "two");
    (void)c;
    EXPECT_EQ(spindle::now() - start, 30ms);  // concurrently: the longest, not the sum
  }());
}

TEST(WhenAll, VectorForm) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 50; ++i) tasks.push_back(after(std::chrono::milliseconds(50 - i), i));
    auto values = co_await spindle::when_all(std::move(tasks));
    for (int i = 0; i < 50; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i);
  }());
}

TEST(WhenAll, RethrowsTheFirstExceptionAfterAllFinished) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    bool slow_finished = false;
    auto failing = []() -> Task<int> {
      throw std::runtime_error("first");
      co_return 0;
    };
    auto slow = [](bool& flag) -> Task<void> {
      co_await spindle::sleep(10ms);
      flag = true;
    };
    try {
      co_await spindle::when_all(failing(), slow(slow_finished));
      ADD_FAILURE() << "expected an exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "first");
    }
    EXPECT_TRUE(slow_finished);
  }());
}

TEST(WhenAny, TheFirstWinsAndTheOthersAreAborted) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  auto witness = std::make_shared<int>(0);
  runtime.block_on([&]() -> Task<void> {
    auto slow = [](std::shared_ptr<int> held) -> Task<int> {
      (void)held;
      co_await spindle::sleep(1h);
      co_return -1;
    };
    std::vector<Task<int>> tasks;
    tasks.push_back(slow(witness));
    tasks.push_back(after(5ms, 42));
    tasks.push_back(slow(witness));
    const Instant start = spindle::now();
    auto [index, value] = co_await spindle::when_any(std::move(tasks));
    EXPECT_EQ(index, 1u);
    EXPECT_EQ(value, 42);
    EXPECT_EQ(spindle::now() - start, 5ms);
    co_await spindle::yield_now();
    EXPECT_EQ(witness.use_count(), 1);  // the losers are gone
  }());
}

TEST(Select, DifferentTypes) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    auto winner = co_await spindle::select(text_after(20ms, "slow"), after(5ms, 7), nothing_after(10ms));
    CO_ASSERT(winner.index() == 1u);
    EXPECT_EQ(std::get<1>(winner), 7);
    auto timer_wins = co_await spindle::select(text_after(1h, "never"), nothing_after(1ms));
    EXPECT_EQ(timer_wins.index(), 1u);
  }());
}

}  // namespace

namespace {

// The loser of a select was parked in a read on a socket; once select returns, it is gone and the
// socket's read slot is free again.
TEST(Select, LosersAreGoneWhenItReturns) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto pair = spindle::UnixStream::pair();
    CO_ASSERT(pair);
    auto& [a, b] = *pair;
    auto read_one = [](spindle::UnixStream& s) -> Task<std::size_t> {
      std::array<char, 8> buffer;
      auto n = co_await s.read(buffer);
      co_return n.value_or(0);
    };
    auto winner = co_await spindle::select(read_one(a), nothing_after(5ms));
    EXPECT_EQ(winner.index(), 1u);
    EXPECT_TRUE(co_await b.write_all("hi"));
    std::array<char, 8> buffer;
    auto n = co_await a.read(buffer);  // not EBUSY: the loser's parked read was withdrawn
    EXPECT_EQ(n.value(), 2u);
  }());
}

}  // namespace
