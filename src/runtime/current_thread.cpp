// The current_thread flavor: every task runs on the thread that calls Runtime::block_on().
#include "runtime_core.hpp"

#include <atomic>
#include <mutex>
#include <optional>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/reactor.hpp"
#include "spindle/runtime/detail/signal_driver.hpp"
#include "spindle/runtime/detail/timer_wheel.hpp"

namespace spindle::detail {

class CurrentThreadCore final : public RuntimeCore {
 public:
  explicit CurrentThreadCore(const RuntimeOptions& options)
      : clock_(options.start_paused),
        reactor_(make_epoll_backend()),
        signals_(reactor_),
        event_interval_(options.event_interval) {
    context_.scheduler = this;
    context_.reactor = &reactor_;
    context_.timers = &timers_;
    context_.clock = &clock_;
    context_.signals = &signals_;
  }

  CurrentThreadCore(const CurrentThreadCore&) = delete;
  CurrentThreadCore& operator=(const CurrentThreadCore&) = delete;

  ~CurrentThreadCore() override {
    ContextGuard guard(&context_);
    local_.clear();
    {
      std::lock_guard lock(remote_mutex_);
      remote_.clear();
    }
    cancel_all_tasks();
    local_.clear();
  }

  void schedule(TaskHeader& task, ScheduleHint) noexcept override {
    if (current_context() == &context_) {
      local_.push(task);
      return;
    }
    {
      std::lock_guard lock(remote_mutex_);
      remote_.push(task);
      remote_schedules_.fetch_add(1, std::memory_order_relaxed);
      remote_pending_.store(true, std::memory_order_release);
    }
    reactor_.interrupt();
  }

  void run_until_complete(TaskHeader& root) override {
    run_until([&root] { return root.is_complete(); }, std::nullopt);
  }

  std::size_t drain(std::chrono::nanoseconds limit) override {
    const Clock::Instant deadline = clock_.now() + limit;
    run_until([&] { return live_tasks() == 0 || clock_.now() >= deadline; }, clock_.ticks_for(deadline));
    return live_tasks();
  }

 private:
  void take_remote() {
    if (!remote_pending_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(remote_mutex_);
    local_.append(remote_);
    remote_pending_.store(false, std::memory_order_relaxed);
  }

  // The loop: run queued tasks, poll I/O and timers, until `done()`; never sleep past `wake_by`.
  template <class Done>
  void run_until(Done done, std::optional<std::uint64_t> wake_by) {
    ContextGuard guard(&context_);
    for (;;) {
      take_remote();
      unsigned ran = 0;
      for (; ran < event_interval_ && !local_.empty(); ++ran) local_.pop()->run();
      count_up(polls_, ran);
      take_remote();
      if (done()) return;
      drive(!local_.empty(), wake_by);
    }
  }

  // Polls I/O and fires timers. With tasks queued it only looks; otherwise it sleeps in the reactor until
  // the next timer is due (or `wake_by`). A paused clock instead jumps there once nothing else is ready.
  void drive(bool tasks_queued, std::optional<std::uint64_t> wake_by) {
    std::optional<std::uint64_t> next_timer = timers_.next_deadline();
    if (wake_by && (!next_timer || *wake_by < *next_timer)) next_timer = wake_by;
    std::size_t completed = 0;
    if (tasks_queued) {
      completed = reactor_.turn(0);
    } else if (clock_.paused()) {
      completed = reactor_.turn(0);
      if (completed == 0 && !remote_pending_.load(std::memory_order_acquire)) {
        if (next_timer) {
          clock_.advance_to_tick(*next_timer);
        } else {
          count_up(parks_, 1);
          completed = reactor_.turn(-1);
        }
      }
    } else {
      const int timeout = wait_timeout(next_timer, clock_.now_ticks());
      if (timeout != 0) count_up(parks_, 1);
      completed = reactor_.turn(timeout);
    }
    count_up(io_completions_, completed);
    count_up(timers_fired_, timers_.advance_to(clock_.now_ticks()));
  }

  RuntimeContext context_;
  Clock clock_;
  TimerWheel timers_;
  Reactor reactor_;
  SignalDriver signals_;
  unsigned event_interval_;

  // Metrics (RuntimeMetrics): written by the loop's thread only, read from anywhere.
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<std::uint64_t> parks_{0};
  std::atomic<std::uint64_t> io_completions_{0};
  std::atomic<std::uint64_t> timers_fired_{0};
  std::atomic<std::uint64_t> remote_schedules_{0};

 public:
  RuntimeMetrics metrics() const noexcept override {
    RuntimeMetrics m;
    m.live_tasks = live_tasks();
    m.polls = polls_.load(std::memory_order_relaxed);
    m.parks = parks_.load(std::memory_order_relaxed);
    m.io_completions = io_completions_.load(std::memory_order_relaxed);
    m.timers_fired = timers_fired_.load(std::memory_order_relaxed);
    m.remote_schedules = remote_schedules_.load(std::memory_order_relaxed);
    add_blocking_pool_metrics(m);
    return m;
  }

 private:
  RunQueue local_;  // touched only by the thread running the loop
  std::mutex remote_mutex_;
  RunQueue remote_;  // tasks woken or spawned from other threads
  std::atomic<bool> remote_pending_{false};
};

std::unique_ptr<RuntimeCore> make_current_thread_core(const RuntimeOptions& options) {
  return std::make_unique<CurrentThreadCore>(options);
}

}  // namespace spindle::detail
