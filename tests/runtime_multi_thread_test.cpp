// The multi_thread runtime: tasks spread over workers, work stealing, wakes across threads, timers and
// sockets driven by whichever worker holds the reactor, cancellation and shutdown with nothing left.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "spindle/net/tcp_listener.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/broadcast.hpp"
#include "spindle/sync/mpsc.hpp"
#include "spindle/sync/mutex.hpp"
#include "spindle/sync/notify.hpp"
#include "spindle/sync/oneshot.hpp"
#include "spindle/sync/watch.hpp"
#include "support/co_assert.hpp"

using namespace std::chrono_literals;
using spindle::Runtime;
using spindle::Task;

namespace {

Runtime two_workers() { return Runtime::multi_thread().worker_threads(2).build(); }

// Spins (yielding the CPU) until `flag` is set or 10 s pass; false on the deadline.
bool wait_for(const std::atomic<bool>& flag) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!flag.load(std::memory_order_acquire)) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(MultiThread, BlockOnReturnsTheValueAndRethrows) {
  Runtime runtime = two_workers();
  EXPECT_EQ(runtime.block_on([]() -> Task<int> { co_return 42; }()), 42);
  EXPECT_THROW(runtime.block_on([]() -> Task<void> {
    throw std::runtime_error("boom");
    co_return;
  }()),
               std::runtime_error);
  EXPECT_EQ(runtime.metrics().workers, 2u);
}

TEST(MultiThread, APausedClockIsRefused) {
  EXPECT_THROW(Runtime::multi_thread().start_paused().build(), std::invalid_argument);
}

// Two tasks that can only finish if they run at the same time: each waits (blocking its thread) for the
// other to have started. With one worker running both, the first would wait forever; the second worker
// must take the other task from the first one's queue.
TEST(MultiThread, TasksRunInParallelOnDifferentWorkers) {
  Runtime runtime = two_workers();
  const bool both = runtime.block_on([]() -> Task<bool> {
    std::array<std::atomic<bool>, 2> started{};
    auto meet = [](std::array<std::atomic<bool>, 2>& flags, int me) -> Task<std::thread::id> {
      flags[me].store(true, std::memory_order_release);
      if (!wait_for(flags[1 - me])) throw std::runtime_error("the other task never ran alongside");
      co_return std::this_thread::get_id();
    };
    auto a = spindle::spawn(meet(started, 0));
    auto b = spindle::spawn(meet(started, 1));
    auto ra = co_await std::move(a);
    auto rb = co_await std::move(b);
    co_return ra&& rb&&* ra != *rb;
  }());
  EXPECT_TRUE(both);
}

TEST(MultiThread, AMillionSpawnedTasksAllRunOnce) {
  static constexpr int kTasks = 1'000'000;
  Runtime runtime = two_workers();
  std::atomic<int> ran{0};
  runtime.block_on([](std::atomic<int>& counter) -> Task<void> {
    std::vector<spindle::JoinHandle<void>> handles;
    handles.reserve(kTasks);
    for (int i = 0; i < kTasks; ++i) {
      handles.push_back(spindle::spawn([](std::atomic<int>& c) -> Task<void> {
        c.fetch_add(1, std::memory_order_relaxed);
        co_return;
      }(counter)));
    }
    int ok = 0;
    for (auto& handle : handles) ok += (co_await std::move(handle)) ? 1 : 0;
    EXPECT_EQ(ok, kTasks);
  }(ran));
  EXPECT_EQ(ran.load(), kTasks);
  EXPECT_EQ(runtime.live_tasks(), 0u);
  const spindle::RuntimeMetrics m = runtime.metrics();
  EXPECT_GE(m.polls, static_cast<std::uint64_t>(kTasks));
  EXPECT_GT(m.steals + m.overflows, 0u);  // the spawning worker's queue spilled or was stolen from
}

// Bursts of tasks spawned from one worker, which then blocks its thread until all of them have
// started: the other worker can only get them by stealing (200 fit in the local queue, so none
// overflow to the injection queue). Every task runs exactly once.
TEST(MultiThread, StealStormsLoseNoTask) {
  static constexpr int kRounds = 50;
  static constexpr int kTasks = 200;
  Runtime runtime = two_workers();
  std::vector<std::atomic<int>> runs(kRounds * kTasks);
  runtime.block_on([](std::vector<std::atomic<int>>& counters) -> Task<void> {
    for (int round = 0; round < kRounds; ++round) {
      std::atomic<int> started{0};
      std::atomic<bool> all_started{false};
      std::vector<spindle::JoinHandle<void>> handles;
      for (int i = 0; i < kTasks; ++i) {
        handles.push_back(
            spindle::spawn([](std::atomic<int>& c, std::atomic<int>& s, std::atomic<bool>& all) -> Task<void> {
              c.fetch_add(1, std::memory_order_relaxed);
              if (s.fetch_add(1) + 1 == kTasks) all.store(true);
              co_await spindle::yield_now();  // requeued: moves between queues again
            }(counters[round * kTasks + i], started, all_started)));
      }
      CO_ASSERT(wait_for(all_started));  // this worker is blocked: the other one stole them all
      for (auto& handle : handles) EXPECT_TRUE(co_await std::move(handle));
    }
  }(runs));
  for (auto& count : runs) ASSERT_EQ(count.load(), 1);
  const spindle::RuntimeMetrics m = runtime.metrics();
  EXPECT_GE(m.steals, static_cast<std::uint64_t>(kRounds));
  EXPECT_EQ(m.overflows, 0u);
}

// Starts `body(i)` as spawn_local tasks on two different workers: two meeting tasks (which can only both
// run when they run in parallel) each spawn one from their own worker.
template <class Body>
Task<std::array<spindle::JoinHandle<std::thread::id>, 2>> spawn_on_both_workers(Body body) {
  std::array<std::atomic<bool>, 2> started{};
  auto starter = [](std::array<std::atomic<bool>, 2>& flags, int me,
                    Body make) -> Task<spindle::JoinHandle<std::thread::id>> {
    flags[me].store(true, std::memory_order_release);
    if (!wait_for(flags[1 - me])) throw std::runtime_error("the other worker never came");
    co_return spindle::spawn_local(make(me));
  };
  auto a = spindle::spawn(starter(started, 0, body));
  auto b = spindle::spawn(starter(started, 1, body));
  auto ha = co_await std::move(a);
  auto hb = co_await std::move(b);
  if (!ha || !hb) throw std::runtime_error("could not start on both workers");
  co_return std::array{std::move(*ha), std::move(*hb)};
}

// Two tasks pinned to different workers bounce a counter through a pair of channels: every message wakes
// a task on the other thread, and neither task ever runs anywhere but at home.
TEST(MultiThread, PingPongAcrossWorkers) {
  static constexpr int kRounds = 20'000;
  Runtime runtime = two_workers();
  runtime.block_on([]() -> Task<void> {
    auto [to_b, b_rx] = spindle::mpsc::channel<int>(1);
    auto [to_a, a_rx] = spindle::mpsc::channel<int>(1);
    struct Ends {
      spindle::mpsc::Sender<int> tx;
      spindle::mpsc::Receiver<int> rx;
    };
    std::array<Ends, 2> ends{Ends{std::move(to_b), std::move(a_rx)}, Ends{std::move(to_a), std::move(b_rx)}};
    std::atomic<int> migrations{0};
    auto player = [&ends, &migrations](int me) -> Task<std::thread::id> {
      return [](Ends e, int first, std::atomic<int>& moved) -> Task<std::thread::id> {
        const std::thread::id home = std::this_thread::get_id();
        if (first == 0 && !co_await e.tx.send(0)) co_return home;
        while (auto value = co_await e.rx.recv()) {
          if (std::this_thread::get_id() != home) moved.fetch_add(1);
          if (*value >= kRounds) break;
          if (!co_await e.tx.send(*value + 1)) break;
        }
        { auto closing = std::move(e.tx); }  // parameters live as long as the JoinHandle: close it now
        co_return home;
      }(std::move(ends[me]), me, migrations);
    };
    auto handles = co_await spawn_on_both_workers(player);
    auto a = co_await std::move(handles[0]);
    auto b = co_await std::move(handles[1]);  // ends when a's sender goes
    CO_ASSERT(a && b);
    EXPECT_NE(*a, *b);
    EXPECT_EQ(migrations.load(), 0);
  }());
}

// Pinned tasks woken every way there is (timers fired by whichever worker drives the reactor, their own
// yields) while a thread outside keeps the injection queue busy, which is where tasks woken by the
// reactor go when it is not empty: a pinned task must never take that road.
TEST(MultiThread, PinnedTasksStayOnTheirWorkerThroughWakesAndSleeps) {
  Runtime runtime = two_workers();
  std::atomic<bool> feed{false};
  std::atomic<bool> stop{false};
  std::thread feeder([&] {
    // Bursts of short busy tasks (about 40% of one core): the reactor is often polled by a busy worker
    // while the injection queue holds some of them. Started once the pinned tasks exist: the burst
    // would otherwise keep the workers from meeting in spawn_on_both_workers.
    while (!stop.load()) {
      if (feed.load()) {
        for (int i = 0; i < 10; ++i) {
          runtime.handle()
              .spawn([]() -> Task<void> {
                const auto until = std::chrono::steady_clock::now() + 20us;
                while (std::chrono::steady_clock::now() < until) {
                }
                co_await spindle::yield_now();
              }())
              .detach();
        }
      }
      std::this_thread::sleep_for(500us);
    }
  });
  runtime.block_on([](std::atomic<bool>& start_feeding) -> Task<void> {
    std::atomic<int> moved{0};
    auto body = [&moved, &start_feeding](int) -> Task<std::thread::id> {
      return [](std::atomic<int>& m, std::atomic<bool>& go) -> Task<std::thread::id> {
        const std::thread::id home = std::this_thread::get_id();
        go.store(true);
        for (int i = 0; i < 200; ++i) {
          if (i % 3 == 0) co_await spindle::sleep(1ms);  // woken by whichever worker drives the timers
          if (std::this_thread::get_id() != home) m.fetch_add(1);
          co_await spindle::yield_now();
          if (std::this_thread::get_id() != home) m.fetch_add(1);
        }
        co_return home;
      }(moved, start_feeding);
    };
    auto handles = co_await spawn_on_both_workers(body);
    auto a = co_await std::move(handles[0]);
    auto b = co_await std::move(handles[1]);
    CO_ASSERT(a && b);
    EXPECT_NE(*a, *b);
    EXPECT_EQ(moved.load(), 0);
  }(feed));
  stop = true;
  feeder.join();
}

TEST(MultiThread, ChannelsUnderContention) {
  static constexpr int kProducers = 8;
  static constexpr int kPerProducer = 20'000;
  Runtime runtime = two_workers();
  runtime.block_on([]() -> Task<void> {
    // mpsc, bounded: backpressure with eight senders on two threads.
    auto [tx, rx] = spindle::mpsc::channel<int>(16);
    for (int p = 0; p < kProducers; ++p) {
      spindle::spawn([](spindle::mpsc::Sender<int> s, int base) -> Task<void> {
        for (int i = 0; i < kPerProducer; ++i) EXPECT_TRUE(co_await s.send(base + i));
      }(tx, p * kPerProducer))
          .detach();
    }
    { auto closing = std::move(tx); }
    std::vector<int> seen(kProducers * kPerProducer, 0);
    std::vector<int> last_of(kProducers, -1);
    while (auto value = co_await rx.recv()) {
      ++seen[*value];
      const int producer = *value / kPerProducer;
      EXPECT_LT(last_of[producer], *value);  // each sender's values stay in order
      last_of[producer] = *value;
    }
    for (int count : seen) CO_ASSERT(count == 1);

    // Mutex: increments from many tasks on both workers are not lost.
    spindle::Mutex<long> total{0};
    std::vector<spindle::JoinHandle<void>> adders;
    for (int p = 0; p < kProducers; ++p) {
      adders.push_back(spindle::spawn([](spindle::Mutex<long>& m) -> Task<void> {
        for (int i = 0; i < 5000; ++i) {
          auto guard = co_await m.lock();
          ++*guard;
          if (i % 64 == 0) co_await spindle::yield_now();  // held across a suspension now and then
        }
      }(total)));
    }
    for (auto& adder : adders) EXPECT_TRUE(co_await std::move(adder));
    EXPECT_EQ(*co_await total.lock(), kProducers * 5000L);

    // oneshot: many pairs, sender and receiver on different tasks.
    std::vector<spindle::JoinHandle<int>> receivers;
    for (int i = 0; i < 1000; ++i) {
      auto [s, r] = spindle::oneshot::channel<int>();
      receivers.push_back(spindle::spawn([](spindle::oneshot::Receiver<int> rx) -> Task<int> {
        auto value = co_await rx;
        co_return value ? *value : -1;
      }(std::move(r))));
      spindle::spawn([](spindle::oneshot::Sender<int> tx, int v) -> Task<void> {
        EXPECT_TRUE(std::move(tx).send(v));
        co_return;
      }(std::move(s), i))
          .detach();
    }
    long sum = 0;
    for (auto& receiver : receivers) sum += *co_await std::move(receiver);
    EXPECT_EQ(sum, 999L * 1000 / 2);

    // broadcast: every receiver sees every value (capacity large enough that nobody lags).
    auto [btx, brx] = spindle::broadcast::channel<int>(1024);
    std::vector<spindle::JoinHandle<long>> listeners;
    for (int i = 0; i < 4; ++i) {
      listeners.push_back(spindle::spawn([](spindle::broadcast::Receiver<int> r) -> Task<long> {
        long got = 0;
        while (auto value = co_await r.recv()) got += *value;
        co_return got;
      }(i == 0 ? std::move(brx) : btx.subscribe())));
    }
    for (int i = 1; i <= 1000; ++i) (void)btx.send(i);
    { auto closing = std::move(btx); }
    for (auto& listener : listeners) EXPECT_EQ(*co_await std::move(listener), 1000L * 1001 / 2);

    // watch: the last value always arrives.
    auto [wtx, wrx] = spindle::watch::channel<int>(0);
    auto watcher = spindle::spawn([](spindle::watch::Receiver<int> r) -> Task<int> {
      int value = 0;
      while (co_await r.changed()) value = r.borrow_and_update();
      co_return value;
    }(std::move(wrx)));
    for (int i = 1; i <= 5000; ++i) wtx.send(i);
    { auto closing = std::move(wtx); }
    EXPECT_EQ(*co_await std::move(watcher), 5000);
  }());
}

TEST(MultiThread, TimersFireOnTimeFromAnyWorker) {
  Runtime runtime = two_workers();
  runtime.block_on([]() -> Task<void> {
    std::vector<spindle::JoinHandle<bool>> sleepers;
    for (int i = 0; i < 2000; ++i) {
      sleepers.push_back(spindle::spawn([](int ms) -> Task<bool> {
        const auto start = std::chrono::steady_clock::now();
        co_await spindle::sleep(std::chrono::milliseconds(ms));
        co_return std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(ms);
      }(1 + i % 30)));
    }
    for (auto& sleeper : sleepers) EXPECT_TRUE(*co_await std::move(sleeper));  // none woke early
    // A timer armed while another worker sleeps in the reactor with a later deadline wakes it up.
    spindle::spawn([]() -> Task<void> { co_await spindle::sleep(5s); }()).detach();
    const auto start = std::chrono::steady_clock::now();
    co_await spindle::sleep(20ms);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  }());
}

// Echo over loopback with client and server tasks spread over the workers; then a timeout on a silent
// connection, and aborting readers parked on their sockets.
TEST(MultiThread, SocketsTimeoutsAndAbortDuringIo) {
  Runtime runtime = two_workers();
  runtime.block_on([]() -> Task<void> {
    auto listener = spindle::TcpListener::bind(*spindle::SocketAddr::parse("127.0.0.1:0"));
    CO_ASSERT(listener);
    const spindle::SocketAddr address = *listener->local_addr();
    auto server = spindle::spawn([](spindle::TcpListener l) -> Task<void> {
      for (;;) {
        auto accepted = co_await l.accept();
        if (!accepted) co_return;
        spindle::spawn([](spindle::TcpStream s) -> Task<void> {
          std::array<std::byte, 4096> buffer;
          for (;;) {
            auto n = co_await s.read(buffer);
            if (!n || *n == 0) co_return;
            if (!co_await s.write_all(std::span(buffer.data(), *n))) co_return;
          }
        }(std::move(accepted->stream)))
            .detach();
      }
    }(std::move(*listener)));

    std::vector<spindle::JoinHandle<bool>> clients;
    for (int c = 0; c < 32; ++c) {
      clients.push_back(spindle::spawn([](spindle::SocketAddr to) -> Task<bool> {
        auto stream = co_await spindle::TcpStream::connect(to);
        if (!stream) co_return false;
        std::array<std::byte, 1000> out;
        std::array<std::byte, 1000> in;
        for (int round = 0; round < 200; ++round) {
          out.fill(std::byte(round));
          if (!co_await stream->write_all(out)) co_return false;
          for (std::size_t got = 0; got < in.size();) {
            auto n = co_await stream->read(std::span(in).subspan(got));
            if (!n || *n == 0) co_return false;
            got += *n;
          }
          if (in != out) co_return false;
        }
        co_return true;
      }(address)));
    }
    for (auto& client : clients) EXPECT_TRUE(*co_await std::move(client));

    // A read on a connection whose peer stays silent times out, on whichever worker.
    auto silent = co_await spindle::TcpStream::connect(address);
    CO_ASSERT(silent);
    auto quiet_client = co_await spindle::TcpStream::connect(address);
    CO_ASSERT(quiet_client);
    std::array<std::byte, 16> buffer;
    auto timed = co_await spindle::timeout(30ms, quiet_client->read(buffer));
    EXPECT_FALSE(timed);

    // Readers parked on sockets, aborted from here: their frames go, the sockets close, nothing leaks.
    std::vector<spindle::JoinHandle<void>> readers;
    for (int i = 0; i < 64; ++i) {
      readers.push_back(spindle::spawn([](spindle::SocketAddr to) -> Task<void> {
        auto stream = co_await spindle::TcpStream::connect(to);
        std::array<std::byte, 64> b;
        (void)co_await stream->read(b);  // the echo server sends nothing first: parks forever
        ADD_FAILURE() << "a parked read returned";
      }(address)));
    }
    co_await spindle::sleep(50ms);
    for (auto& reader : readers) reader.abort();
    for (auto& reader : readers) {
      auto outcome = co_await std::move(reader);
      EXPECT_TRUE(!outcome && outcome.error().is_cancelled());
    }
    server.abort();
    EXPECT_FALSE(co_await std::move(server));
  }());
  runtime.drain(1s);  // the echo connections end as their clients close
}

// Timeouts racing completions on two threads: every operation either finishes with its value or times
// out, never both, never neither; the value is never lost when it was consumed.
TEST(MultiThread, TimeoutsRacingWakesFromOtherThreads) {
  Runtime runtime = two_workers();
  runtime.block_on([]() -> Task<void> {
    constexpr int kRounds = 1500;
    auto [tx, rx] = spindle::mpsc::unbounded_channel<int>();
    spindle::spawn([](spindle::mpsc::UnboundedSender<int> s) -> Task<void> {
      for (int i = 0; i < kRounds; ++i) {
        (void)s.send(i);
        if (i % 3 == 0) co_await spindle::sleep(1ms);
      }
    }(std::move(tx)))
        .detach();
    int next = 0;
    int timeouts = 0;
    while (next < kRounds) {
      auto got = co_await spindle::timeout(1ms, rx.recv());
      if (!got) {
        ++timeouts;
        continue;
      }
      CO_ASSERT(got->has_value());
      EXPECT_EQ(**got, next);  // in order, none skipped: a timed-out receive took nothing
      ++next;
    }
    EXPECT_EQ(next, kRounds);
    ::testing::Test::RecordProperty("timeouts", timeouts);  // how often the race went the timer's way
  }());
}

// A timeout and the sleep it wraps fall due in the same tick, on a runtime where the task runs on one
// worker while another fires the timers: the timeout wakes the task, which destroys the sleep as the
// driver goes on to fire the sleep's timer. That late wake must find nothing to wake (it once resumed
// the destroyed frame). ASan reports a resumed freed frame; any build counts the outcomes.
TEST(MultiThread, ALateWakeOfAnOperationATimeoutDestroyedIsDropped) {
  Runtime runtime = two_workers();
  const long finished = runtime.block_on([]() -> Task<long> {
    std::vector<spindle::JoinHandle<long>> tasks;
    for (int t = 0; t < 100; ++t) {
      tasks.push_back(spindle::spawn([]() -> Task<long> {
        long completed = 0;
        long timed_out = 0;
        for (int i = 0; i < 30; ++i) {
          // Either outcome is fine; the point is getting here, every time, with a live frame.
          auto r = co_await spindle::timeout(1ms, []() -> Task<void> { co_await spindle::sleep(1ms); }());
          ++(r ? completed : timed_out);
        }
        co_return completed + timed_out;
      }()));
    }
    long total = 0;
    for (auto& task : tasks) total += *co_await std::move(task);
    co_return total;
  }());
  EXPECT_EQ(finished, 100L * 30);
}

TEST(MultiThread, HandleSpawnFromOutsideAndDrain) {
  Runtime runtime = two_workers();
  std::atomic<int> done{0};
  std::vector<std::thread> feeders;
  for (int t = 0; t < 2; ++t) {
    feeders.emplace_back([&runtime, &done] {
      for (int i = 0; i < 10'000; ++i) {
        runtime.handle()
            .spawn([](std::atomic<int>& d) -> Task<void> {
              co_await spindle::yield_now();
              d.fetch_add(1, std::memory_order_relaxed);
            }(done))
            .detach();
      }
    });
  }
  for (auto& feeder : feeders) feeder.join();
  EXPECT_EQ(runtime.drain(10s), 0u);
  EXPECT_EQ(done.load(), 20'000);
  EXPECT_GT(runtime.metrics().remote_schedules, 0u);
}

// Shutdown with tasks parked everywhere: the destructor stops the workers and destroys every task, whose
// destructors run (a guard object in each frame counts them).
TEST(MultiThread, ShutdownDestroysParkedTasks) {
  struct Guard {
    std::atomic<int>* destroyed;
    ~Guard() { destroyed->fetch_add(1); }
  };
  std::atomic<int> destroyed{0};
  {
    Runtime runtime = two_workers();
    runtime.block_on([](std::atomic<int>& d) -> Task<void> {
      static spindle::Notify never;
      for (int i = 0; i < 1000; ++i) {
        spindle::spawn([](std::atomic<int>& counter, int kind) -> Task<void> {
          Guard guard{&counter};
          if (kind == 0) co_await never.notified();
          if (kind == 1) co_await spindle::sleep(1h);
          co_await spindle::yield_now();
          for (;;) co_await spindle::sleep(1ms);
        }(d, i % 3))
            .detach();
      }
      co_await spindle::sleep(20ms);
    }(destroyed));
    EXPECT_EQ(runtime.live_tasks(), 1000u);
  }
  EXPECT_EQ(destroyed.load(), 1000);
}

}  // namespace
