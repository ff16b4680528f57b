#include "spindle/sync/semaphore.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/mutex.hpp"
#include "support/co_assert.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Semaphore;
using spindle::Task;

namespace {

TEST(Semaphore, LimitsConcurrency) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    Semaphore slots{3};
    int inside = 0, most = 0;
    std::vector<spindle::JoinHandle<void>> tasks;
    for (int i = 0; i < 10; ++i) {
      tasks.push_back(spindle::spawn([](Semaphore& s, int& now, int& peak) -> Task<void> {
        auto permit = co_await s.acquire();
        CO_ASSERT(permit);
        peak = std::max(peak, ++now);
        co_await spindle::sleep(10ms);
        --now;
      }(slots, inside, most)));
    }
    for (auto& t : tasks) EXPECT_TRUE(co_await std::move(t));
    EXPECT_EQ(most, 3);
    EXPECT_EQ(slots.available(), 3u);
  }());
}

TEST(Semaphore, IsFairALargeRequestIsNotOvertaken) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Semaphore s{2};
    auto held = s.try_acquire(2);
    CO_ASSERT(held);
    std::vector<int> order;
    auto big = spindle::spawn([](Semaphore& sem, std::vector<int>& out) -> Task<void> {
      auto p = co_await sem.acquire(2);
      out.push_back(2);
    }(s, order));
    co_await spindle::yield_now();
    auto small = spindle::spawn([](Semaphore& sem, std::vector<int>& out) -> Task<void> {
      auto p = co_await sem.acquire(1);
      out.push_back(1);
    }(s, order));
    co_await spindle::yield_now();
    EXPECT_FALSE(s.try_acquire(1));  // a waiter is ahead
    held = std::nullopt;             // give both permits back
    (void)co_await std::move(big);
    (void)co_await std::move(small);
    EXPECT_EQ(order, (std::vector<int>{2, 1}));
  }());
}

TEST(Semaphore, CancelledWaitersLeaveAndGrantedPermitsComeBack) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Semaphore s{1};
    auto held = s.try_acquire();
    auto waiting = spindle::spawn([](Semaphore& sem) -> Task<void> { auto p = co_await sem.acquire(); }(s));
    co_await spindle::yield_now();
    held = std::nullopt;  // granted to `waiting`...
    waiting.abort();      // ...which is cancelled before it runs
    (void)co_await std::move(waiting);
    EXPECT_EQ(s.available(), 1u);

    auto timed = co_await spindle::timeout(5ms, s.acquire(2));  // can never be satisfied
    EXPECT_FALSE(timed);
    auto one = co_await s.acquire();  // the withdrawn request does not block this one
    EXPECT_TRUE(one);
  }());
}

TEST(Semaphore, CloseFailsWaitersAndLaterAcquires) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Semaphore s{0};
    auto waiting = spindle::spawn([](Semaphore& sem) -> Task<bool> { co_return bool(co_await sem.acquire()); }(s));
    co_await spindle::yield_now();
    s.close();
    EXPECT_EQ((co_await std::move(waiting)).value(), false);
    EXPECT_FALSE(co_await s.acquire());
    EXPECT_TRUE(s.is_closed());
  }());
}

TEST(Mutex, GuardsDataAcrossAwaits) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    spindle::Mutex<std::vector<int>> shared;
    std::vector<spindle::JoinHandle<void>> tasks;
    for (int i = 0; i < 5; ++i) {
      tasks.push_back(spindle::spawn([](spindle::Mutex<std::vector<int>>& m, int id) -> Task<void> {
        auto guard = co_await m.lock();
        guard->push_back(id);
        co_await spindle::sleep(1ms);  // nobody else gets in meanwhile
        guard->push_back(id);
      }(shared, i)));
    }
    for (auto& t : tasks) (void)co_await std::move(t);
    auto guard = co_await shared.lock();
    EXPECT_EQ(*guard, (std::vector<int>{0, 0, 1, 1, 2, 2, 3, 3, 4, 4}));
    EXPECT_FALSE(shared.try_lock());
  }());
}

TEST(Mutex, AcrossThreads) {
  spindle::Mutex<long> counter{0};
  constexpr int kIncrements = 5000;
  auto worker = [](spindle::Mutex<long>& m) -> Task<void> {
    for (int i = 0; i < kIncrements; ++i) {
      auto guard = co_await m.lock();
      const long seen = *guard;
      if (i % 64 == 0) co_await spindle::yield_now();  // held across a suspension now and then
      *guard = seen + 1;
    }
  };
  {
    spindle_test::RuntimeThread a(worker(counter));
    spindle_test::RuntimeThread b(worker(counter));
  }
  Runtime runtime;
  runtime.block_on(
      [](spindle::Mutex<long>& m) -> Task<void> { EXPECT_EQ(*co_await m.lock(), 2 * kIncrements); }(counter));
}

}  // namespace
