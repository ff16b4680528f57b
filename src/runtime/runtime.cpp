#include "spindle/runtime/runtime.hpp"

#include <atomic>
#include <climits>
#include <mutex>
#include <optional>

#include "spindle/runtime/blocking.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/reactor.hpp"
#include "spindle/runtime/detail/signal_driver.hpp"
#include "spindle/runtime/detail/timer_wheel.hpp"

namespace spindle::detail {

namespace {

/// An intrusive FIFO of tasks, linked through TaskHeader::queue_next. Clearing it touches no task.
class RunQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  void push(TaskHeader& task) noexcept {
    task.queue_next = nullptr;
    if (tail_ != nullptr)
      tail_->queue_next = &task;
    else
      head_ = &task;
    tail_ = &task;
  }
  TaskHeader* pop() noexcept {
    TaskHeader* task = head_;
    if (task != nullptr) {
      head_ = task->queue_next;
      if (head_ == nullptr) tail_ = nullptr;
    }
    return task;
  }
  void append(RunQueue& other) noexcept {
    if (other.head_ == nullptr) return;
    if (tail_ != nullptr)
      tail_->queue_next = other.head_;
    else
      head_ = other.head_;
    tail_ = other.tail_;
    other.head_ = other.tail_ = nullptr;
  }
  void clear() noexcept { head_ = tail_ = nullptr; }

 private:
  TaskHeader* head_ = nullptr;
  TaskHeader* tail_ = nullptr;
};

}  // namespace

class RuntimeCore final : public Scheduler {
 public:
  explicit RuntimeCore(const RuntimeOptions& options)
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

  RuntimeCore(const RuntimeCore&) = delete;
  RuntimeCore& operator=(const RuntimeCore&) = delete;

  ~RuntimeCore() override {
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

  void run_until_complete(TaskHeader& root) {
    run_until([&root] { return root.is_complete(); }, std::nullopt);
  }

  std::size_t drain(std::chrono::nanoseconds limit) {
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
      count(polls_, ran);
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
          count(parks_, 1);
          completed = reactor_.turn(-1);
        }
      }
    } else {
      const int timeout = timeout_until(next_timer);
      if (timeout != 0) count(parks_, 1);
      completed = reactor_.turn(timeout);
    }
    count(io_completions_, completed);
    count(timers_fired_, timers_.advance_to(clock_.now_ticks()));
  }

  int timeout_until(std::optional<std::uint64_t> deadline) const noexcept {
    if (!deadline) return -1;
    const std::uint64_t now = clock_.now_ticks();
    if (*deadline <= now) return 0;
    return static_cast<int>(std::min<std::uint64_t>(*deadline - now, INT_MAX));
  }

  RuntimeContext context_;
  Clock clock_;
  TimerWheel timers_;
  Reactor reactor_;
  SignalDriver signals_;
  unsigned event_interval_;

  // Metrics (RuntimeMetrics): written by the loop's thread only, read from anywhere.
  static void count(std::atomic<std::uint64_t>& counter, std::uint64_t by) noexcept {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
  std::atomic<std::uint64_t> polls_{0};
  std::atomic<std::uint64_t> parks_{0};
  std::atomic<std::uint64_t> io_completions_{0};
  std::atomic<std::uint64_t> timers_fired_{0};
  std::atomic<std::uint64_t> remote_schedules_{0};

 public:
  RuntimeMetrics metrics() const noexcept {
    RuntimeMetrics m;
    m.live_tasks = live_tasks();
    m.polls = polls_.load(std::memory_order_relaxed);
    m.parks = parks_.load(std::memory_order_relaxed);
    m.io_completions = io_completions_.load(std::memory_order_relaxed);
    m.timers_fired = timers_fired_.load(std::memory_order_relaxed);
    m.remote_schedules = remote_schedules_.load(std::memory_order_relaxed);
    const BlockingPoolStats pool = blocking_pool_stats();
    m.blocking_threads = pool.threads;
    m.blocking_queue_depth = pool.queued_jobs;
    return m;
  }

 private:
  RunQueue local_;  // touched only by the thread running the loop
  std::mutex remote_mutex_;
  RunQueue remote_;  // tasks woken or spawned from other threads
  std::atomic<bool> remote_pending_{false};
};

Scheduler& scheduler_of(RuntimeCore& core) noexcept { return core; }
void run_until_complete(RuntimeCore& core, TaskHeader& root) { core.run_until_complete(root); }
std::size_t drain(RuntimeCore& core, std::chrono::nanoseconds limit) { return core.drain(limit); }

}  // namespace spindle::detail

namespace spindle {

Runtime::Runtime(const detail::RuntimeOptions& options) : core_(std::make_unique<detail::RuntimeCore>(options)) {}
Runtime::Runtime(Runtime&&) noexcept = default;
Runtime& Runtime::operator=(Runtime&&) noexcept = default;
Runtime::~Runtime() = default;

std::size_t Runtime::live_tasks() const noexcept { return core_->live_tasks(); }
RuntimeMetrics Runtime::metrics() const noexcept { return core_->metrics(); }

std::size_t Runtime::drain(std::chrono::nanoseconds limit) {
  if (detail::current_context() != nullptr)
    throw std::logic_error("spindle::Runtime::drain called from inside a runtime");
  return detail::drain(*core_, limit);
}

}  // namespace spindle
