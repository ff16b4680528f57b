#include "spindle/sync/notify.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::Notify;
using spindle::Runtime;
using spindle::Task;

namespace {

TEST(Notify, NotifyOneWakesAWaiter) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Notify notify;
    bool woke = false;
    auto waiter = spindle::spawn([](Notify& n, bool& flag) -> Task<void> {
      co_await n.notified();
      flag = true;
    }(notify, woke));
    co_await spindle::yield_now();
    EXPECT_FALSE(woke);
    notify.notify_one();
    (void)co_await std::move(waiter);
    EXPECT_TRUE(woke);
  }());
}

TEST(Notify, APermitStoredBeforeTheWaitIsNotLost) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Notify notify;
    notify.notify_one();
    notify.notify_one();  // permits do not accumulate: one is stored
    co_await notify.notified();
    auto second = co_await spindle::timeout(20ms, notify.notified());
    EXPECT_FALSE(second);
  }());
}

TEST(Notify, NotifyOneWakesInFifoOrderAndNotifyWaitersWakesAll) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Notify notify;
    std::vector<int> order;
    std::vector<spindle::JoinHandle<void>> waiters;
    for (int i = 0; i < 4; ++i) {
      waiters.push_back(spindle::spawn([](Notify& n, std::vector<int>& out, int id) -> Task<void> {
        co_await n.notified();
        out.push_back(id);
      }(notify, order, i)));
    }
    co_await spindle::yield_now();
    notify.notify_one();
    co_await spindle::yield_now();
    EXPECT_EQ(order, (std::vector<int>{0}));
    notify.notify_waiters();
    for (auto& w : waiters) (void)co_await std::move(w);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
    // notify_waiters stored no permit
    auto after = co_await spindle::timeout(10ms, notify.notified());
    EXPECT_FALSE(after);
  }());
}

// notify_one picks a waiter, which is cancelled before it runs: the notification moves to the next one.
TEST(Notify, ANotificationToACancelledWaiterIsPassedOn) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    Notify notify;
    auto first = spindle::spawn([](Notify& n) -> Task<void> { co_await n.notified(); }(notify));
    bool second_woke = false;
    auto second = spindle::spawn([](Notify& n, bool& flag) -> Task<void> {
      co_await n.notified();
      flag = true;
    }(notify, second_woke));
    co_await spindle::yield_now();
    notify.notify_one();  // chooses `first`
    first.abort();        // which is destroyed before it resumes
    auto cancelled = co_await std::move(first);
    EXPECT_TRUE(!cancelled && cancelled.error().is_cancelled());
    auto outcome = co_await spindle::timeout(1s, std::move(second));
    EXPECT_TRUE(outcome);
    EXPECT_TRUE(second_woke);
  }());
}

TEST(Notify, AcrossThreads) {
  Notify request, reply;
  constexpr int kRounds = 2000;
  std::atomic<int> served{0};
  spindle_test::RuntimeThread server([](Notify& in, Notify& out, std::atomic<int>& count) -> Task<void> {
    for (int i = 0; i < kRounds; ++i) {
      co_await in.notified();
      ++count;
      out.notify_one();
    }
  }(request, reply, served));
  Runtime runtime;
  runtime.block_on([](Notify& out, Notify& in) -> Task<void> {
    for (int i = 0; i < kRounds; ++i) {
      out.notify_one();
      co_await in.notified();
    }
  }(request, reply));
  server.join();
  EXPECT_EQ(served.load(), kRounds);
}

}  // namespace
