#include "spindle/runtime/detail/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

using spindle::detail::TimerEntry;
using spindle::detail::TimerWheel;

namespace {

struct Recorder {
  std::vector<std::uint64_t> fired;  // the wheel's time when each entry fired
  TimerWheel* wheel = nullptr;
};

struct TestTimer {
  TimerEntry entry;
  Recorder* recorder = nullptr;
  std::uint64_t wanted = 0;

  void arm(TimerWheel& wheel, Recorder& r, std::uint64_t deadline) {
    recorder = &r;
    wanted = deadline;
    entry.deadline = deadline;
    entry.owner = this;
    entry.on_fire = [](TimerEntry& e) noexcept -> bool {
      auto* self = static_cast<TestTimer*>(e.owner);
      self->recorder->fired.push_back(self->recorder->wheel->elapsed());
      return false;
    };
    wheel.insert(entry);
  }
};

TEST(TimerWheel, FiresEachTimerAtItsDeadlineNeverEarly) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  const std::vector<std::uint64_t> deadlines = {1, 2, 63, 64, 65, 4095, 4096, 4097, 300'000, 20'000'000};
  std::vector<TestTimer> timers(deadlines.size());
  for (std::size_t i = 0; i < deadlines.size(); ++i) timers[i].arm(wheel, recorder, deadlines[i]);
  EXPECT_EQ(wheel.size(), deadlines.size());

  // Step time forward to each next deadline the wheel reports, as the runtime does.
  while (auto next = wheel.next_deadline()) wheel.advance_to(*next);
  EXPECT_EQ(recorder.fired, deadlines);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, NextDeadlineIsTheEarliestTimer) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  std::vector<TestTimer> timers(3);
  timers[0].arm(wheel, recorder, 5000);
  timers[1].arm(wheel, recorder, 70);
  timers[2].arm(wheel, recorder, 100'000);
  // Upper-level slots report their start; whatever they report must not be after the earliest timer.
  auto next = wheel.next_deadline();
  ASSERT_TRUE(next);
  EXPECT_LE(*next, 70u);
  wheel.advance_to(69);
  EXPECT_TRUE(recorder.fired.empty());
  wheel.advance_to(70);
  EXPECT_EQ(recorder.fired, (std::vector<std::uint64_t>{70}));
}

TEST(TimerWheel, CancelledTimersDoNotFire) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  std::vector<TestTimer> timers(3);
  timers[0].arm(wheel, recorder, 10);
  timers[1].arm(wheel, recorder, 5000);
  timers[2].arm(wheel, recorder, 20);
  timers[1].entry.disarm();
  timers[0].entry.disarm();
  EXPECT_FALSE(timers[0].entry.armed());
  EXPECT_EQ(wheel.size(), 1u);
  wheel.advance_to(10'000);
  EXPECT_EQ(recorder.fired, (std::vector<std::uint64_t>{20}));
}

TEST(TimerWheel, JumpingFarAheadFiresEverythingDueInOrderOfLevels) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  std::vector<TestTimer> timers(4);
  timers[0].arm(wheel, recorder, 3);
  timers[1].arm(wheel, recorder, 100);
  timers[2].arm(wheel, recorder, 10'000);
  timers[3].arm(wheel, recorder, 10'000'000);
  EXPECT_EQ(wheel.advance_to(50'000), 3u);
  EXPECT_EQ(recorder.fired.size(), 3u);
  EXPECT_EQ(wheel.size(), 1u);
}

TEST(TimerWheel, PastDeadlinesFireAtTheNextAdvance) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  wheel.advance_to(1000);
  TestTimer late;
  late.arm(wheel, recorder, 10);
  EXPECT_EQ(wheel.advance_to(1001), 1u);
}

TEST(TimerWheel, DeadlinesBeyondTheWheelAreClamped) {
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  TestTimer far;
  far.arm(wheel, recorder, ~std::uint64_t{0});
  EXPECT_EQ(far.entry.deadline, TimerWheel::kMaxTicks);
  EXPECT_EQ(wheel.advance_to(TimerWheel::kMaxTicks - 1), 0u);
  EXPECT_EQ(wheel.advance_to(TimerWheel::kMaxTicks), 1u);
}

// Random timers, random cancellations, random advances: each survivor fires exactly once, at or after
// its deadline and no later than the first advance that reaches it.
TEST(TimerWheel, RandomisedAgainstASortedModel) {
  std::mt19937_64 random(12345);
  TimerWheel wheel;
  Recorder recorder{{}, &wheel};
  constexpr int kTimers = 5000;
  std::vector<TestTimer> timers(kTimers);
  std::vector<bool> cancelled(kTimers, false);
  for (int i = 0; i < kTimers; ++i) {
    const std::uint64_t span = std::uint64_t{1} << (random() % 30);
    timers[i].arm(wheel, recorder, 1 + random() % span);
  }
  for (int i = 0; i < kTimers; i += 7) {
    timers[i].entry.disarm();
    cancelled[i] = true;
  }
  std::uint64_t now = 0;
  std::vector<std::uint64_t> fired_at(kTimers, 0);
  for (int i = 0; i < kTimers; ++i) {
    timers[i].entry.on_fire = [](TimerEntry& e) noexcept -> bool {
      auto* self = static_cast<TestTimer*>(e.owner);
      self->recorder->fired.push_back(self->wanted);
      // Record in `wanted`'s place the wheel time, via the recorder's last entry.
      self->wanted = self->recorder->wheel->elapsed() | (std::uint64_t{1} << 63);
      return false;
    };
  }
  while (wheel.size() > 0) {
    now += 1 + random() % 5000;
    const std::uint64_t before = now;
    wheel.advance_to(now);
    for (int i = 0; i < kTimers; ++i) {
      if (cancelled[i] || fired_at[i] != 0) continue;
      if ((timers[i].wanted >> 63) != 0) fired_at[i] = before;
    }
  }
  for (int i = 0; i < kTimers; ++i) {
    if (cancelled[i]) {
      EXPECT_EQ(timers[i].wanted >> 63, 0u);
      continue;
    }
    ASSERT_NE(fired_at[i], 0u) << "timer " << i << " never fired";
    const std::uint64_t fired_time = timers[i].wanted & ~(std::uint64_t{1} << 63);
    EXPECT_GE(fired_time, timers[i].entry.deadline) << "timer " << i << " fired early";
    EXPECT_LE(fired_time, fired_at[i]);
  }
}

}  // namespace
