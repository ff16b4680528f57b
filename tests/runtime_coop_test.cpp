// The cooperative budget: a task whose socket or channel is always ready still lets the others run.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "spindle/net/unix_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/mpsc.hpp"
#include "support/co_assert.hpp"

using spindle::Runtime;
using spindle::Task;

namespace {

// Both flavors; the multi_thread runtime with one worker, so that the two tasks share a thread.
class Coop : public ::testing::TestWithParam<bool> {
 protected:
  static Runtime make_runtime() {
    return GetParam() ? Runtime::multi_thread().worker_threads(1).build() : Runtime::current_thread().build();
  }
};
INSTANTIATE_TEST_SUITE_P(Flavors, Coop, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "MultiThread" : "CurrentThread"; });

// A reader that never has to wait (64 KiB are queued in its socket, read a byte at a time) beside a
// task that only wants a turn now and then. Without the budget the reader would finish all 65,536
// reads before the other task ran once; with it, the other task runs about every 128 reads.
TEST_P(Coop, AFloodedSocketDoesNotStarveOtherTasks) {
  Runtime runtime = make_runtime();
  runtime.block_on([]() -> Task<void> {
    auto pair = spindle::UnixStream::pair();
    CO_ASSERT(pair);
    auto& [flood, reader_end] = *pair;
    constexpr std::size_t kBytes = 64 * 1024;
    std::vector<std::byte> data(kBytes, std::byte{1});
    CO_ASSERT(co_await flood.write_all(data));  // fits in the socket buffers: never blocks the reader

    bool reader_done = false;
    long turns_while_reading = 0;
    auto other = spindle::spawn([](bool& done, long& turns) -> Task<void> {
      while (!done) {
        ++turns;
        co_await spindle::yield_now();
      }
    }(reader_done, turns_while_reading));

    std::array<std::byte, 1> byte;
    for (std::size_t i = 0; i < kBytes; ++i) {
      auto n = co_await reader_end.read(byte);
      CO_ASSERT(n && *n == 1);
    }
    reader_done = true;
    (void)co_await std::move(other);
    // 65,536 reads / 128 per turn = 512 turns for the other task; allow for the edges.
    EXPECT_GE(turns_while_reading, 400);
    EXPECT_LE(turns_while_reading, 600);
  }());
}

TEST_P(Coop, AFullChannelDoesNotStarveOtherTasks) {
  Runtime runtime = make_runtime();
  runtime.block_on([]() -> Task<void> {
    auto [tx, rx] = spindle::mpsc::unbounded_channel<int>();
    constexpr int kValues = 12'800;
    for (int i = 0; i < kValues; ++i) (void)tx.send(i);
    bool done = false;
    long turns = 0;
    auto other = spindle::spawn([](bool& d, long& t) -> Task<void> {
      while (!d) {
        ++t;
        co_await spindle::yield_now();
      }
    }(done, turns));
    for (int i = 0; i < kValues; ++i) {
      auto v = co_await rx.recv();
      CO_ASSERT(v && *v == i);  // order kept through the yields
    }
    done = true;
    (void)co_await std::move(other);
    EXPECT_GE(turns, 90);  // 12,800 / 128 = 100
  }());
}

}  // namespace
