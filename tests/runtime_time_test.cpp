#include "spindle/runtime/time.hpp"

#include <gtest/gtest.h>

#include "support/co_assert.hpp"

#include <memory>
#include <vector>

#include "spindle/net/unix_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"

using namespace std::chrono_literals;
using spindle::Instant;
using spindle::Runtime;
using spindle::Task;

namespace {

Runtime paused_runtime() { return Runtime::current_thread().start_paused().build(); }

TEST(Time, SleepOnAPausedClockTakesNoRealTimeAndEndsExactlyOnTime) {
  Runtime runtime = paused_runtime();
  const auto real_start = std::chrono::steady_clock::now();
  runtime.block_on([]() -> Task<void> {
    const Instant start = spindle::now();
    co_await spindle::sleep(10s);
    EXPECT_EQ(spindle::now() - start, 10s);
    co_await spindle::sleep(1500ms);
    EXPECT_EQ(spindle::now() - start, 11500ms);
  }());
  EXPECT_LT(std::chrono::steady_clock::now() - real_start, 2s);
}

TEST(Time, SleepOnTheRealClockNeverEndsEarly) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    for (auto duration : {1ms, 5ms, 20ms}) {
      const Instant start = spindle::now();
      co_await spindle::sleep(duration);
      EXPECT_GE(spindle::now() - start, duration);
    }
  }());
}

TEST(Time, SleepersWakeInDeadlineOrder) {
  Runtime runtime = paused_runtime();
  std::vector<int> woke;
  runtime.block_on([&]() -> Task<void> {
    std::vector<spindle::JoinHandle<void>> handles;
    for (int ms : {30, 10, 20, 5000, 1}) {
      handles.push_back(spindle::spawn([](int delay, std::vector<int>& out) -> Task<void> {
        co_await spindle::sleep(std::chrono::milliseconds(delay));
        out.push_back(delay);
      }(ms, woke)));
    }
    for (auto& h : handles) (void)co_await std::move(h);
  }());
  EXPECT_EQ(woke, (std::vector<int>{1, 10, 20, 30, 5000}));
}

TEST(Time, AdvanceMovesThePausedClockAndFiresDueTimers) {
  Runtime runtime = paused_runtime();
  runtime.block_on([]() -> Task<void> {
    bool woke = false;
    auto handle = spindle::spawn([](bool& flag) -> Task<void> {
      co_await spindle::sleep(100ms);
      flag = true;
    }(woke));
    co_await spindle::yield_now();
    co_await spindle::time::advance(99ms);
    EXPECT_FALSE(woke);
    co_await spindle::time::advance(1ms);
    EXPECT_TRUE(woke);
    (void)co_await std::move(handle);
  }());
}

Task<int> slow_value(std::chrono::milliseconds delay, int value) {
  co_await spindle::sleep(delay);
  co_return value;
}

TEST(Time, TimeoutReturnsTheValueWhenInTime) {
  Runtime runtime = paused_runtime();
  runtime.block_on([]() -> Task<void> {
    auto result = co_await spindle::timeout(100ms, slow_value(50ms, 7));
    CO_ASSERT(result);
    EXPECT_EQ(*result, 7);
  }());
}

TEST(Time, TimeoutCancelsTheOperationOnExpiry) {
  Runtime runtime = paused_runtime();
  auto witness = std::make_shared<int>(0);
  runtime.block_on([&]() -> Task<void> {
    const Instant start = spindle::now();
    auto body = []([[maybe_unused]] std::shared_ptr<int> held) -> Task<int> {
      co_await spindle::sleep(1h);
      co_return 1;
    };
    auto result = co_await spindle::timeout(250ms, body(witness));
    EXPECT_FALSE(result);
    EXPECT_EQ(spindle::now() - start, 250ms);
    EXPECT_EQ(witness.use_count(), 1);  // the operation's frame is gone
  }());
}

TEST(Time, TimeoutPollsTheOperationOnceEvenWithZeroDuration) {
  Runtime runtime = paused_runtime();
  runtime.block_on([]() -> Task<void> {
    auto immediate = []() -> Task<int> { co_return 3; };
    auto result = co_await spindle::timeout(0ms, immediate());
    CO_ASSERT(result);
    EXPECT_EQ(*result, 3);
  }());
}

TEST(Time, TimeoutOnASocketReadLeavesTheSocketUsable) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto pair = spindle::UnixStream::pair();
    auto& [a, b] = *pair;
    std::array<std::byte, 16> buffer{};
    auto first = co_await spindle::timeout(20ms, a.read(buffer));
    EXPECT_FALSE(first);  // nothing was sent: timed out, the parked read was withdrawn
    (void)co_await b.write_all("hi");
    auto second = co_await spindle::timeout(1s, a.read(buffer));
    CO_ASSERT(second);
    CO_ASSERT(*second);
    EXPECT_EQ(**second, 2u);
  }());
}

TEST(Time, NestedTimeoutsTheInnerOneWins) {
  Runtime runtime = paused_runtime();
  runtime.block_on([]() -> Task<void> {
    auto inner = []() -> Task<spindle::Result<int, spindle::TimedOut>> {
      co_return co_await spindle::timeout(10ms, slow_value(1h, 1));
    };
    auto outer = co_await spindle::timeout(1s, inner());
    CO_ASSERT(outer);
    EXPECT_FALSE(*outer);
  }());
}

TEST(Time, IntervalTicksEveryPeriodFromNow) {
  Runtime runtime = paused_runtime();
  runtime.block_on([]() -> Task<void> {
    const Instant start = spindle::now();
    spindle::Interval ticker = spindle::interval(100ms);
    std::vector<std::chrono::milliseconds> at;
    for (int i = 0; i < 4; ++i) {
      co_await ticker.tick();
      at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start));
    }
    EXPECT_EQ(at, (std::vector<std::chrono::milliseconds>{0ms, 100ms, 200ms, 300ms}));
  }());
}

// The task is busy for 350 ms between ticks 0 and 1 of a 100 ms interval: what happens next depends on
// the missed-tick behaviour.
std::vector<std::chrono::milliseconds> ticks_after_stall(spindle::MissedTickBehavior behavior) {
  Runtime runtime = paused_runtime();
  return runtime.block_on([](spindle::MissedTickBehavior b) -> Task<std::vector<std::chrono::milliseconds>> {
    const Instant start = spindle::now();
    spindle::Interval ticker{start, 100ms, b};
    std::vector<std::chrono::milliseconds> at;
    co_await ticker.tick();
    co_await spindle::time::advance(350ms);
    for (int i = 0; i < 4; ++i) {
      co_await ticker.tick();
      at.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(spindle::now() - start));
    }
    co_return at;
  }(behavior));
}

TEST(Time, IntervalMissedTickBehaviours) {
  using B = spindle::MissedTickBehavior;
  EXPECT_EQ(ticks_after_stall(B::burst), (std::vector<std::chrono::milliseconds>{350ms, 350ms, 350ms, 400ms}));
  EXPECT_EQ(ticks_after_stall(B::delay), (std::vector<std::chrono::milliseconds>{350ms, 450ms, 550ms, 650ms}));
  EXPECT_EQ(ticks_after_stall(B::skip), (std::vector<std::chrono::milliseconds>{350ms, 400ms, 500ms, 600ms}));
}

TEST(Time, AdvanceNeedsAPausedClock) {
  Runtime runtime;
  EXPECT_THROW(runtime.block_on(spindle::time::advance(1ms)), std::logic_error);
}

}  // namespace
