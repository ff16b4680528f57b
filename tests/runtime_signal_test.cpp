#include "spindle/runtime/signal.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::SignalListener;
using spindle::Task;

namespace {

TEST(Signal, ReceivesASignalSentWhileWaiting) {
  Runtime runtime;
  const int received = runtime.block_on([]() -> Task<int> {
    SignalListener listener{SIGUSR1};
    // Raised from another thread once we are parked, so the wait really goes through the pipe.
    std::thread sender([] {
      std::this_thread::sleep_for(20ms);
      ::kill(::getpid(), SIGUSR1);
    });
    const int signal = co_await listener.recv();
    sender.join();
    co_return signal;
  }());
  EXPECT_EQ(received, SIGUSR1);
}

TEST(Signal, ASignalAlreadyDeliveredIsReceivedWithoutWaiting) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    SignalListener listener{SIGUSR2, SIGUSR1};
    ::kill(::getpid(), SIGUSR2);
    EXPECT_EQ(co_await listener.recv(), SIGUSR2);
  }());
}

TEST(Signal, SignalsBeforeTheListenerExistedAreNotSeen) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    { SignalListener first{SIGUSR1}; }
    ::kill(::getpid(), SIGUSR1);
    SignalListener later{SIGUSR1};
    EXPECT_EQ(later.take_pending(), 0);
    co_return;
  }());
}

TEST(Signal, EveryListenerSeesTheSignal) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto waiter = []() -> Task<int> {
      SignalListener listener{SIGUSR1};
      co_return co_await listener.recv();
    };
    auto a = spindle::spawn(waiter());
    auto b = spindle::spawn(waiter());
    co_await spindle::sleep(10ms);  // both parked
    ::kill(::getpid(), SIGUSR1);
    EXPECT_EQ((co_await std::move(a)).value(), SIGUSR1);
    EXPECT_EQ((co_await std::move(b)).value(), SIGUSR1);
  }());
}

TEST(Signal, SigtermIsCaughtNotFatalOnceListenedFor) {
  Runtime runtime;
  const int received = runtime.block_on([]() -> Task<int> {
    SignalListener listener{SIGINT, SIGTERM};
    ::kill(::getpid(), SIGTERM);
    co_return co_await listener.recv();
  }());
  EXPECT_EQ(received, SIGTERM);
}

TEST(Signal, CtrlCCompletesOnSigint) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto waiting = spindle::spawn(spindle::ctrl_c());
    co_await spindle::sleep(10ms);
    ::kill(::getpid(), SIGINT);
    auto outcome = co_await spindle::timeout(5s, std::move(waiting));
    EXPECT_TRUE(outcome);
  }());
}

}  // namespace
