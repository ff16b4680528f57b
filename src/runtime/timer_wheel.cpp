#include "spindle/runtime/detail/timer_wheel.hpp"

#include <bit>

namespace spindle::detail {
namespace {

constexpr std::uint64_t kSlotMask = TimerWheel::kSlots - 1;

constexpr std::uint64_t slot_range(unsigned level) { return std::uint64_t{1} << (TimerWheel::kSlotBits * level); }
constexpr std::uint64_t level_range(unsigned level) { return slot_range(level + 1); }
constexpr unsigned slot_for(std::uint64_t when, unsigned level) {
  return static_cast<unsigned>((when >> (TimerWheel::kSlotBits * level)) & kSlotMask);
}

// The level is set by the highest bit in which the deadline differs from the current time: a timer due
// within the current 64 ms block goes to level 0, within the current 4096 ms block to level 1, and so on.
unsigned level_for(std::uint64_t elapsed, std::uint64_t when) {
  std::uint64_t masked = (elapsed ^ when) | kSlotMask;
  if (masked >= TimerWheel::kMaxTicks) masked = TimerWheel::kMaxTicks - 1;
  const unsigned significant = 63u - static_cast<unsigned>(std::countl_zero(masked));
  return significant / TimerWheel::kSlotBits;
}

void push_front(TimerEntry*& head, TimerEntry& entry) {
  entry.prev = nullptr;
  entry.next = head;
  if (head != nullptr) head->prev = &entry;
  head = &entry;
}

void unlink_from(TimerEntry*& head, TimerEntry& entry) {
  if (entry.prev != nullptr)
    entry.prev->next = entry.next;
  else
    head = entry.next;
  if (entry.next != nullptr) entry.next->prev = entry.prev;
  entry.prev = entry.next = nullptr;
}

}  // namespace

void TimerEntry::disarm() noexcept {
  if (home != nullptr) home->remove(*this);
}

void TimerWheel::insert(TimerEntry& entry) noexcept {
  auto guard = lock();
  insert_locked(entry);
  if (entry.deadline < driver_sleeps_until_ && wake_driver_ != nullptr) {
    driver_sleeps_until_ = kDriverAwake;  // one wake-up is enough: the driver recomputes its deadline
    wake_driver_(wake_context_);
  }
}

void TimerWheel::insert_locked(TimerEntry& entry) noexcept {
  if (entry.deadline <= elapsed_) entry.deadline = elapsed_ + 1;
  if (entry.deadline - elapsed_ > kMaxTicks) entry.deadline = elapsed_ + kMaxTicks;
  if (entry.home != this) entry.home = this;  // a re-arm in on_fire must not write what disarm() reads
  entry.in_wheel = true;
  ++size_;
  link(entry, level_for(elapsed_, entry.deadline));
}

void TimerWheel::link(TimerEntry& entry, unsigned level) noexcept {
  const unsigned slot = slot_for(entry.deadline, level);
  entry.level = static_cast<std::uint8_t>(level);
  entry.slot = static_cast<std::uint8_t>(slot);
  push_front(levels_[level].slots[slot], entry);
  levels_[level].occupied |= std::uint64_t{1} << slot;
}

void TimerWheel::remove(TimerEntry& entry) noexcept {
  auto guard = lock();
  remove_locked(entry);
}

void TimerWheel::remove_locked(TimerEntry& entry) noexcept {
  if (!entry.in_wheel || entry.home != this) return;
  if (entry.level == kPendingLevel) {
    unlink_from(pending_, entry);
  } else {
    Level& level = levels_[entry.level];
    unlink_from(level.slots[entry.slot], entry);
    if (level.slots[entry.slot] == nullptr) level.occupied &= ~(std::uint64_t{1} << entry.slot);
  }
  entry.in_wheel = false;
  --size_;
}

std::optional<TimerWheel::Expiration> TimerWheel::next_expiration() const noexcept {
  // The lowest level with a timer holds the earliest one: everything on higher levels is due after the
  // current block of the level below ends.
  for (unsigned index = 0; index < kLevels; ++index) {
    const Level& level = levels_[index];
    if (level.occupied == 0) continue;
    const auto now_slot = static_cast<unsigned>((elapsed_ / slot_range(index)) & kSlotMask);
    const unsigned slot =
        (static_cast<unsigned>(std::countr_zero(std::rotr(level.occupied, static_cast<int>(now_slot)))) + now_slot) &
        kSlotMask;
    const std::uint64_t level_start = elapsed_ & ~(level_range(index) - 1);
    std::uint64_t deadline = level_start + slot * slot_range(index);
    // Only the top level wraps around (deadlines clamped to kMaxTicks can sit "behind" now there).
    if (deadline <= elapsed_) deadline += level_range(index);
    return Expiration{index, slot, deadline};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> TimerWheel::next_deadline() const noexcept {
  auto guard = lock();
  return next_deadline_locked();
}

std::optional<std::uint64_t> TimerWheel::sleep_until_next_deadline() noexcept {
  auto guard = lock();
  const std::optional<std::uint64_t> next = next_deadline_locked();
  driver_sleeps_until_ = next.value_or(kDriverAwake - 1);
  return next;
}

void TimerWheel::driver_awake() noexcept {
  auto guard = lock();
  driver_sleeps_until_ = kDriverAwake;
}

std::optional<std::uint64_t> TimerWheel::next_deadline_locked() const noexcept {
  if (pending_ != nullptr) return elapsed_;
  if (auto expiration = next_expiration()) return expiration->deadline;
  return std::nullopt;
}

void TimerWheel::process(const Expiration& expiration) noexcept {
  Level& level = levels_[expiration.level];
  TimerEntry* entry = level.slots[expiration.slot];
  level.slots[expiration.slot] = nullptr;
  level.occupied &= ~(std::uint64_t{1} << expiration.slot);
  while (entry != nullptr) {
    TimerEntry* next = entry->next;
    if (entry->deadline <= expiration.deadline) {
      entry->level = kPendingLevel;
      push_front(pending_, *entry);
    } else {
      link(*entry, level_for(expiration.deadline, entry->deadline));  // cascade to a finer level
    }
    entry = next;
  }
}

std::size_t TimerWheel::advance_to(std::uint64_t now) noexcept {
  auto guard = lock();
  std::size_t fired = 0;
  for (;;) {
    // Fire what has expired before looking further. on_fire runs under the lock: an awaiter disarming
    // its timer on another thread waits for it, so the awaiter outlives the call.
    while (pending_ != nullptr) {
      TimerEntry& entry = *pending_;
      unlink_from(pending_, entry);
      entry.in_wheel = false;
      --size_;
      ++fired;
      if (entry.on_fire(entry)) insert_locked(entry);
    }
    const auto expiration = next_expiration();
    if (!expiration || expiration->deadline > now) break;
    elapsed_ = expiration->deadline;
    process(*expiration);
  }
  if (now > elapsed_) elapsed_ = now;
  return fired;
}

Clock::Clock(bool paused) noexcept : start_(std::chrono::steady_clock::now()), paused_now_(start_), paused_(paused) {}

void Clock::advance(std::chrono::nanoseconds by) noexcept {
  if (paused_) paused_now_ += by;
}

void Clock::pause() noexcept {
  if (!paused_) paused_now_ = std::chrono::steady_clock::now();
  paused_ = true;
}

std::uint64_t Clock::now_ticks() const noexcept {
  const auto since_start = now() - start_;
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(since_start).count());
}

std::uint64_t Clock::ticks_for(Instant deadline) const noexcept {
  if (deadline <= start_) return 0;
  return static_cast<std::uint64_t>(std::chrono::ceil<std::chrono::milliseconds>(deadline - start_).count());
}

void Clock::advance_to_tick(std::uint64_t tick) noexcept {
  const Instant target = start_ + std::chrono::milliseconds(tick);
  if (paused_ && target > paused_now_) paused_now_ = target;
}

}  // namespace spindle::detail
