// The multi_thread flavor: work-stealing workers sharing one reactor and one timer wheel, after Tokio's
// multi-threaded scheduler (tokio/src/runtime/scheduler/multi_thread). docs/architecture.md has the why.
//
// Each worker owns a LocalQueue (lock-free, stealable) and a LIFO slot; tasks from outside the runtime,
// and the overflow of full local queues, go to one mutex-protected injection queue. A worker looks for
// work in this order: LIFO slot, own queue, injection queue (first, every 61st turn, so it cannot be
// starved), then steals half of another worker's queue. A worker that finds nothing parks: in the
// reactor (epoll_wait until the next timer) if no other worker is there already, else on a condition
// variable. The Idle counters keep at most half of the workers searching and wake exactly one parked
// worker when work appears and nobody is searching.

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime_core.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/local_queue.hpp"
#include "spindle/runtime/detail/reactor.hpp"
#include "spindle/runtime/detail/signal_driver.hpp"
#include "spindle/runtime/detail/timer_wheel.hpp"

namespace spindle::detail {
namespace {

constexpr unsigned kGlobalQueueInterval = 61;  // Tokio: look at the injection queue first every 61 turns
constexpr unsigned kMaxLifoPolls = 3;          // Tokio: LIFO tasks run back to back before the queue gets a turn
constexpr std::size_t kMaxInjectBatch = 64;    // tasks a worker moves from the injection queue at once

// Tokio's idle coordination. One atomic word counts the searching workers (low 16 bits) and the unparked
// ones (the bits above); the parked workers' indices sit in a list under a mutex.
//
// The rule that prevents a lost wake-up: a worker that queues a task then reads the word with a
// read-modify-write (seq_cst), and a worker that parks writes it with one and then looks at the queues.
// The two read-modify-writes are ordered; whichever comes second sees the other's effect.
class Idle {
 public:
  explicit Idle(unsigned workers) : workers_(workers), state_(workers << kUnparkedShift) {}

  bool notify_should_wakeup() noexcept {
    const std::uint32_t state = state_.fetch_add(0, std::memory_order_seq_cst);
    return searching(state) == 0 && unparked(state) < workers_;
  }
  /// Picks a parked worker to wake (it comes back searching), if waking one is still needed.
  std::optional<unsigned> worker_to_notify() {
    std::lock_guard lock(mutex_);
    if (!notify_should_wakeup() || sleepers_.empty()) return std::nullopt;
    state_.fetch_add(1 | (1u << kUnparkedShift), std::memory_order_seq_cst);
    const unsigned worker = sleepers_.back();
    sleepers_.pop_back();
    return worker;
  }
  /// True if the worker was the last one searching: it must then check the queues once more.
  bool transition_worker_to_parked(unsigned worker, bool is_searching) {
    std::lock_guard lock(mutex_);
    const std::uint32_t previous =
        state_.fetch_sub((1u << kUnparkedShift) | (is_searching ? 1u : 0u), std::memory_order_seq_cst);
    sleepers_.push_back(worker);
    return is_searching && searching(previous) == 1;
  }
  bool transition_worker_to_searching() noexcept {
    // Not a compare-and-swap: a few more searchers than half, now and then, is harmless.
    if (2 * searching(state_.load(std::memory_order_seq_cst)) >= workers_) return false;
    state_.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  /// True if it was the last searching worker.
  bool transition_worker_from_searching() noexcept {
    return searching(state_.fetch_sub(1, std::memory_order_seq_cst)) == 1;
  }
  /// A parked worker woke up by itself (its driver turn brought it work): unparked, not searching.
  /// False if it was not parked (it was notified, and counted as searching already).
  bool unpark_worker_by_id(unsigned worker) {
    std::lock_guard lock(mutex_);
    auto it = std::find(sleepers_.begin(), sleepers_.end(), worker);
    if (it == sleepers_.end()) return false;
    *it = sleepers_.back();
    sleepers_.pop_back();
    state_.fetch_add(1u << kUnparkedShift, std::memory_order_seq_cst);
    return true;
  }
  bool is_parked(unsigned worker) {
    std::lock_guard lock(mutex_);
    return std::find(sleepers_.begin(), sleepers_.end(), worker) != sleepers_.end();
  }

 private:
  static constexpr unsigned kUnparkedShift = 16;
  static std::uint32_t searching(std::uint32_t state) noexcept { return state & ((1u << kUnparkedShift) - 1); }
  static std::uint32_t unparked(std::uint32_t state) noexcept { return state >> kUnparkedShift; }

  const std::uint32_t workers_;
  std::atomic<std::uint32_t> state_;
  std::mutex mutex_;
  std::vector<unsigned> sleepers_;
};

// How a worker sleeps: in the reactor (it holds the driver) or on its condition variable. unpark() makes
// the next park() return at once if it comes before it.
struct Parker {
  enum State : int { kEmpty, kParkedCondvar, kParkedDriver, kNotified };
  std::atomic<int> state{kEmpty};
  std::mutex mutex;
  std::condition_variable condvar;
};

class MultiThreadCore;

struct Worker {
  MultiThreadCore* core = nullptr;
  unsigned index = 0;
  LocalQueue<TaskHeader> queue;
  TaskHeader* lifo = nullptr;  // the task most recently woken by this worker's running task
  // spawn_local() tasks bound to this worker: never stolen. Wakes from other threads go to the remote
  // list, which the worker moves into `pinned` when it looks for work.
  RunQueue pinned;
  std::mutex pinned_remote_mutex;
  RunQueue pinned_remote;
  std::atomic<bool> pinned_remote_pending{false};
  bool searching = false;
  bool in_driver = false;  // inside a reactor turn: wakes go to the queue, one notification afterwards
  unsigned tick = 0;
  std::uint32_t random = 0;
  Parker parker;
  std::thread thread;
  // Metrics: written by the worker only.
  std::atomic<std::uint64_t> polls{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> overflows{0};
  std::atomic<std::uint64_t> io_completions{0};
  std::atomic<std::uint64_t> timers_fired{0};

  bool has_tasks() const noexcept {
    return lifo != nullptr || !queue.is_empty() || !pinned.empty() ||
           pinned_remote_pending.load(std::memory_order_acquire);
  }
  void take_pinned_remote() {
    if (!pinned_remote_pending.load(std::memory_order_acquire)) return;
    std::lock_guard lock(pinned_remote_mutex);
    pinned.append(pinned_remote);
    pinned_remote_pending.store(false, std::memory_order_relaxed);
  }

  unsigned next_random(unsigned bound) noexcept {
    random ^= random << 13;  // xorshift32: victims only need to differ between workers and turns
    random ^= random >> 17;
    random ^= random << 5;
    return random % bound;
  }
};

thread_local Worker* t_worker = nullptr;

class MultiThreadCore final : public RuntimeCore {
 public:
  explicit MultiThreadCore(const RuntimeOptions& options)
      : timers_(/*shared=*/true),
        clock_(/*paused=*/false),
        reactor_(make_epoll_backend()),
        signals_(reactor_),
        event_interval_(options.event_interval),
        idle_(worker_count(options)) {
    context_.scheduler = this;
    context_.reactor = &reactor_;
    context_.timers = &timers_;
    context_.clock = &clock_;
    context_.signals = &signals_;
    context_.multi_thread = true;
    timers_.set_driver_wake([](void* reactor) noexcept { static_cast<Reactor*>(reactor)->interrupt(); }, &reactor_);
    const unsigned count = worker_count(options);
    workers_.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      auto worker = std::make_unique<Worker>();
      worker->core = this;
      worker->index = i;
      worker->random = 0x9e3779b9u * (i + 1);
      workers_.push_back(std::move(worker));
    }
    for (auto& worker : workers_) worker->thread = std::thread([this, w = worker.get()] { run_worker(*w); });
  }

  MultiThreadCore(const MultiThreadCore&) = delete;
  MultiThreadCore& operator=(const MultiThreadCore&) = delete;

  ~MultiThreadCore() override {
    shutdown_.store(true, std::memory_order_release);
    for (auto& worker : workers_) unpark(*worker);
    for (auto& worker : workers_) worker->thread.join();
    // The workers are gone: what is left is destroyed here, as the current-thread runtime does. Tasks
    // woken meanwhile land in the injection queue, which is dropped after.
    ContextGuard guard(&context_);
    cancel_all_tasks();
    std::lock_guard lock(inject_mutex_);
    inject_.clear();
  }

  std::uint16_t pin_for_current_thread() const override {
    if (t_worker == nullptr || t_worker->core != this)
      throw std::logic_error("spindle::spawn_local called outside a worker of this runtime");
    return static_cast<std::uint16_t>(t_worker->index + 1);
  }

  void schedule(TaskHeader& task, ScheduleHint hint) noexcept override {
    Worker* worker = t_worker;
    if (const std::uint16_t pin = task.pinned_worker(); pin != 0 && worker != workers_[pin - 1].get()) {
      Worker& home = *workers_[pin - 1];
      {
        std::lock_guard lock(home.pinned_remote_mutex);
        home.pinned_remote.push(task);
        home.pinned_remote_pending.store(true, std::memory_order_release);
      }
      unpark(home);  // only its home can run it; if home is busy, the notification is a no-op
      return;
    }
    if (worker == nullptr || worker->core != this) {
      push_inject(task);
      remote_schedules_.fetch_add(1, std::memory_order_relaxed);
      notify_parked();
      return;
    }
    if (worker->in_driver && task.pinned_worker() == 0 &&
        (worker->queue.remaining_slots() == 0 || inject_length_.load(std::memory_order_acquire) != 0)) {
      // A reactor turn can wake more tasks than the local queue holds. They queue up in the order they
      // became ready: the first ones here, the rest behind them in the injection queue, where the other
      // workers take them. (Overflowing would move the oldest half out and let later ones overtake
      // them: at 1,000 ready connections that decides the tail latency.)
      push_inject(task);
      return;
    }
    if (hint == ScheduleHint::woken && !worker->in_driver) {
      // Message passing: the task just woken probably wants what the running task produced, while it is
      // still in this CPU's cache. It runs next; the one it displaces goes to the queue.
      TaskHeader* displaced = std::exchange(worker->lifo, &task);
      if (displaced == nullptr) return;
      push_local(*worker, *displaced);
    } else {
      push_local(*worker, task);
    }
    if (!worker->in_driver) notify_parked();
  }

  void run_until_complete(TaskHeader& root) override {
    std::unique_lock lock(done_mutex_);
    awaited_root_ = &root;
    done_.wait(lock, [&root] { return root.is_complete(); });
    awaited_root_ = nullptr;
  }

  std::size_t drain(std::chrono::nanoseconds limit) override {
    std::unique_lock lock(done_mutex_);
    done_.wait_for(lock, limit, [this] { return live_tasks() == 0; });
    return live_tasks();
  }

  RuntimeMetrics metrics() const noexcept override {
    RuntimeMetrics m;
    m.live_tasks = live_tasks();
    m.workers = workers_.size();
    for (const auto& worker : workers_) {
      m.polls += worker->polls.load(std::memory_order_relaxed);
      m.steals += worker->steals.load(std::memory_order_relaxed);
      m.parks += worker->parks.load(std::memory_order_relaxed);
      m.overflows += worker->overflows.load(std::memory_order_relaxed);
      m.io_completions += worker->io_completions.load(std::memory_order_relaxed);
      m.timers_fired += worker->timers_fired.load(std::memory_order_relaxed);
    }
    m.remote_schedules = remote_schedules_.load(std::memory_order_relaxed);
    m.injection_queue_depth = inject_length_.load(std::memory_order_relaxed);
    add_blocking_pool_metrics(m);
    return m;
  }

 protected:
  void task_finished(TaskHeader& task, std::size_t live_left) noexcept override {
    if (live_left != 0 && &task != awaited_root_.load(std::memory_order_seq_cst)) return;
    { std::lock_guard lock(done_mutex_); }  // the waiter is either before its check or inside wait()
    done_.notify_all();
  }

 private:
  static unsigned worker_count(const RuntimeOptions& options) noexcept {
    if (options.worker_threads != 0) return std::min(options.worker_threads, 0xffffu);
    return std::max(1u, std::thread::hardware_concurrency());
  }

  void run_worker(Worker& worker) {
    const std::string name = "spindle-w" + std::to_string(worker.index);
    pthread_setname_np(pthread_self(), name.c_str());
    t_worker = &worker;
    ContextGuard guard(&context_);
    while (!shutdown_.load(std::memory_order_acquire)) {
      ++worker.tick;
      if (worker.tick % event_interval_ == 0) maintenance(worker);
      if (TaskHeader* task = next_task(worker)) {
        run_task(worker, *task);
      } else if (TaskHeader* stolen = steal_work(worker)) {
        run_task(worker, *stolen);
      } else {
        park(worker);
      }
    }
    if (worker.searching) idle_.transition_worker_from_searching();
    t_worker = nullptr;
  }

  // Tasks are always ready: still poll I/O and timers now and then, if no other worker is in the reactor.
  void maintenance(Worker& worker) {
    if (!driver_mutex_.try_lock()) return;
    drive(worker, /*may_sleep=*/false);
    driver_mutex_.unlock();
    if (should_notify_others(worker)) notify_parked();
  }

  TaskHeader* next_task(Worker& worker) {
    if (worker.tick % kGlobalQueueInterval == 0) {
      if (TaskHeader* task = pull_from_inject(worker)) return task;
    }
    if (TaskHeader* task = std::exchange(worker.lifo, nullptr)) return task;
    // Pinned and stealable tasks take turns going first, so neither kind starves the other.
    worker.take_pinned_remote();
    if (worker.tick % 2 == 0) {
      if (TaskHeader* task = worker.pinned.pop()) return task;
    }
    if (TaskHeader* task = worker.queue.pop()) return task;
    if (TaskHeader* task = worker.pinned.pop()) return task;
    return pull_from_inject(worker);
  }

  TaskHeader* steal_work(Worker& worker) {
    if (!worker.searching) {
      if (!idle_.transition_worker_to_searching()) return nullptr;
      worker.searching = true;
    }
    const auto count = static_cast<unsigned>(workers_.size());
    const unsigned start = worker.next_random(count);
    for (unsigned i = 0; i < count; ++i) {
      Worker& victim = *workers_[(start + i) % count];
      if (&victim == &worker) continue;
      if (TaskHeader* task = victim.queue.steal_into(worker.queue)) {
        count_up(worker.steals, 1);
        return task;
      }
    }
    return pull_from_inject(worker);
  }

  void run_task(Worker& worker, TaskHeader& task) {
    // The last searcher found work: wake another to keep looking, the new work may come in a burst.
    if (worker.searching) {
      worker.searching = false;
      if (idle_.transition_worker_from_searching()) notify_parked();
    }
    task.run();
    std::uint64_t polls = 1;
    for (unsigned lifo_polls = 0; TaskHeader* next = std::exchange(worker.lifo, nullptr);) {
      if (++lifo_polls > kMaxLifoPolls) {
        // Two tasks waking each other forever would otherwise keep the queue waiting.
        push_local(worker, *next);
        notify_parked();
        break;
      }
      next->run();
      ++polls;
    }
    count_up(worker.polls, polls);
  }

  void park(Worker& worker) {
    if (idle_.transition_worker_to_parked(worker.index, worker.searching)) notify_if_work_pending();
    worker.searching = false;
    while (!shutdown_.load(std::memory_order_acquire)) {
      park_worker(worker);
      if (transition_from_parked(worker)) break;
    }
    if (should_notify_others(worker)) notify_parked();
  }

  bool transition_from_parked(Worker& worker) {
    // Its own reactor turn may have queued tasks here, or behind others in the injection queue.
    if (worker.has_tasks() || inject_length_.load(std::memory_order_acquire) != 0) {
      // Back to work, but not as a searcher (unless it was notified too).
      worker.searching = !idle_.unpark_worker_by_id(worker.index);
      return true;
    }
    if (idle_.is_parked(worker.index)) return false;
    worker.searching = true;  // notified: worker_to_notify counted it as searching
    return true;
  }

  bool should_notify_others(const Worker& worker) const noexcept {
    if (worker.searching) return false;
    return (worker.lifo != nullptr ? 1 : 0) + worker.queue.len() > 1 ||
           inject_length_.load(std::memory_order_acquire) != 0;
  }

  void park_worker(Worker& worker) {
    Parker& parker = worker.parker;
    int expected = Parker::kNotified;
    if (parker.state.compare_exchange_strong(expected, Parker::kEmpty, std::memory_order_acq_rel)) return;
    if (driver_mutex_.try_lock()) {
      expected = Parker::kEmpty;
      if (parker.state.compare_exchange_strong(expected, Parker::kParkedDriver, std::memory_order_acq_rel)) {
        count_up(worker.parks, 1);
        drive(worker, /*may_sleep=*/true);
      }
      parker.state.store(Parker::kEmpty, std::memory_order_release);
      driver_mutex_.unlock();
      return;
    }
    std::unique_lock lock(parker.mutex);
    expected = Parker::kEmpty;
    if (!parker.state.compare_exchange_strong(expected, Parker::kParkedCondvar, std::memory_order_acq_rel)) {
      parker.state.store(Parker::kEmpty, std::memory_order_release);  // notified meanwhile
      return;
    }
    count_up(worker.parks, 1);
    for (;;) {
      parker.condvar.wait(lock);
      expected = Parker::kNotified;
      if (parker.state.compare_exchange_strong(expected, Parker::kEmpty, std::memory_order_acq_rel)) return;
    }
  }

  void unpark(Worker& worker) {
    Parker& parker = worker.parker;
    switch (parker.state.exchange(Parker::kNotified, std::memory_order_acq_rel)) {
      case Parker::kParkedCondvar: {
        {
          std::lock_guard lock(parker.mutex);
        }  // the parker is inside wait() once we get the mutex
        parker.condvar.notify_one();
        break;
      }
      case Parker::kParkedDriver:
        reactor_.interrupt();
        break;
      default:
        break;
    }
  }

  void notify_parked() {
    if (!idle_.notify_should_wakeup()) return;
    if (std::optional<unsigned> index = idle_.worker_to_notify()) unpark(*workers_[*index]);
  }

  void notify_if_work_pending() {
    for (const auto& worker : workers_) {
      if (worker->queue.is_stealable()) {
        notify_parked();
        return;
      }
    }
    if (inject_length_.load(std::memory_order_acquire) != 0) notify_parked();
  }

  // One reactor turn with the driver held: sleeps until the next timer if `may_sleep`, else only looks.
  void drive(Worker& worker, bool may_sleep) {
    worker.in_driver = true;
    int timeout = 0;
    if (may_sleep) timeout = wait_timeout(timers_.sleep_until_next_deadline(), clock_.now_ticks());
    count_up(worker.io_completions, reactor_.turn(timeout));
    if (may_sleep) timers_.driver_awake();
    count_up(worker.timers_fired, timers_.advance_to(clock_.now_ticks()));
    worker.in_driver = false;
  }

  void push_local(Worker& worker, TaskHeader& task) {
    if (task.pinned_worker() != 0) {  // pinned here (schedule() sent the others home)
      worker.pinned.push(task);
      return;
    }
    worker.queue.push_back_or_overflow(&task, [&](TaskHeader* const* tasks, std::size_t count) {
      count_up(worker.overflows, 1);
      std::lock_guard lock(inject_mutex_);
      for (std::size_t i = 0; i < count; ++i) inject_.push(*tasks[i]);
      inject_length_.fetch_add(count, std::memory_order_release);
    });
  }

  void push_inject(TaskHeader& task) {
    std::lock_guard lock(inject_mutex_);
    inject_.push(task);
    inject_length_.fetch_add(1, std::memory_order_release);
  }

  // Takes a fair share of the injection queue: one task to run now, a batch into the local queue.
  TaskHeader* pull_from_inject(Worker& worker) {
    if (inject_length_.load(std::memory_order_acquire) == 0) return nullptr;
    std::array<TaskHeader*, kMaxInjectBatch> batch;
    std::size_t taken = 0;
    TaskHeader* first = nullptr;
    {
      std::lock_guard lock(inject_mutex_);
      first = inject_.pop();
      if (first == nullptr) return nullptr;
      const std::size_t share = inject_length_.load(std::memory_order_relaxed) / workers_.size();
      const std::size_t wanted = std::min({share, worker.queue.remaining_slots(), kMaxInjectBatch});
      while (taken < wanted) {
        TaskHeader* task = inject_.pop();
        if (task == nullptr) break;
        batch[taken++] = task;
      }
      inject_length_.fetch_sub(taken + 1, std::memory_order_relaxed);
    }
    worker.queue.push_back_batch(batch.data(), taken);
    return first;
  }

  RuntimeContext context_;
  TimerWheel timers_;
  Clock clock_;
  Reactor reactor_;
  SignalDriver signals_;
  std::mutex driver_mutex_;  // held by the worker polling the reactor and firing timers
  const unsigned event_interval_;

  Idle idle_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> shutdown_{false};

  std::mutex inject_mutex_;
  RunQueue inject_;
  std::atomic<std::size_t> inject_length_{0};
  std::atomic<std::uint64_t> remote_schedules_{0};

  std::mutex done_mutex_;
  std::condition_variable done_;
  std::atomic<TaskHeader*> awaited_root_{nullptr};
};

}  // namespace

std::unique_ptr<RuntimeCore> make_multi_thread_core(const RuntimeOptions& options) {
  if (options.start_paused)
    throw std::invalid_argument("spindle: a paused clock needs the current_thread runtime (as in Tokio)");
  return std::make_unique<MultiThreadCore>(options);
}

}  // namespace spindle::detail
