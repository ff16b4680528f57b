#include "spindle/sync/oneshot.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "support/thread_runtimes.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;
namespace oneshot = spindle::oneshot;

namespace {

TEST(Oneshot, DeliversOneValue) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = oneshot::channel<std::string>();
    spindle::spawn([](oneshot::Sender<std::string> sender) -> Task<void> {
      co_await spindle::sleep(1ms);
      EXPECT_TRUE(std::move(sender).send("reply"));
    }(std::move(tx)))
        .detach();
    auto value = co_await rx;
    EXPECT_EQ(value.value(), "reply");
  }());
}

TEST(Oneshot, DroppedSenderIsAnError) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = oneshot::channel<int>();
    spindle::spawn([](oneshot::Sender<int>) -> Task<void> { co_return; }(std::move(tx))).detach();
    auto value = co_await rx;
    EXPECT_FALSE(value);
  }());
}

TEST(Oneshot, SendToADroppedReceiverHandsTheValueBack) {
  auto [tx, rx] = oneshot::channel<std::unique_ptr<int>>();
  { auto gone = std::move(rx); }
  EXPECT_TRUE(tx.is_closed());
  auto result = std::move(tx).send(std::make_unique<int>(7));
  ASSERT_FALSE(result);
  EXPECT_EQ(*result.error(), 7);
}

TEST(Oneshot, AcrossThreads) {
  for (int round = 0; round < 200; ++round) {
    auto [tx, rx] = oneshot::channel<int>();
    spindle_test::RuntimeThread sender([](oneshot::Sender<int> s, int v) -> Task<void> {
      (void)std::move(s).send(v);
      co_return;
    }(std::move(tx), round));
    Runtime runtime;
    const int got =
        runtime.block_on([](oneshot::Receiver<int>& r) -> Task<int> { co_return (co_await r).value(); }(rx));
    EXPECT_EQ(got, round);
  }
}

}  // namespace
