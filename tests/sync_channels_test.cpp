// watch, broadcast and RwLock.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/broadcast.hpp"
#include "spindle/sync/rw_lock.hpp"
#include "spindle/sync/watch.hpp"
#include "support/co_assert.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;

namespace {

TEST(Watch, ReceiversSeeTheLatestValueAndEndWhenTheSenderGoes) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = spindle::watch::channel<int>(0);
    auto second = tx.subscribe();
    EXPECT_EQ(rx.borrow(), 0);
    auto none = co_await spindle::timeout(5ms, rx.changed());
    EXPECT_FALSE(none);  // nothing new yet
    tx.send(1);
    tx.send(2);  // intermediate values may be skipped
    EXPECT_TRUE(co_await rx.changed());
    EXPECT_EQ(rx.borrow_and_update(), 2);
    EXPECT_TRUE(co_await second.changed());
    tx.send_modify([](int& v) { v += 40; });
    EXPECT_TRUE(co_await rx.changed());
    EXPECT_EQ(rx.borrow_and_update(), 42);
    { auto gone = std::move(tx); }
    EXPECT_FALSE(co_await rx.changed());
  }());
}

TEST(Broadcast, EveryReceiverGetsEveryValue) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, first] = spindle::broadcast::channel<std::string>(8);
    auto second = tx.subscribe();
    EXPECT_EQ(tx.send("a").value(), 2u);
    EXPECT_EQ(tx.send("b").value(), 2u);
    EXPECT_EQ((co_await first.recv()).value(), "a");
    EXPECT_EQ((co_await first.recv()).value(), "b");
    EXPECT_EQ((co_await second.recv()).value(), "a");
    auto waiting = spindle::spawn([](spindle::broadcast::Receiver<std::string> r) -> Task<std::string> {
      (void)co_await r.recv();  // "b"
      co_return (co_await r.recv()).value();
    }(std::move(second)));
    co_await spindle::yield_now();
    EXPECT_TRUE(tx.send("c"));
    EXPECT_EQ((co_await std::move(waiting)).value(), "c");
  }());
}

TEST(Broadcast, ALaggingReceiverIsToldHowManyItMissed) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = spindle::broadcast::channel<int>(4);
    for (int i = 0; i < 10; ++i) EXPECT_TRUE(tx.send(i));
    auto lagged = co_await rx.recv();
    CO_ASSERT(!lagged);
    EXPECT_EQ(lagged.error().kind, spindle::broadcast::RecvError::Kind::lagged);
    EXPECT_EQ(lagged.error().skipped, 6u);
    for (int expected = 6; expected < 10; ++expected) EXPECT_EQ((co_await rx.recv()).value(), expected);
    { auto gone = std::move(tx); }
    auto closed = co_await rx.recv();
    CO_ASSERT(!closed);
    EXPECT_EQ(closed.error().kind, spindle::broadcast::RecvError::Kind::closed);
  }());
}

TEST(Broadcast, SendWithoutReceiversHandsTheValueBack) {
  auto [tx, rx] = spindle::broadcast::channel<int>(2);
  { auto gone = std::move(rx); }
  auto sent = tx.send(5);
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error(), 5);
}

TEST(Broadcast, AcrossThreads) {
  auto [tx, rx] = spindle::broadcast::channel<int>(64);
  constexpr int kValues = 20'000;
  long received_sum = 0;
  long lagged = 0;
  spindle_test::RuntimeThread receiver([](spindle::broadcast::Receiver<int> r, long& sum, long& skipped) -> Task<void> {
    for (;;) {
      auto v = co_await r.recv();
      if (v) {
        sum += *v;
      } else if (v.error().kind == spindle::broadcast::RecvError::Kind::lagged) {
        skipped += static_cast<long>(v.error().skipped);
      } else {
        co_return;
      }
    }
  }(std::move(rx), received_sum, lagged));
  Runtime runtime;
  runtime.block_on([](spindle::broadcast::Sender<int> s) -> Task<void> {
    for (int i = 1; i <= kValues; ++i) {
      (void)s.send(1);
      if (i % 32 == 0) co_await spindle::yield_now();
    }
  }(std::move(tx)));
  receiver.join();
  EXPECT_EQ(received_sum + lagged, kValues);  // every value either received or counted as missed
}

TEST(RwLock, ReadersShareWritersExclude) {
  Runtime runtime = Runtime::current_thread().start_paused().build();
  runtime.block_on([]() -> Task<void> {
    spindle::RwLock<std::vector<int>> lock;
    auto r1 = co_await lock.read();
    auto r2 = co_await lock.read();  // readers share
    EXPECT_FALSE(lock.try_write());
    bool wrote = false;
    auto writer = spindle::spawn([](spindle::RwLock<std::vector<int>>& l, bool& done) -> Task<void> {
      auto w = co_await l.write();
      w->push_back(1);
      done = true;
    }(lock, wrote));
    co_await spindle::yield_now();
    EXPECT_FALSE(wrote);
    EXPECT_FALSE(lock.try_read());  // a writer waits: new readers queue behind it
    { auto drop1 = std::move(r1); }
    { auto drop2 = std::move(r2); }
    (void)co_await std::move(writer);
    EXPECT_TRUE(wrote);
    auto r3 = co_await lock.read();
    EXPECT_EQ(r3->size(), 1u);
  }());
}

}  // namespace
