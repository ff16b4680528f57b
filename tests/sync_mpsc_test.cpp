#include "spindle/sync/mpsc.hpp"

#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "support/co_assert.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;
namespace mpsc = spindle::mpsc;

namespace {

TEST(Mpsc, ValuesArriveInOrderAndRecvEndsWhenSendersAreGone) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = mpsc::channel<int>(4);
    spindle::spawn([](mpsc::Sender<int> s) -> Task<void> {
      for (int i = 0; i < 100; ++i) EXPECT_TRUE(co_await s.send(i));
    }(std::move(tx)))
        .detach();
    std::vector<int> got;
    while (auto v = co_await rx.recv()) got.push_back(*v);
    std::vector<int> expected(100);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(got, expected);
  }());
}

TEST(Mpsc, BoundedSendWaitsWhileFull) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = mpsc::channel<int>(2);
    EXPECT_TRUE(tx.try_send(1));
    EXPECT_TRUE(tx.try_send(2));
    auto full = tx.try_send(3);
    CO_ASSERT(!full);
    EXPECT_EQ(full.error().reason, mpsc::TrySendError<int>::Reason::full);
    EXPECT_EQ(full.error().value, 3);
    auto blocked = co_await spindle::timeout(10ms, tx.send(3));
    EXPECT_FALSE(blocked);  // still full: the send waited, and was withdrawn by the timeout
    EXPECT_EQ(*co_await rx.recv(), 1);
    auto now = co_await spindle::timeout(1s, tx.send(3));  // a slot is free again
    EXPECT_TRUE(now && *now);
    EXPECT_EQ(*co_await rx.recv(), 2);
    EXPECT_EQ(*co_await rx.recv(), 3);
    EXPECT_FALSE(rx.try_recv());
  }());
}

TEST(Mpsc, DroppingTheReceiverFailsSendsAndReturnsTheValue) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = mpsc::channel<int>(1);
    EXPECT_TRUE(tx.try_send(1));
    auto waiting = spindle::spawn([](mpsc::Sender<int> s) -> Task<int> {
      auto r = co_await s.send(2);
      co_return r ? -1 : r.error().value;
    }(tx));
    co_await spindle::yield_now();
    { auto gone = std::move(rx); }
    EXPECT_EQ((co_await std::move(waiting)).value(), 2);
    EXPECT_TRUE(tx.is_closed());
    EXPECT_FALSE(co_await tx.send(3));
  }());
}

TEST(Mpsc, UnboundedNeverWaits) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = mpsc::unbounded_channel<int>();
    for (int i = 0; i < 10'000; ++i) EXPECT_TRUE(tx.send(i));
    long sum = 0;
    { auto last = std::move(tx); }
    while (auto v = co_await rx.recv()) sum += *v;
    EXPECT_EQ(sum, 10'000L * 9'999 / 2);
  }());
}

// Four producer threads, each on its own runtime, into one bounded channel read on this thread.
TEST(Mpsc, ManyProducersAcrossThreadsUnderContention) {
  auto [tx, rx] = mpsc::channel<long>(16);
  constexpr int kProducers = 4;
  constexpr long kPerProducer = 20'000;
  std::vector<std::unique_ptr<spindle_test::RuntimeThread>> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.push_back(
        std::make_unique<spindle_test::RuntimeThread>([](mpsc::Sender<long> s, long base) -> Task<void> {
          for (long i = 0; i < kPerProducer; ++i) EXPECT_TRUE(co_await s.send(base + i));
        }(tx, p * kPerProducer)));
  }
  { auto original = std::move(tx); }
  Runtime runtime;
  const long sum = runtime.block_on([](mpsc::Receiver<long>& r) -> Task<long> {
    long total = 0;
    while (auto v = co_await r.recv()) total += *v;
    co_return total;
  }(rx));
  producers.clear();
  const long n = kProducers * kPerProducer;
  EXPECT_EQ(sum, n * (n - 1) / 2);
}

}  // namespace

namespace {

// The send task holds a sender of its own: it may outlive the Sender it came from, and the receiver
// sees the value before the end of the stream.
TEST(Mpsc, ASendTaskOutlivesItsSender) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = mpsc::channel<int>(1);
    {
      auto sender = std::move(tx);
      spindle::spawn(sender.send(7)).detach();
    }  // the last Sender object is gone before the send task ever ran
    auto first = co_await rx.recv();
    EXPECT_EQ(first.value_or(-1), 7);
    EXPECT_FALSE(co_await rx.recv());
  }());
}

}  // namespace
