#include "spindle/runtime/time.hpp"

#include <stdexcept>

namespace spindle {

namespace {
detail::Clock& current_clock(const char* what) { return *detail::require_context(what).clock; }
}  // namespace

Instant now() noexcept {
  const detail::RuntimeContext* context = detail::current_context();
  return context != nullptr ? context->clock->now() : std::chrono::steady_clock::now();
}

namespace detail {
TimerWheel& current_timers(const char* what) { return *require_context(what).timers; }
std::uint64_t deadline_ticks(Instant deadline) { return current_clock("spindle timer").ticks_for(deadline); }
}  // namespace detail

Interval::Interval(Instant first_tick, Duration period, MissedTickBehavior behavior)
    : next_(first_tick), period_(period), behavior_(behavior) {
  if (period <= Duration::zero()) throw std::invalid_argument("spindle::Interval: period must be positive");
}

Task<Instant> Interval::tick() {
  co_await sleep_until(next_);
  const Instant scheduled = next_;
  const Instant current = now();
  const Duration late = current - scheduled;
  if (late < period_) {
    next_ = scheduled + period_;
  } else {
    switch (behavior_) {
      case MissedTickBehavior::burst:
        next_ = scheduled + period_;
        break;
      case MissedTickBehavior::delay:
        next_ = current + period_;
        break;
      case MissedTickBehavior::skip:
        next_ = scheduled + period_ * (late / period_ + 1);
        break;
    }
  }
  co_return scheduled;
}

void Interval::reset() { next_ = now() + period_; }

Interval interval(Duration period) { return Interval{now(), period}; }

namespace time {
void pause() {
  detail::RuntimeContext& context = detail::require_context("spindle::time::pause");
  if (context.multi_thread) throw std::logic_error("spindle::time::pause needs the current_thread runtime");
  context.clock->pause();
}
void resume() { current_clock("spindle::time::resume").resume(); }

Task<void> advance(Duration by) {
  detail::RuntimeContext& context = detail::require_context("spindle::time::advance");
  if (!context.clock->paused()) throw std::logic_error("spindle::time::advance needs a paused clock");
  context.clock->advance(by);
  context.timers->advance_to(context.clock->now_ticks());
  co_await yield_now();
}
}  // namespace time

}  // namespace spindle
