#include "spindle/runtime/detail/local_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using spindle::detail::LocalQueue;

// Under ThreadSanitizer the stress tests push half as many items, to stay within a few seconds on two cores.
#if defined(__SANITIZE_THREAD__)
#define SPINDLE_LQ_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_LQ_TSAN 1
#endif
#endif

namespace {

#ifdef SPINDLE_LQ_TSAN
constexpr int kStressScale = 2;
#else
constexpr int kStressScale = 1;
#endif

struct Item {
  int id;
};

using Queue = LocalQueue<Item>;
constexpr std::uint32_t kCap = Queue::kCapacity;

/// Items with ids 0..n-1 at stable addresses.
std::vector<Item> make_items(int n) {
  std::vector<Item> items(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) items[static_cast<std::size_t>(i)].id = i;
  return items;
}

std::vector<int> range(int first, int last) {  // [first, last)
  std::vector<int> ids;
  for (int i = first; i < last; ++i) ids.push_back(i);
  return ids;
}

template <class Q>
std::vector<int> drain(Q& q) {
  std::vector<int> ids;
  while (Item* item = q.pop()) ids.push_back(item->id);
  return ids;
}

/// The overflow batches a queue handed over, as ids.
struct OverflowLog {
  std::vector<std::vector<int>> batches;

  auto sink() {
    return [this](Item** items, std::size_t count) {
      std::vector<int>& batch = batches.emplace_back();
      for (std::size_t i = 0; i < count; ++i) batch.push_back(items[i]->id);
    };
  }
};

auto no_overflow() {
  return [](Item**, std::size_t count) { ADD_FAILURE() << "unexpected overflow of " << count << " items"; };
}

template <class Q>
void push_all(Q& q, std::vector<Item>& items, int first, int last) {
  for (int i = first; i < last; ++i) q.push_back_or_overflow(&items[static_cast<std::size_t>(i)], no_overflow());
}

TEST(LocalQueue, NewQueueIsEmpty) {
  Queue q;
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_EQ(q.len(), 0u);
  EXPECT_TRUE(q.is_empty());
  EXPECT_FALSE(q.is_stealable());
  EXPECT_EQ(q.remaining_slots(), kCap);
}

TEST(LocalQueue, PopsInFifoOrder) {
  Queue q;
  auto items = make_items(10);
  push_all(q, items, 0, 10);
  EXPECT_EQ(q.len(), 10u);
  EXPECT_EQ(q.remaining_slots(), kCap - 10);
  EXPECT_TRUE(q.is_stealable());
  EXPECT_EQ(q.pop()->id, 0);
  EXPECT_EQ(q.pop()->id, 1);
  EXPECT_EQ(q.len(), 8u);
  EXPECT_EQ(drain(q), range(2, 10));
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_TRUE(q.is_empty());
  EXPECT_EQ(q.remaining_slots(), kCap);
}

TEST(LocalQueue, FullQueueOverflowsHalfAndTheItemInFifoOrder) {
  Queue q;
  auto items = make_items(2 * kCap);
  OverflowLog log;
  for (std::uint32_t i = 0; i < kCap; ++i) q.push_back_or_overflow(&items[i], log.sink());
  EXPECT_TRUE(log.batches.empty());
  EXPECT_EQ(q.len(), kCap);
  EXPECT_EQ(q.remaining_slots(), 0u);

  q.push_back_or_overflow(&items[kCap], log.sink());
  ASSERT_EQ(log.batches.size(), 1u);
  std::vector<int> expected = range(0, kCap / 2);
  expected.push_back(kCap);
  EXPECT_EQ(log.batches[0], expected);
  EXPECT_EQ(q.len(), kCap / 2);
  EXPECT_EQ(q.remaining_slots(), kCap / 2);

  // The kept half stays in the ring, in order, and the freed half takes new pushes without overflowing.
  for (std::uint32_t i = kCap + 1; i <= kCap + kCap / 2; ++i) q.push_back_or_overflow(&items[i], log.sink());
  EXPECT_EQ(log.batches.size(), 1u);
  q.push_back_or_overflow(&items[kCap + kCap / 2 + 1], log.sink());
  ASSERT_EQ(log.batches.size(), 2u);
  expected = range(kCap / 2, kCap);
  expected.push_back(kCap + kCap / 2 + 1);
  EXPECT_EQ(log.batches[1], expected);
  EXPECT_EQ(drain(q), range(kCap + 1, kCap + kCap / 2 + 1));
}

TEST(LocalQueue, PushBackBatchAppendsInOrder) {
  Queue q;
  auto items = make_items(kCap + 2);
  std::vector<Item*> ptrs;
  for (Item& item : items) ptrs.push_back(&item);

  push_all(q, items, 0, 3);
  q.push_back_batch(ptrs.data() + 3, 100);
  EXPECT_EQ(q.len(), 103u);
  EXPECT_EQ(q.remaining_slots(), kCap - 103);
  q.push_back_batch(ptrs.data(), 0);
  EXPECT_EQ(q.len(), 103u);
  EXPECT_EQ(q.pop()->id, 0);
  EXPECT_EQ(q.remaining_slots(), kCap - 102);

  // Fill exactly: the ring must count batch pushes as occupied, so the next single push overflows.
  q.push_back_batch(ptrs.data() + 103, kCap - 102);
  EXPECT_EQ(q.remaining_slots(), 0u);
  OverflowLog log;
  q.push_back_or_overflow(ptrs[kCap + 1], log.sink());
  ASSERT_EQ(log.batches.size(), 1u);
  std::vector<int> expected = range(1, 1 + kCap / 2);
  expected.push_back(static_cast<int>(kCap + 1));
  EXPECT_EQ(log.batches[0], expected);
  EXPECT_EQ(drain(q), range(1 + kCap / 2, kCap + 1));
}

TEST(LocalQueue, StealTakesHalfRoundedUpAndReturnsTheLastOfThem) {
  for (int size : {1, 2, 3, 4, 7, 8, 255, 256}) {
    SCOPED_TRACE(size);
    Queue src;
    Queue dst;
    auto items = make_items(size);
    push_all(src, items, 0, size);
    const int n = size - size / 2;

    Item* got = src.steal_into(dst);
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->id, n - 1);
    EXPECT_EQ(dst.len(), static_cast<std::size_t>(n - 1));
    EXPECT_EQ(src.len(), static_cast<std::size_t>(size - n));
    EXPECT_EQ(dst.is_stealable(), n > 1);
    EXPECT_EQ(drain(dst), range(0, n - 1));
    EXPECT_EQ(drain(src), range(n, size));
  }
}

TEST(LocalQueue, StealFromAnEmptyQueueReturnsNull) {
  Queue src;
  Queue dst;
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_TRUE(dst.is_empty());

  // Emptied by pops and by steals alike.
  auto items = make_items(3);
  push_all(src, items, 0, 3);
  EXPECT_EQ(src.pop()->id, 0);
  EXPECT_EQ(src.steal_into(dst)->id, 1);  // 2 left: steals 1, which it returns
  EXPECT_EQ(src.steal_into(dst)->id, 2);
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_EQ(src.pop(), nullptr);
  EXPECT_TRUE(dst.is_empty());
}

TEST(LocalQueue, StealAppendsAfterWhatTheDestinationHolds) {
  Queue src;
  Queue dst;
  auto items = make_items(20);
  push_all(dst, items, 10, 15);
  push_all(src, items, 0, 10);
  Item* got = src.steal_into(dst);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->id, 4);
  std::vector<int> expected = range(10, 15);
  for (int id : range(0, 4)) expected.push_back(id);
  EXPECT_EQ(drain(dst), expected);
  EXPECT_EQ(drain(src), range(5, 10));
}

TEST(LocalQueue, DoesNotStealIntoADestinationMoreThanHalfFull) {
  Queue src;
  Queue dst;
  auto items = make_items(2 * kCap);
  push_all(src, items, 0, kCap);
  push_all(dst, items, kCap, kCap + kCap / 2 + 1);  // one more than half
  EXPECT_EQ(src.steal_into(dst), nullptr);
  EXPECT_EQ(src.len(), kCap);
  EXPECT_EQ(dst.len(), kCap / 2 + 1);

  // Exactly half full is enough room: a full source gives kCap / 2, one of them returned.
  EXPECT_EQ(dst.pop()->id, static_cast<int>(kCap));
  Item* got = src.steal_into(dst);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->id, static_cast<int>(kCap / 2 - 1));
  EXPECT_EQ(dst.len(), kCap - 1);
  std::vector<int> expected = range(kCap + 1, kCap + kCap / 2 + 1);
  for (int id : range(0, kCap / 2 - 1)) expected.push_back(id);
  EXPECT_EQ(drain(dst), expected);
  EXPECT_EQ(drain(src), range(kCap / 2, kCap));
}

TEST(LocalQueue, IndicesWrapPastUint32Max) {
  constexpr std::uint32_t kMax = std::numeric_limits<std::uint32_t>::max();
  Queue q(kMax - 5);
  auto items = make_items(3 * kCap);
  OverflowLog log;
  for (std::uint32_t i = 0; i < kCap; ++i) q.push_back_or_overflow(&items[i], log.sink());
  EXPECT_TRUE(log.batches.empty());
  EXPECT_EQ(q.len(), kCap);
  EXPECT_EQ(q.remaining_slots(), 0u);
  q.push_back_or_overflow(&items[kCap], log.sink());  // the claim of the half crosses the wrap too
  ASSERT_EQ(log.batches.size(), 1u);
  std::vector<int> expected = range(0, kCap / 2);
  expected.push_back(kCap);
  EXPECT_EQ(log.batches[0], expected);
  EXPECT_EQ(q.pop()->id, static_cast<int>(kCap / 2));

  // Steal between two queues that straddle the wrap at different points.
  Queue dst(kMax - 1);
  push_all(dst, items, 2 * kCap, 2 * kCap + 3);
  Item* got = q.steal_into(dst);  // q holds kCap / 2 - 1 = 127 items: takes 64
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->id, static_cast<int>(kCap / 2 + 64));
  expected = range(2 * kCap, 2 * kCap + 3);
  for (int id : range(kCap / 2 + 1, kCap / 2 + 64)) expected.push_back(id);
  EXPECT_EQ(drain(dst), expected);
  EXPECT_EQ(drain(q), range(kCap / 2 + 65, kCap));
  EXPECT_EQ(q.remaining_slots(), kCap);
}

/// Runs random operations on two queues, single-threaded, against std::deque models: FIFO order, overflow
/// batches, steal sizes and refusals, len and remaining_slots after every step.
template <std::uint32_t Capacity>
void check_against_model(std::uint32_t first_index, int ops, unsigned seed) {
  using Q = LocalQueue<Item, Capacity>;
  Q a(first_index);
  Q b(first_index + 12345);
  std::deque<int> model_a;
  std::deque<int> model_b;
  std::deque<Item> pool;  // stable addresses
  std::mt19937 rng(seed);
  std::vector<int> overflowed;
  int overflows = 0;
  int steals = 0;
  auto sink = [&](Item** items, std::size_t count) {
    ++overflows;
    overflowed.clear();
    for (std::size_t i = 0; i < count; ++i) overflowed.push_back(items[i]->id);
  };
  auto fresh = [&] { return &pool.emplace_back(Item{static_cast<int>(pool.size())}); };
  auto pop_check = [&](Q& q, std::deque<int>& model) {
    Item* got = q.pop();
    if (model.empty()) {
      ASSERT_EQ(got, nullptr);
    } else {
      ASSERT_NE(got, nullptr);
      ASSERT_EQ(got->id, model.front());
      model.pop_front();
    }
  };
  auto steal_check = [&](Q& src, std::deque<int>& model_src, Q& dst, std::deque<int>& model_dst) {
    Item* got = src.steal_into(dst);
    if (model_src.empty() || model_dst.size() > Capacity / 2) {
      ASSERT_EQ(got, nullptr);
      return;
    }
    ++steals;
    const std::size_t n = model_src.size() - model_src.size() / 2;
    for (std::size_t i = 0; i + 1 < n; ++i) {
      model_dst.push_back(model_src.front());
      model_src.pop_front();
    }
    ASSERT_NE(got, nullptr);
    ASSERT_EQ(got->id, model_src.front());
    model_src.pop_front();
  };
  auto push_check = [&](Q& q, std::deque<int>& model) {
    Item* item = fresh();
    overflowed.clear();
    const int before = overflows;
    q.push_back_or_overflow(item, sink);
    if (model.size() < Capacity) {
      ASSERT_EQ(overflows, before);
      model.push_back(item->id);
      return;
    }
    ASSERT_EQ(overflows, before + 1);
    std::vector<int> expected(model.begin(), model.begin() + Capacity / 2);
    expected.push_back(item->id);
    ASSERT_EQ(overflowed, expected);
    model.erase(model.begin(), model.begin() + Capacity / 2);
  };

  for (int op = 0; op < ops; ++op) {
    const unsigned r = rng() % 100;
    // Pushes slightly outweigh pops so that the ring keeps filling up and overflowing.
    if (r < 40) {
      push_check(a, model_a);
    } else if (r < 45) {
      const std::size_t room = Capacity - model_a.size();
      const std::size_t count = room == 0 ? 0 : rng() % (room + 1);
      std::vector<Item*> batch;
      for (std::size_t i = 0; i < count; ++i) {
        batch.push_back(fresh());
        model_a.push_back(batch.back()->id);
      }
      a.push_back_batch(batch.data(), batch.size());
    } else if (r < 75) {
      pop_check(a, model_a);
    } else if (r < 85) {
      steal_check(a, model_a, b, model_b);
    } else if (r < 88) {
      steal_check(b, model_b, a, model_a);
    } else if (r < 90) {
      push_check(b, model_b);
    } else {
      pop_check(b, model_b);
    }
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "at operation " << op;
      return;
    }
    ASSERT_EQ(a.len(), model_a.size());
    ASSERT_EQ(b.len(), model_b.size());
    ASSERT_EQ(a.remaining_slots(), Capacity - model_a.size());
    ASSERT_EQ(a.is_empty(), model_a.empty());
  }
  // The run must have reached the interesting states, or it proved little.
  EXPECT_GT(overflows, 10);
  EXPECT_GT(steals, 10);
  EXPECT_GT(pool.size(), std::size_t{1} << 18);  // many laps of the ring, and of any 16-bit index
}

TEST(LocalQueue, MatchesAModelOverManyLapsOfTheRing) { check_against_model<256>(0, 1'500'000, 1); }

TEST(LocalQueue, MatchesAModelAcrossTheUint32Wrap) {
  check_against_model<256>(std::numeric_limits<std::uint32_t>::max() - 100'000, 1'500'000, 2);
}

TEST(LocalQueue, SmallRingMatchesAModel) {
  check_against_model<4>(std::numeric_limits<std::uint32_t>::max() - 1000, 1'500'000, 3);
}

// ---- concurrency -------------------------------------------------------------------------------------------

/// Who took each item, shared by the threads of a stress test. Every item must be taken exactly once.
class TakeLog {
 public:
  explicit TakeLog(int n) : items_(make_items(n)), counts_(std::make_unique<std::atomic<int>[]>(n)), n_(n) {}

  Item* item(int id) { return &items_[static_cast<std::size_t>(id)]; }

  void take(Item* item) {
    if (item < items_.data() || item >= items_.data() + n_) {
      foreign_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counts_[item->id].fetch_add(1, std::memory_order_relaxed);
    total_.fetch_add(1, std::memory_order_relaxed);
  }

  bool all_taken() const { return total_.load(std::memory_order_relaxed) >= n_; }

  void expect_each_taken_once() const {
    EXPECT_EQ(foreign_.load(), 0) << "pointers that were never pushed came out";
    int missing = 0;
    int duplicated = 0;
    int first_bad = -1;
    for (int i = 0; i < n_; ++i) {
      const int c = counts_[i].load();
      if (c == 1) continue;
      if (first_bad < 0) first_bad = i;
      if (c == 0) {
        ++missing;
      } else {
        ++duplicated;
      }
    }
    EXPECT_EQ(missing, 0) << "first bad id " << first_bad;
    EXPECT_EQ(duplicated, 0) << "first bad id " << first_bad;
    EXPECT_EQ(total_.load(), n_);
  }

 private:
  std::vector<Item> items_;
  std::unique_ptr<std::atomic<int>[]> counts_;
  std::atomic<int> total_{0};
  std::atomic<int> foreign_{0};
  int n_;
};

/// A lost item would make the threads wait forever; past this they stop and the test fails instead.
class Deadline {
 public:
  explicit Deadline(std::chrono::seconds limit) : end_(std::chrono::steady_clock::now() + limit) {}
  bool passed() {
    if (passed_.load(std::memory_order_relaxed)) return true;
    if (std::chrono::steady_clock::now() < end_) return false;
    passed_.store(true, std::memory_order_relaxed);
    return true;
  }
  bool was_passed() const { return passed_.load(); }

 private:
  std::chrono::steady_clock::time_point end_;
  std::atomic<bool> passed_{false};
};

/// One owner pushing (bursts of single pushes and batches, overflowing into a mutex-protected vector) and
/// popping at random; `stealers` threads stealing, mostly from the owner, sometimes from one another, and
/// popping from their own queues.
template <std::uint32_t Capacity>
void run_steal_stress(int n, int stealers, unsigned seed) {
  using Q = LocalQueue<Item, Capacity>;
  TakeLog log(n);
  Deadline deadline(std::chrono::seconds(60));
  std::vector<std::unique_ptr<Q>> queues;  // [0] is the owner's
  for (int i = 0; i <= stealers; ++i) queues.push_back(std::make_unique<Q>());

  std::mutex overflow_mutex;
  std::vector<Item*> injection;
  int full_overflows = 0;
  int single_overflows = 0;
  int bad_batches = 0;
  auto overflow = [&](Item** items, std::size_t count) {
    std::lock_guard<std::mutex> lock(overflow_mutex);
    if (count == 1) {
      ++single_overflows;
    } else {
      ++full_overflows;
      // The owner pushes increasing ids: the batch is the oldest half in order, then the newest item.
      if (count != Capacity / 2 + 1) ++bad_batches;
      for (std::size_t i = 1; i < count; ++i) {
        if (items[i]->id <= items[i - 1]->id) ++bad_batches;
      }
    }
    for (std::size_t i = 0; i < count; ++i) {
      injection.push_back(items[i]);
      log.take(items[i]);
    }
  };

  std::atomic<long> steals{0};
  std::atomic<long> stealer_takes{0};
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int s = 1; s <= stealers; ++s) {
    threads.emplace_back([&, s] {
      std::mt19937 rng(seed * 7919u + static_cast<unsigned>(s));
      Q& own = *queues[static_cast<std::size_t>(s)];
      long my_steals = 0;
      long my_takes = 0;
      started.fetch_add(1);
      while (!log.all_taken() && !deadline.passed()) {
        int victim = 0;
        if (stealers > 1 && rng() % 4 == 0) {
          victim = 1 + static_cast<int>(rng() % static_cast<unsigned>(stealers - 1));
          if (victim >= s) ++victim;
        }
        Q& from = *queues[static_cast<std::size_t>(victim)];
        // Mostly only when there is something, as a worker does; sometimes blindly, to race the owner's pops.
        Item* got = (from.is_stealable() || rng() % 2 == 0) ? from.steal_into(own) : nullptr;
        if (got) {
          ++my_steals;
          ++my_takes;
          log.take(got);
        }
        // Pop some, keep some: the rest can be stolen from us, and full enough we refuse to steal.
        for (unsigned k = rng() % 8; k > 0; --k) {
          Item* item = own.pop();
          if (!item) break;
          ++my_takes;
          log.take(item);
        }
        if (!got && rng() % 4 == 0) std::this_thread::yield();
        if (rng() % 64 == 0) std::this_thread::yield();
      }
      while (Item* item = own.pop()) {
        ++my_takes;
        log.take(item);
      }
      steals.fetch_add(my_steals);
      stealer_takes.fetch_add(my_takes);
    });
  }

  // The owner, on this thread, once every stealer runs.
  while (started.load() < stealers) std::this_thread::yield();
  Q& q = *queues[0];
  std::mt19937 rng(seed);
  int next = 0;
  int last_popped = -1;
  int owner_misordered = 0;
  long owner_pops = 0;
  std::vector<Item*> batch;
  auto owner_pop = [&] {
    Item* item = q.pop();
    if (!item) return false;
    if (item->id <= last_popped) ++owner_misordered;
    last_popped = item->id;
    ++owner_pops;
    log.take(item);
    return true;
  };
  while (next < n && !deadline.passed()) {
    // Phases of different push/pop mixes, so that the ring in turn fills (and overflows), drains and idles.
    const unsigned push_percent = 30 + 15 * (rng() % 5);
    const unsigned phase = 1 + rng() % (2 * Capacity);
    for (unsigned i = 0; i < phase && next < n; ++i) {
      if (rng() % 100 >= push_percent) {
        owner_pop();
      } else if (rng() % 32 == 0) {
        const std::size_t room = q.remaining_slots();
        const std::size_t count = std::min<std::size_t>(room == 0 ? 0 : rng() % (room + 1), n - next);
        batch.clear();
        for (std::size_t j = 0; j < count; ++j) batch.push_back(log.item(next++));
        q.push_back_batch(batch.data(), batch.size());
      } else {
        q.push_back_or_overflow(log.item(next++), overflow);
      }
      if (rng() % 32 == 0) std::this_thread::yield();
    }
  }
  while (!log.all_taken() && !deadline.passed()) {
    if (!owner_pop()) std::this_thread::yield();
  }
  for (std::thread& t : threads) t.join();

  EXPECT_FALSE(deadline.was_passed()) << "timed out: an item was lost";
  log.expect_each_taken_once();
  for (auto& queue : queues) {
    EXPECT_TRUE(queue->is_empty());
    EXPECT_EQ(queue->pop(), nullptr);
  }
  EXPECT_EQ(owner_misordered, 0) << "the owner's pops left FIFO order";
  EXPECT_EQ(bad_batches, 0);
  std::printf("  items %d: %ld popped by the owner, %ld taken by stealers in %ld steals, %zu overflowed\n", n,
              owner_pops, stealer_takes.load(), steals.load(), injection.size());
  std::printf("  overflows: %d of half the ring, %d of one item (a steal was running)\n", full_overflows,
              single_overflows);
}

TEST(LocalQueueStress, OwnerPushesAndPopsWhileThreeThreadsSteal) {
  run_steal_stress<256>(2'000'000 / kStressScale, 3, 11);
}

// A ring of 4 fills up and empties all the time: overflows race with steals, steals overlap the owner's pops
// of the same few slots, and the owner laps the ring while a stealer copies, so a slot it reuses too early
// shows up as a lost or doubled item.
TEST(LocalQueueStress, SmallRingOverflowsWhileThreeThreadsSteal) {
  run_steal_stress<4>(2'000'000 / kStressScale, 3, 12);
}

/// The racy edge: the owner pushes one to three items and pops them at once while `stealers` threads spin
/// on stealing them, so pop and steal fight over the same last item, and the owner pops while a steal holds
/// its reservation (steal != real).
void run_nearly_empty_stress(int rounds, int stealers, unsigned seed) {
  TakeLog log(3 * rounds);
  Deadline deadline(std::chrono::seconds(60));
  Queue q;
  std::atomic<bool> done{false};
  std::atomic<long> steals{0};
  std::atomic<int> stray{0};
  std::vector<std::thread> threads;
  for (int s = 1; s <= stealers; ++s) {
    threads.emplace_back([&, s] {
      std::mt19937 rng(seed * 7919u + static_cast<unsigned>(s));
      Queue own;
      long my_steals = 0;
      while (!done.load(std::memory_order_relaxed) && !deadline.passed()) {
        if (!q.is_stealable()) {
          if (rng() % 8 == 0) std::this_thread::yield();
          continue;
        }
        if (Item* got = q.steal_into(own)) {
          ++my_steals;
          log.take(got);
        }
        // At most three items: a steal takes at most two, so at most one lands in our queue.
        if (own.len() > 1) stray.fetch_add(1);
        while (Item* item = own.pop()) log.take(item);
        if (rng() % 32 == 0) std::this_thread::yield();
      }
      steals.fetch_add(my_steals);
    });
  }

  std::mt19937 rng(seed);
  int next = 0;
  int last_popped = -1;
  int owner_misordered = 0;
  for (int round = 0; round < rounds && !deadline.passed(); ++round) {
    const unsigned r = rng() % 8;
    const int count = r < 4 ? 1 : r < 7 ? 2 : 3;
    if (rng() % 2 == 0 && q.remaining_slots() >= static_cast<std::size_t>(count)) {
      Item* batch[3];
      for (int i = 0; i < count; ++i) batch[i] = log.item(next++);
      q.push_back_batch(batch, static_cast<std::size_t>(count));
    } else {
      // A stealer preempted in the middle of its copy keeps its slots reserved while the owner goes on
      // pushing and popping; after a lap of the ring the owner must hand the new item to overflow.
      for (int i = 0; i < count; ++i) {
        q.push_back_or_overflow(log.item(next++), [&](Item** items, std::size_t n) {
          for (std::size_t k = 0; k < n; ++k) log.take(items[k]);
        });
      }
    }
    // Give the stealers a window of varying length before racing them.
    for (unsigned spin = rng() % 64; spin > 0; --spin) (void)done.load(std::memory_order_relaxed);
    if (rng() % 16 == 0) std::this_thread::yield();
    while (Item* item = q.pop()) {
      if (item->id <= last_popped) ++owner_misordered;
      last_popped = item->id;
      log.take(item);
    }
    // Stolen items still count: pop() returned nullptr only once every item was claimed.
  }
  // Items no one pushed were never taken; account for the unused ids before checking.
  for (int id = next; id < 3 * rounds; ++id) log.take(log.item(id));
  while (!log.all_taken() && !deadline.passed()) std::this_thread::yield();
  done.store(true);
  for (std::thread& t : threads) t.join();

  EXPECT_FALSE(deadline.was_passed()) << "timed out: an item was lost";
  log.expect_each_taken_once();
  EXPECT_TRUE(q.is_empty());
  EXPECT_EQ(owner_misordered, 0);
  EXPECT_EQ(stray.load(), 0);
  std::printf("  rounds %d, items %d, stolen %ld\n", rounds, next, steals.load());
}

TEST(LocalQueueStress, OwnerPopsRaceStealsOfTheLastItems) { run_nearly_empty_stress(300'000 / kStressScale, 3, 21); }

}  // namespace
