#pragma once
// The runtime a thread is driving, reachable from any coroutine running on it. Awaiters use it to find the
// reactor and the timer wheel; spawn() uses it to find the scheduler. Set by the runtime around its loop.

namespace spindle::detail {

class Scheduler;
class Reactor;
class TimerWheel;
class Clock;
class SignalDriver;

struct RuntimeContext {
  Scheduler* scheduler = nullptr;
  Reactor* reactor = nullptr;
  TimerWheel* timers = nullptr;
  Clock* clock = nullptr;
  SignalDriver* signals = nullptr;
  bool multi_thread = false;  // its tasks run on several threads (no paused clock)
};

/// The context of the runtime this thread is driving, or null.
RuntimeContext* current_context() noexcept;
/// The same, but calling it outside a runtime is a bug: throws std::logic_error naming `what`.
RuntimeContext& require_context(const char* what);

/// Installs a context for the lifetime of the guard (nested guards restore the previous one).
class ContextGuard {
 public:
  explicit ContextGuard(RuntimeContext* context) noexcept;
  ~ContextGuard();
  ContextGuard(const ContextGuard&) = delete;
  ContextGuard& operator=(const ContextGuard&) = delete;

 private:
  RuntimeContext* previous_;
};

}  // namespace spindle::detail
