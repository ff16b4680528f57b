// Runtime micro-benchmarks: what a task, a timer and an echo round trip cost.
// Run through scripts/run-benchmarks (pinned to one core, repeated, medians); figures in docs/benchmarks.md.

#include <benchmark/benchmark.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "spindle/runtime/detail/timer_wheel.hpp"
#include "spindle/spindle.hpp"

using spindle::Runtime;
using spindle::Task;

namespace {

Task<int> ready_value(int x) { co_return x + 1; }

// A Task created and awaited, completing without suspending: frame allocation (recycled), two symmetric
// transfers, the result moved out, the frame freed.
void BM_TaskCreateAwait(benchmark::State& state) {
  Runtime runtime;
  runtime.block_on([](benchmark::State& s) -> Task<void> {
    int value = 0;
    for (auto _ : s) {
      value = co_await ready_value(value);
      benchmark::DoNotOptimize(value);
    }
  }(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TaskCreateAwait);

// spawn() + await of its JoinHandle: header and frame allocation, a trip through the run queue.
Task<void> spawn_join_loop(benchmark::State& s) {
  int value = 0;
  for (auto _ : s) {
    auto outcome = co_await spindle::spawn(ready_value(value));
    value = *outcome;
  }
  benchmark::DoNotOptimize(value);
}

void BM_SpawnJoin(benchmark::State& state) {
  Runtime runtime;
  runtime.block_on(spawn_join_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SpawnJoin);

// A task switch: yield_now() queues the task behind the others and resumes it.
Task<void> yield_loop(benchmark::State& s) {
  for (auto _ : s) co_await spindle::yield_now();
}

void BM_YieldNow(benchmark::State& state) {
  Runtime runtime;
  runtime.block_on(yield_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_YieldNow);

struct BenchTimer {
  spindle::detail::TimerEntry entry;
  int fired = 0;
};

// Timer insert then cancel, the life of most timeouts (the operation finishes first).
void BM_TimerInsertCancel(benchmark::State& state) {
  spindle::detail::TimerWheel wheel;
  std::vector<BenchTimer> timers(static_cast<std::size_t>(state.range(0)));
  std::uint64_t spread = 0;
  for (auto& t : timers) {  // background timers, so the wheel is not empty
    t.entry.deadline = 1 + (spread++ * 7919) % 3'600'000;
    t.entry.on_fire = [](spindle::detail::TimerEntry&) noexcept { return false; };
    wheel.insert(t.entry);
  }
  BenchTimer timer;
  timer.entry.on_fire = [](spindle::detail::TimerEntry&) noexcept { return false; };
  for (auto _ : state) {
    timer.entry.deadline = wheel.elapsed() + 30'000;
    wheel.insert(timer.entry);
    wheel.remove(timer.entry);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TimerInsertCancel)->Arg(0)->Arg(10'000);

// Timer insert then fire: 1,000 timers spread over the next 10 s, the wheel advanced until all fired
// (cascades from the upper levels included). Reported per timer.
void BM_TimerInsertFire(benchmark::State& state) {
  constexpr int kTimers = 1000;
  std::vector<BenchTimer> timers(kTimers);
  for (auto& t : timers) {
    t.entry.owner = &t;
    t.entry.on_fire = [](spindle::detail::TimerEntry& e) noexcept {
      ++static_cast<BenchTimer*>(e.owner)->fired;
      return false;
    };
  }
  spindle::detail::TimerWheel wheel;
  for (auto _ : state) {
    const std::uint64_t base = wheel.elapsed();
    for (int i = 0; i < kTimers; ++i) {
      timers[static_cast<std::size_t>(i)].entry.deadline = base + 1 + static_cast<std::uint64_t>(i) * 10;
      wheel.insert(timers[static_cast<std::size_t>(i)].entry);
    }
    while (auto next = wheel.next_deadline()) wheel.advance_to(*next);
  }
  benchmark::DoNotOptimize(timers[0].fired);
  state.SetItemsProcessed(state.iterations() * kTimers);
}
BENCHMARK(BM_TimerInsertFire);

// One 64-byte echo round trip over loopback TCP, client and echo server as two tasks on one thread:
// two sends, two receives, two task switches through the reactor.
void BM_EchoRoundTripTcp(benchmark::State& state) {
  Runtime runtime;
  runtime.block_on([](benchmark::State& s) -> Task<void> {
    auto listener = spindle::TcpListener::bind(*spindle::SocketAddr::parse("127.0.0.1:0"));
    auto server = spindle::spawn([](spindle::TcpListener& l) -> Task<void> {
      auto accepted = co_await l.accept();
      if (!accepted) co_return;
      std::array<std::byte, 4096> buffer;
      for (;;) {
        auto n = co_await accepted->stream.read(buffer);
        if (!n || *n == 0) co_return;
        if (!co_await accepted->stream.write_all(std::span{buffer}.first(*n))) co_return;
      }
    }(*listener));
    auto client = co_await spindle::TcpStream::connect(*listener->local_addr());
    if (!client) {
      s.SkipWithError("connect failed");
      co_return;
    }
    std::array<std::byte, 64> message{};
    std::array<std::byte, 64> reply{};
    for (auto _ : s) {
      (void)co_await client->write_all(message);
      std::size_t got = 0;
      while (got < reply.size()) {
        auto n = co_await client->read(std::span{reply}.subspan(got));
        if (!n || *n == 0) {
          s.SkipWithError("echo failed");
          co_return;
        }
        got += *n;
      }
    }
    client->close();
    (void)co_await std::move(server);
  }(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EchoRoundTripTcp);

// mpsc throughput on one thread: a producer task sends into a bounded channel of 1024, the consumer
// (the benchmark's task) receives; per value.
Task<void> mpsc_loop(benchmark::State& s) {
  auto [tx, rx] = spindle::mpsc::channel<long>(1024);
  auto producer = spindle::spawn([](spindle::mpsc::Sender<long> sender) -> Task<void> {
    for (long i = 0;; ++i)
      if (!co_await sender.send(i)) co_return;
  }(std::move(tx)));
  long sum = 0;
  for (auto _ : s) sum += *co_await rx.recv();
  benchmark::DoNotOptimize(sum);
  producer.abort();
}

void BM_MpscThroughput(benchmark::State& state) {
  Runtime runtime;
  runtime.block_on(mpsc_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MpscThroughput);

// Cross-thread wake latency: a Notify ping-pong between a task on this thread's runtime and one on
// another thread's; one iteration is a round trip (two cross-thread wakes, two eventfd interrupts).
void BM_CrossThreadPingPong(benchmark::State& state) {
  spindle::Notify ping, pong;
  std::atomic<bool> stop{false};
  std::thread other([&] {
    Runtime runtime;
    runtime.block_on([](spindle::Notify& in, spindle::Notify& out, std::atomic<bool>& done) -> Task<void> {
      for (;;) {
        co_await in.notified();
        if (done) co_return;
        out.notify_one();
      }
    }(ping, pong, stop));
  });
  Runtime runtime;
  runtime.block_on([](benchmark::State& s, spindle::Notify& out, spindle::Notify& in) -> Task<void> {
    for (auto _ : s) {
      out.notify_one();
      co_await in.notified();
    }
  }(state, ping, pong));
  stop = true;
  ping.notify_one();
  other.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CrossThreadPingPong)->UseRealTime();

// The same measurements on the multi_thread runtime. With one worker they show what the work-stealing
// machinery costs on the paths above (the benchmark's task runs on the worker, block_on's thread waits).
Runtime one_worker() { return Runtime::multi_thread().worker_threads(1).build(); }

void BM_MultiThreadSpawnJoin(benchmark::State& state) {
  Runtime runtime = one_worker();
  runtime.block_on(spawn_join_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MultiThreadSpawnJoin);

void BM_MultiThreadYieldNow(benchmark::State& state) {
  Runtime runtime = one_worker();
  runtime.block_on(yield_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MultiThreadYieldNow);

void BM_MultiThreadMpscThroughput(benchmark::State& state) {
  Runtime runtime = Runtime::multi_thread().worker_threads(static_cast<unsigned>(state.range(0))).build();
  runtime.block_on(mpsc_loop(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MultiThreadMpscThroughput)->Arg(1)->Arg(2)->UseRealTime();

// Cross-worker wake latency on the multi_thread runtime: two tasks pinned (spawn_local) to the two
// workers bounce a Notify; one iteration is a round trip, two wakes of a task on the other worker.
void BM_MultiThreadCrossWorkerPingPong(benchmark::State& state) {
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  runtime.block_on([](benchmark::State& s) -> Task<void> {
    spindle::Notify ping, pong;
    std::atomic<bool> stop{false};
    std::array<std::atomic<bool>, 2> arrived{};
    // Two starters that can only both finish while running in parallel, one per worker; each pins its
    // side there.
    auto starter = [](int me, std::array<std::atomic<bool>, 2>& flags, benchmark::State& bench, spindle::Notify& ping_n,
                      spindle::Notify& pong_n, std::atomic<bool>& done) -> Task<spindle::JoinHandle<void>> {
      flags[me].store(true);
      while (!flags[1 - me].load()) std::this_thread::yield();
      if (me == 0) {
        co_return spindle::spawn_local(
            [](benchmark::State& b, spindle::Notify& out, spindle::Notify& in, std::atomic<bool>& d) -> Task<void> {
              for (auto _ : b) {
                out.notify_one();
                co_await in.notified();
              }
              d = true;
              out.notify_one();
            }(bench, ping_n, pong_n, done));
      }
      co_return spindle::spawn_local([](spindle::Notify& in, spindle::Notify& out, std::atomic<bool>& d) -> Task<void> {
        for (;;) {
          co_await in.notified();
          if (d) co_return;
          out.notify_one();
        }
      }(ping_n, pong_n, done));
    };
    auto a = spindle::spawn(starter(0, arrived, s, ping, pong, stop));
    auto b = spindle::spawn(starter(1, arrived, s, ping, pong, stop));
    auto side_a = co_await std::move(a);
    auto side_b = co_await std::move(b);
    (void)co_await std::move(*side_a);
    (void)co_await std::move(*side_b);
  }(state));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MultiThreadCrossWorkerPingPong)->UseRealTime();

// The reference for the two ping-pongs above: two plain threads handing a token back and forth through a
// mutex and a condition variable, no runtime at all. What a wake-up of a sleeping thread costs here.
void BM_CondvarPingPong(benchmark::State& state) {
  std::mutex mutex;
  std::condition_variable condvar;
  int turn = 0;  // 1: the other thread's turn; -1: stop
  std::thread other([&] {
    std::unique_lock lock(mutex);
    for (;;) {
      condvar.wait(lock, [&] { return turn != 0; });
      if (turn < 0) return;
      turn = 0;
      condvar.notify_one();
    }
  });
  for (auto _ : state) {
    std::unique_lock lock(mutex);
    turn = 1;
    condvar.notify_one();
    condvar.wait(lock, [&] { return turn == 0; });
  }
  {
    std::lock_guard lock(mutex);
    turn = -1;
  }
  condvar.notify_one();
  other.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CondvarPingPong)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
