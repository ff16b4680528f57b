// Stress: many tasks at once, all accounted for.
#include <gtest/gtest.h>

#include <vector>

#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/notify.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;

namespace {

constexpr long kTasks = 1'000'000;

// A million tasks alive at the same time, each parked (on one Notify), then all released and joined:
// every one runs to the end exactly once and nothing stays behind.
TEST(Stress, AMillionTasksAliveAtOnce) {
  Runtime runtime;
  runtime.block_on([](Runtime& rt) -> Task<void> {
    spindle::Notify go;
    long finished = 0;
    std::vector<spindle::JoinHandle<void>> handles;
    handles.reserve(kTasks);
    for (long i = 0; i < kTasks; ++i) {
      handles.push_back(spindle::spawn([](spindle::Notify& start, long& done) -> Task<void> {
        co_await start.notified();
        ++done;
      }(go, finished)));
    }
    co_await spindle::yield_now();  // all of them run once and park
    EXPECT_EQ(rt.live_tasks(), static_cast<std::size_t>(kTasks) + 1);
    go.notify_waiters();
    long ok = 0;
    for (auto& handle : handles) ok += (co_await std::move(handle)) ? 1 : 0;
    EXPECT_EQ(ok, kTasks);
    EXPECT_EQ(finished, kTasks);
  }(runtime));
  EXPECT_EQ(runtime.live_tasks(), 0u);
}

}  // namespace
