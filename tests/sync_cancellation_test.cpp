// CancellationToken and TaskTracker: the pieces of a graceful shutdown.
#include <gtest/gtest.h>

#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/cancellation_token.hpp"
#include "spindle/sync/task_tracker.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::CancellationToken;
using spindle::Runtime;
using spindle::Task;
using spindle::TaskTracker;

namespace {

TEST(CancellationToken, CancelWakesWaitersAndChildrenButNotParents) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    CancellationToken root;
    CancellationToken child = root.child_token();
    CancellationToken grandchild = child.child_token();
    CancellationToken sibling = root.child_token();
    auto waiter = spindle::spawn([](CancellationToken t) -> Task<void> { co_await t.cancelled(); }(grandchild));
    co_await spindle::yield_now();
    child.cancel();
    EXPECT_TRUE(co_await spindle::timeout(1s, std::move(waiter)));
    EXPECT_TRUE(grandchild.is_cancelled());
    EXPECT_FALSE(root.is_cancelled());
    EXPECT_FALSE(sibling.is_cancelled());
    root.cancel();
    EXPECT_TRUE(sibling.is_cancelled());
    EXPECT_TRUE(root.child_token().is_cancelled());  // born cancelled
    co_await root.cancelled();                       // completes at once
  }());
}

TEST(CancellationToken, AcrossThreads) {
  CancellationToken token;
  int stopped = 0;
  {
    std::vector<std::unique_ptr<spindle_test::RuntimeThread>> workers;
    for (int i = 0; i < 3; ++i) {
      workers.push_back(
          std::make_unique<spindle_test::RuntimeThread>([](CancellationToken t, int& count) -> Task<void> {
            co_await t.cancelled();
            static std::mutex m;
            std::lock_guard lock(m);
            ++count;
          }(token.child_token(), stopped)));
    }
    std::this_thread::sleep_for(20ms);
    token.cancel();
  }
  EXPECT_EQ(stopped, 3);
}

TEST(TaskTracker, WaitCompletesWhenClosedAndEveryTaskEnded) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    TaskTracker tracker;
    for (int ms : {10, 20, 30}) {
      tracker.spawn([](int delay) -> Task<void> { co_await spindle::sleep(std::chrono::milliseconds(delay)); }(ms))
          .detach();
    }
    EXPECT_EQ(tracker.size(), 3u);
    auto early = co_await spindle::timeout(50ms, tracker.wait());
    EXPECT_FALSE(early);  // all done by now, but not closed yet
    EXPECT_EQ(tracker.size(), 0u);
    tracker.close();
    co_await tracker.wait();
  }());
}

TEST(TaskTracker, AbortedAndFailedTasksAreCountedOut) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    TaskTracker tracker;
    auto forever = tracker.spawn([]() -> Task<void> { co_await spindle::sleep(24h); }());
    auto throws = tracker.spawn([]() -> Task<int> {
      throw std::runtime_error("x");
      co_return 0;
    }());
    auto never_started = tracker.track([]() -> Task<void> { co_return; }());
    { auto dropped = std::move(never_started); }  // destroyed without running: counted out too
    tracker.close();
    co_await spindle::yield_now();
    EXPECT_EQ(tracker.size(), 1u);
    forever.abort();
    auto waited = co_await spindle::timeout(1s, tracker.wait());
    EXPECT_TRUE(waited);
    (void)co_await std::move(throws);
  }());
}

}  // namespace

namespace {

TEST(CancellationToken, ReachesGrandchildrenAfterTheMiddleTokenIsGone) {
  CancellationToken root;
  CancellationToken grandchild = [&] {
    CancellationToken middle = root.child_token();
    return middle.child_token();
  }();  // `middle` is destroyed here
  root.cancel();
  EXPECT_TRUE(grandchild.is_cancelled());
}

TEST(CancellationToken, ManyShortLivedChildrenDoNotAccumulate) {
  CancellationToken root;
  for (int i = 0; i < 100'000; ++i) (void)root.child_token();
  CancellationToken kept = root.child_token();
  root.cancel();
  EXPECT_TRUE(kept.is_cancelled());  // and the 100,000 dropped ones were pruned on the way (ASan: no leak)
}

}  // namespace
