#include "spindle/runtime/blocking.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "spindle/net/resolve.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/runtime/when.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;

namespace {

TEST(SpawnBlocking, ReturnsTheResultOffTheRuntimeThread) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    const auto runtime_thread = std::this_thread::get_id();
    auto worker = co_await spindle::spawn_blocking([] { return std::this_thread::get_id(); });
    EXPECT_NE(worker, runtime_thread);
    co_await spindle::spawn_blocking([] {});  // void works too
  }());
}

TEST(SpawnBlocking, ExceptionsReachTheAwaiter) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    try {
      co_await spindle::spawn_blocking([]() -> int { throw std::runtime_error("disk on fire"); });
      ADD_FAILURE();
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "disk on fire");
    }
  }());
}

// Eight 100 ms sleeps in parallel take about 100 ms, not 800: the pool grows to run them at once, and
// the runtime thread stays free meanwhile (a timer fires on time).
TEST(SpawnBlocking, BlockingJobsRunInParallelAndTheRuntimeStaysResponsive) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    std::vector<Task<int>> jobs;
    for (int i = 0; i < 8; ++i)
      jobs.push_back([](int id) -> Task<int> {
        co_return co_await spindle::spawn_blocking([id] {
          std::this_thread::sleep_for(100ms);
          return id;
        });
      }(i));
    const auto start = std::chrono::steady_clock::now();
    auto ticker = spindle::spawn([]() -> Task<std::chrono::steady_clock::duration> {
      const auto t0 = std::chrono::steady_clock::now();
      co_await spindle::sleep(10ms);
      co_return std::chrono::steady_clock::now() - t0;
    }());
    auto ids = co_await spindle::when_all(std::move(jobs));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(ids.size(), 8u);
    EXPECT_LT(took, 600ms);
    EXPECT_LT((co_await std::move(ticker)).value(), 90ms);
    EXPECT_GE(spindle::detail::blocking_pool_stats().threads, 8u);
  }());
}

TEST(SpawnBlocking, ACancelledAwaiterLetsTheJobFinishUnobserved) {
  Runtime runtime;
  std::atomic<bool> finished{false};
  runtime.block_on([](std::atomic<bool>& flag) -> Task<void> {
    auto result = co_await spindle::timeout(5ms, spindle::spawn_blocking([&flag] {
                                              std::this_thread::sleep_for(50ms);
                                              flag = true;
                                              return 1;
                                            }));
    EXPECT_FALSE(result);
  }(finished));
  for (int i = 0; i < 200 && !finished; ++i) std::this_thread::sleep_for(5ms);
  EXPECT_TRUE(finished);
}

TEST(Resolve, LocalhostAndLiteralsAndAnUnknownName) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto local = co_await spindle::resolve("localhost", 8080);
    EXPECT_TRUE(local);
    if (local) {
      EXPECT_FALSE(local->empty());
      for (auto& address : *local) EXPECT_EQ(address.port(), 8080);
    }
    auto literal = co_await spindle::resolve("127.0.0.1", 1);
    EXPECT_TRUE(literal && literal->front().to_string() == "127.0.0.1:1");
    auto unknown = co_await spindle::resolve("no-such-host.invalid", 80);
    EXPECT_FALSE(unknown);
    if (!unknown) {
      EXPECT_FALSE(unknown.error().message().empty());
    }
  }());
}

}  // namespace
