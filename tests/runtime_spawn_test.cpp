#include "spindle/runtime/spawn.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "spindle/net/unix_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/time.hpp"

using namespace std::chrono_literals;
using spindle::JoinHandle;
using spindle::Runtime;
using spindle::spawn;
using spindle::Task;

namespace {

Task<int> square(int x) { co_return x* x; }

TEST(Spawn, JoinHandleYieldsTheTaskResult) {
  Runtime runtime;
  int result = runtime.block_on([]() -> Task<int> {
    JoinHandle<int> handle = spawn(square(7));
    auto outcome = co_await std::move(handle);
    co_return outcome.value();
  }());
  EXPECT_EQ(result, 49);
}

TEST(Spawn, SpawnedTasksRunConcurrentlyInFifoOrder) {
  Runtime runtime;
  std::vector<int> order;
  runtime.block_on([&]() -> Task<void> {
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < 3; ++i) {
      // Coroutine lambdas take what they need as parameters: captures live in the closure, which is
      // gone once spawn() returns, while parameters are copied into the frame.
      handles.push_back(spawn([](std::vector<int>& out, int id) -> Task<void> {
        out.push_back(id);
        co_await spindle::yield_now();
        out.push_back(10 + id);
      }(order, i)));
    }
    for (auto& h : handles) EXPECT_TRUE(co_await std::move(h));
  }());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 10, 11, 12}));
}

TEST(Spawn, ExceptionsBecomeJoinErrors) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto outcome = co_await spawn([]() -> Task<int> {
      throw std::runtime_error("kaput");
      co_return 1;
    }());
    EXPECT_FALSE(outcome);
    EXPECT_FALSE(outcome.error().is_cancelled());
    EXPECT_EQ(outcome.error().message(), "kaput");
  }());
}

TEST(Spawn, AbortCancelsAWaitingTaskAndRunsItsDestructors) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  auto resource = std::make_shared<int>(0);
  bool finished = false;
  runtime.block_on([&]() -> Task<void> {
    JoinHandle<void> handle = spawn([]([[maybe_unused]] std::shared_ptr<int> held, bool& done) -> Task<void> {
      co_await spindle::sleep(1h);
      done = true;
    }(resource, finished));
    co_await spindle::yield_now();  // let it start and park on its timer
    EXPECT_EQ(resource.use_count(), 2);
    handle.abort();
    auto outcome = co_await std::move(handle);
    EXPECT_FALSE(outcome);
    EXPECT_TRUE(outcome.error().is_cancelled());
  }());
  EXPECT_FALSE(finished);
  EXPECT_EQ(resource.use_count(), 1);  // the frame, and the parameter in it, are gone
}

TEST(Spawn, AbortBeforeTheFirstRunNeverRunsTheTask) {
  Runtime runtime;
  bool ran = false;
  runtime.block_on([&]() -> Task<void> {
    JoinHandle<void> handle = spawn([](bool& flag) -> Task<void> {
      flag = true;
      co_return;
    }(ran));
    handle.abort();
    auto outcome = co_await std::move(handle);
    EXPECT_TRUE(!outcome && outcome.error().is_cancelled());
  }());
  EXPECT_FALSE(ran);
}

TEST(Spawn, DetachedTasksKeepRunning) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  int counter = 0;
  runtime.block_on([&]() -> Task<void> {
    spawn([](int& c) -> Task<void> {
      co_await spindle::sleep(10ms);
      ++c;
    }(counter))
        .detach();
    co_await spindle::sleep(20ms);
  }());
  EXPECT_EQ(counter, 1);
}

TEST(Spawn, RuntimeShutdownDestroysTasksStillWaiting) {
  auto resource = std::make_shared<int>(0);
  {
    Runtime runtime = Runtime::current_thread().start_paused().build();
    runtime.block_on([&]() -> Task<void> {
      spawn([](std::shared_ptr<int>) -> Task<void> { co_await spindle::sleep(1h); }(resource)).detach();
      co_await spindle::yield_now();
    }());
    EXPECT_EQ(runtime.live_tasks(), 1u);
    EXPECT_EQ(resource.use_count(), 2);
  }
  EXPECT_EQ(resource.use_count(), 1);
}

TEST(Spawn, HandleSpawnsFromAnotherThread) {
  Runtime runtime;
  spindle::Handle handle = runtime.handle();
  std::atomic<bool> done{false};
  int value = runtime.block_on([&]() -> Task<int> {
    std::thread other([&] {
      handle
          .spawn([](std::atomic<bool>& flag) -> Task<void> {
            flag = true;
            co_return;
          }(done))
          .detach();
    });
    while (!done) co_await spindle::sleep(1ms);
    other.join();
    co_return 5;
  }());
  EXPECT_EQ(value, 5);
  EXPECT_TRUE(done);
}

TEST(Spawn, AManySpawnedTasksAllComplete) {
  Runtime runtime;
  long total = runtime.block_on([]() -> Task<long> {
    std::vector<JoinHandle<int>> handles;
    for (int i = 0; i < 10'000; ++i) handles.push_back(spawn(square(i % 100)));
    long sum = 0;
    for (auto& h : handles) sum += (co_await std::move(h)).value();
    co_return sum;
  }());
  long expected = 0;
  for (int i = 0; i < 10'000; ++i) expected += (i % 100) * (i % 100);
  EXPECT_EQ(total, expected);
  EXPECT_EQ(runtime.live_tasks(), 0u);
}

// A task that is always ready (it only yields) must not starve timers and sockets: the loop polls the
// reactor and the timer wheel every event_interval tasks even when the run queue never empties.
TEST(Spawn, AnAlwaysReadyTaskDoesNotStarveTimersOrSockets) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    bool stop = false;
    long spins = 0;
    auto busy = spawn([](bool& done, long& count) -> Task<void> {
      while (!done) {
        ++count;
        co_await spindle::yield_now();
      }
    }(stop, spins));
    const auto start = spindle::now();
    co_await spindle::sleep(20ms);
    EXPECT_LT(spindle::now() - start, 2s);
    auto pair = spindle::UnixStream::pair();
    auto& [a, b] = *pair;
    EXPECT_TRUE(co_await a.write_all("x"));
    std::array<char, 1> byte{};
    auto n = co_await b.read(byte);
    EXPECT_EQ(n.value(), 1u);
    stop = true;
    (void)co_await std::move(busy);
    EXPECT_GT(spins, 100);  // it really was running all along
  }());
}

TEST(Spawn, BlockOnInsideARuntimeIsABug) {
  Runtime outer;
  outer.block_on([]() -> Task<void> {
    Runtime inner;
    EXPECT_THROW(inner.block_on(square(2)), std::logic_error);
    co_return;
  }());
}

TEST(Spawn, SpawnOutsideARuntimeIsABug) { EXPECT_THROW((void)spawn(square(1)), std::logic_error); }

}  // namespace

namespace {

TEST(Shutdown, DrainWaitsForTasksToFinish) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  int finished = 0;
  runtime.block_on([](int& done) -> Task<void> {
    for (int ms : {10, 20, 30})
      spawn([](int delay, int& d) -> Task<void> {
        co_await spindle::sleep(std::chrono::milliseconds(delay));
        ++d;
      }(ms, done))
          .detach();
    co_return;
  }(finished));
  EXPECT_EQ(runtime.live_tasks(), 3u);
  EXPECT_EQ(runtime.drain(1s), 0u);
  EXPECT_EQ(finished, 3);
}

TEST(Shutdown, DrainGivesUpAtTheDeadlineAndTheRestIsCancelled) {
  auto witness = std::make_shared<int>(0);
  {
    Runtime runtime;
    runtime.block_on([](std::shared_ptr<int> held) -> Task<void> {
      spawn([](std::shared_ptr<int> keep) -> Task<void> {
        (void)keep;
        co_await spindle::sleep(1h);
      }(held))
          .detach();
      spawn([]() -> Task<void> { co_await spindle::sleep(5ms); }()).detach();
      co_return;
    }(witness));
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(runtime.drain(50ms), 1u);  // the short one finished, the hour-long one did not
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_GE(took, 50ms);
    EXPECT_LT(took, 2s);
    EXPECT_EQ(witness.use_count(), 2);
  }
  EXPECT_EQ(witness.use_count(), 1);  // cancelled by the runtime's destructor
}

}  // namespace

namespace {

TEST(Metrics, CountWhatTheRuntimeDid) {
  Runtime runtime;
  const spindle::RuntimeMetrics before = runtime.metrics();
  runtime.block_on([]() -> Task<void> {
    std::vector<JoinHandle<void>> tasks;
    for (int i = 0; i < 10; ++i) tasks.push_back(spawn([]() -> Task<void> { co_await spindle::yield_now(); }()));
    for (auto& t : tasks) (void)co_await std::move(t);
    co_await spindle::sleep(2ms);  // a timer, and the loop sleeps for it
    auto pair = spindle::UnixStream::pair();
    auto& [a, b] = *pair;
    auto reader = spawn([](spindle::UnixStream& s) -> Task<void> {
      std::array<char, 4> buffer;
      (void)co_await s.read(buffer);  // parks: the reactor completes it
    }(b));
    co_await spindle::yield_now();
    (void)co_await a.write_all("ping");
    (void)co_await std::move(reader);
  }());
  std::thread([h = runtime.handle()]() mutable { h.spawn([]() -> Task<void> { co_return; }()).detach(); }).join();
  runtime.block_on([]() -> Task<void> { co_await spindle::sleep(1ms); }());
  const spindle::RuntimeMetrics after = runtime.metrics();
  EXPECT_GE(after.polls - before.polls, 21u);  // 10 tasks x 2 turns + the root
  EXPECT_GE(after.timers_fired - before.timers_fired, 2u);
  EXPECT_GE(after.parks - before.parks, 1u);
  EXPECT_GE(after.io_completions - before.io_completions, 1u);
  EXPECT_GE(after.remote_schedules - before.remote_schedules, 1u);
  EXPECT_EQ(after.live_tasks, 0u);
}

}  // namespace
