#pragma once
// A hierarchical timing wheel, after Tokio's (and Varghese & Lauck's): 6 levels of 64 slots with a
// resolution of one millisecond tick. Level 0 holds timers due in the next 64 ms, one slot per ms; each
// level up covers 64 times more with slots 64 times coarser, so 6 levels reach 64^6 ms (about 2.2 years;
// later deadlines are clamped). Insert and cancel are O(1) on intrusive lists; a 64-bit occupancy mask per
// level finds the next non-empty slot with one count-trailing-zeros. When time reaches a slot on an upper
// level its timers cascade to lower levels, each timer moving at most 5 times in its life.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>

namespace spindle::detail {

class TimerWheel;

/// A timer as the wheel keeps it: embedded in the awaiter that waits on it, so arming one allocates
/// nothing. `on_fire` runs on the thread driving the wheel once the deadline has passed, with the wheel
/// locked (so it must not arm or disarm timers); it returns true to be armed again for `deadline`, which
/// it has moved on.
struct TimerEntry {
  std::uint64_t deadline = 0;  // in ticks (milliseconds since the wheel started)
  bool (*on_fire)(TimerEntry& entry) noexcept = nullptr;
  void* owner = nullptr;  // the awaiter embedding the entry, for on_fire

  // Owned by the wheel (and guarded by its lock when it is shared).
  TimerWheel* home = nullptr;  // the wheel the entry was last inserted in
  TimerEntry* prev = nullptr;
  TimerEntry* next = nullptr;
  std::uint8_t level = 0;
  std::uint8_t slot = 0;
  bool in_wheel = false;  // one byte beside the others, not a pointer: an idle task's frame holds this

  /// Whether the entry is in its wheel; only meaningful on the thread driving an unshared wheel.
  bool armed() const noexcept { return in_wheel; }
  /// Takes the entry out of its wheel if it is still there. Once it returns, on_fire is not running and
  /// will not run.
  void disarm() noexcept;
};

class TimerWheel {
 public:
  static constexpr unsigned kLevels = 6;
  static constexpr unsigned kSlotBits = 6;
  static constexpr unsigned kSlots = 1u << kSlotBits;
  /// The farthest deadline the wheel can tell apart from now, in ticks.
  static constexpr std::uint64_t kMaxTicks = (std::uint64_t{1} << (kSlotBits * kLevels)) - 1;

  /// A wheel for one thread, or (`shared`) one that tasks on several worker threads arm and disarm while
  /// one of them drives it: every operation then takes the wheel's mutex.
  explicit TimerWheel(bool shared = false) noexcept : shared_(shared) {}
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  /// Arms `entry` for its deadline. A deadline not after elapsed() fires at the next advance.
  void insert(TimerEntry& entry) noexcept;
  void remove(TimerEntry& entry) noexcept;

  /// A shared wheel's driver sleeps until `tick` (or, with nullopt, is awake); arming a timer due earlier
  /// than that calls `wake_driver` so the driver sleeps again with the new deadline.
  void set_driver_wake(void (*wake_driver)(void* context) noexcept, void* context) noexcept {
    wake_driver_ = wake_driver;
    wake_context_ = context;
  }
  /// The driver is about to sleep: returns the next deadline, noting it as the time the driver wakes.
  std::optional<std::uint64_t> sleep_until_next_deadline() noexcept;
  void driver_awake() noexcept;
  /// The tick at which the earliest timer fires, if there is any timer.
  std::optional<std::uint64_t> next_deadline() const noexcept;
  /// Moves time forward to `now` and fires every timer whose deadline is not after it. Returns the count.
  std::size_t advance_to(std::uint64_t now) noexcept;

  std::uint64_t elapsed() const noexcept { return elapsed_; }
  std::size_t size() const noexcept { return size_; }

 private:
  struct Expiration {
    unsigned level;
    unsigned slot;
    std::uint64_t deadline;
  };
  struct Level {
    std::uint64_t occupied = 0;
    std::array<TimerEntry*, kSlots> slots{};
  };
  static constexpr std::uint8_t kPendingLevel = 0xff;  // expired, waiting for its on_fire in this advance

  std::optional<Expiration> next_expiration() const noexcept;
  std::optional<std::uint64_t> next_deadline_locked() const noexcept;
  void insert_locked(TimerEntry& entry) noexcept;
  void remove_locked(TimerEntry& entry) noexcept;
  void link(TimerEntry& entry, unsigned level) noexcept;
  std::unique_lock<std::mutex> lock() const noexcept {
    return shared_ ? std::unique_lock<std::mutex>(mutex_) : std::unique_lock<std::mutex>();
  }
  void process(const Expiration& expiration) noexcept;

  std::array<Level, kLevels> levels_{};
  TimerEntry* pending_ = nullptr;
  std::uint64_t elapsed_ = 0;
  std::size_t size_ = 0;
  bool shared_;
  mutable std::mutex mutex_;
  static constexpr std::uint64_t kDriverAwake = ~std::uint64_t{0};
  std::uint64_t driver_sleeps_until_ = kDriverAwake;
  void (*wake_driver_)(void* context) noexcept = nullptr;
  void* wake_context_ = nullptr;
};

/// The runtime's clock: real (steady_clock) or paused, in which case time moves only when a test
/// advances it or when every task waits on a timer (then it jumps to the earliest deadline, as Tokio's
/// paused clock does). Timer deadlines round up to the next tick, so a sleep never ends early.
class Clock {
 public:
  using Instant = std::chrono::steady_clock::time_point;

  explicit Clock(bool paused) noexcept;

  Instant now() const noexcept { return paused_ ? paused_now_ : std::chrono::steady_clock::now(); }
  bool paused() const noexcept { return paused_; }
  /// Moves a paused clock forward (a no-op when the clock is real).
  void advance(std::chrono::nanoseconds by) noexcept;
  void pause() noexcept;
  void resume() noexcept { paused_ = false; }

  /// Whole ticks elapsed since the clock started.
  std::uint64_t now_ticks() const noexcept;
  /// The first tick at or after `deadline`.
  std::uint64_t ticks_for(Instant deadline) const noexcept;
  /// Moves a paused clock to the start of `tick` if that is later than now.
  void advance_to_tick(std::uint64_t tick) noexcept;

 private:
  Instant start_;
  Instant paused_now_;
  bool paused_;
};

}  // namespace spindle::detail
