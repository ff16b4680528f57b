#pragma once
// broadcast: every value to every receiver (chat rooms, live events). A bounded ring: a receiver that
// falls more than `capacity` values behind skips to the oldest value still kept and is told how many it
// missed, so one slow receiver never holds up the sender or grows memory. Values are copied out to each
// receiver: send something cheap to copy (a std::shared_ptr to an encoded frame, say).

#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "spindle/result.hpp"
#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle::broadcast {

/// Why recv() produced no value: every sender is gone (and everything was read), or the receiver lagged.
struct RecvError {
  enum class Kind { closed, lagged } kind;
  std::uint64_t skipped = 0;  ///< values missed, for `lagged`; the next recv() returns the oldest kept
};

namespace detail {
template <class T>
struct Shared {
  explicit Shared(std::size_t capacity) : slots(capacity) {}
  std::mutex mutex;
  std::vector<std::optional<T>> slots;
  std::uint64_t tail = 0;  // sequence number of the next value sent
  std::size_t senders = 1;
  std::size_t receivers = 0;
  spindle::detail::WaiterList waiters;

  std::uint64_t oldest_kept() const noexcept { return tail > slots.size() ? tail - slots.size() : 0; }
  void wake_all_locked() noexcept {
    while (auto* waiter = waiters.pop_front()) waiter->waker.wake();
  }
};
}  // namespace detail

template <class T>
class Receiver {
 public:
  Receiver(std::shared_ptr<detail::Shared<T>> shared, std::uint64_t next) noexcept
      : shared_(std::move(shared)), next_(next) {}
  Receiver(Receiver&& other) noexcept : shared_(std::move(other.shared_)), next_(other.next_) {}
  Receiver& operator=(Receiver&&) = delete;
  Receiver(const Receiver&) = delete;
  ~Receiver() {
    if (!shared_) return;
    std::lock_guard lock(shared_->mutex);
    --shared_->receivers;
  }

  class Awaiter {
   public:
    explicit Awaiter(Receiver& receiver) noexcept : receiver_(&receiver) {}
    Awaiter(Awaiter&& other) noexcept : receiver_(other.receiver_) {}  // until awaited
    Awaiter& operator=(Awaiter&&) = delete;
    ~Awaiter() {
      std::lock_guard lock(receiver_->shared_->mutex);
      receiver_->shared_->waiters.remove(waiter_);
    }
    bool await_ready() noexcept {
      std::lock_guard lock(receiver_->shared_->mutex);
      return receiver_->ready_locked() && spindle::detail::coop_take();  // budget spent: yield first
    }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(receiver_->shared_->mutex);
      if (receiver_->ready_locked()) {
        waiter_.waker.wake();  // ready, but the task has had its turn: requeue it first
        return true;
      }
      receiver_->shared_->waiters.push_back(waiter_);
      return true;
    }
    Result<T, RecvError> await_resume() { return receiver_->take(); }

   private:
    Receiver* receiver_;
    spindle::detail::SyncWaiter waiter_;
  };

  /// The next value, or lagged (with the count missed), or closed once every sender is gone.
  Awaiter recv() noexcept { return Awaiter{*this}; }

  /// What recv() would return, if it would not wait; nullopt if it would (Tokio's try_recv).
  std::optional<Result<T, RecvError>> try_recv() {
    {
      std::lock_guard lock(shared_->mutex);
      if (!ready_locked()) return std::nullopt;
    }
    return take();
  }

  /// For a task that waits on this receiver and on something else at once (a socket): arm() asks for the
  /// suspension `h` to be woken when recv() would not wait, or returns false if it would not wait now;
  /// the Watch's destruction withdraws the request. Whichever wakes the task first wins (task_header.hpp).
  class Watch {
   public:
    explicit Watch(Receiver& receiver) noexcept : receiver_(&receiver) {}
    Watch(Watch&& other) noexcept : receiver_(other.receiver_) {}  // until armed
    Watch& operator=(Watch&&) = delete;
    ~Watch() {
      std::lock_guard lock(receiver_->shared_->mutex);
      receiver_->shared_->waiters.remove(waiter_);
    }
    bool arm(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(receiver_->shared_->mutex);
      if (receiver_->ready_locked()) return false;
      receiver_->shared_->waiters.push_back(waiter_);
      return true;
    }
    /// Wakes the suspension armed for (when arm() found the receiver ready).
    void wake() noexcept { waiter_.waker.wake(); }

   private:
    Receiver* receiver_;
    spindle::detail::SyncWaiter waiter_;
  };

 private:
  bool ready_locked() const noexcept { return next_ < shared_->tail || shared_->senders == 0; }

  Result<T, RecvError> take() {
    std::lock_guard lock(shared_->mutex);
    const std::uint64_t oldest = shared_->oldest_kept();
    if (next_ < oldest) {
      const std::uint64_t skipped = oldest - next_;
      next_ = oldest;
      return Err{RecvError{RecvError::Kind::lagged, skipped}};
    }
    if (next_ < shared_->tail) return T(*shared_->slots[next_++ % shared_->slots.size()]);
    return Err{RecvError{RecvError::Kind::closed, 0}};
  }

  std::shared_ptr<detail::Shared<T>> shared_;
  std::uint64_t next_;
};

/// Sends to every receiver subscribed at the time; copy it for more senders.
template <class T>
class Sender {
 public:
  explicit Sender(std::shared_ptr<detail::Shared<T>> shared) noexcept : shared_(std::move(shared)) {}
  Sender(const Sender& other) : shared_(other.shared_) {
    std::lock_guard lock(shared_->mutex);
    ++shared_->senders;
  }
  Sender& operator=(const Sender&) = delete;
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&&) = delete;
  ~Sender() {
    if (!shared_) return;
    std::lock_guard lock(shared_->mutex);
    if (--shared_->senders == 0) shared_->wake_all_locked();
  }

  /// Queues `value` for every current receiver; returns how many there are, or the value back if none.
  Result<std::size_t, T> send(T value) {
    std::lock_guard lock(shared_->mutex);
    if (shared_->receivers == 0) return Err{std::move(value)};
    shared_->slots[shared_->tail % shared_->slots.size()].emplace(std::move(value));
    ++shared_->tail;
    shared_->wake_all_locked();
    return shared_->receivers;
  }

  /// A new receiver that sees values sent from now on.
  Receiver<T> subscribe() const {
    std::lock_guard lock(shared_->mutex);
    ++shared_->receivers;
    return Receiver<T>{shared_, shared_->tail};
  }

 private:
  std::shared_ptr<detail::Shared<T>> shared_;
};

/// A sender and a first receiver over a ring of `capacity` values (at least 1).
///
///   auto [events, first] = broadcast::channel<std::shared_ptr<const Event>>(1024);
///   auto second = events.subscribe();
///   events.send(std::make_shared<const Event>(...));   // both receivers get it
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  auto shared = std::make_shared<detail::Shared<T>>(capacity == 0 ? 1 : capacity);
  shared->receivers = 1;
  return {Sender<T>{shared}, Receiver<T>{shared, 0}};
}

}  // namespace spindle::broadcast
