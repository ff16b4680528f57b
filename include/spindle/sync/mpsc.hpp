#pragma once
// mpsc: a queue from many sending tasks to one receiving task. Bounded channels apply backpressure
// (a send waits while the queue is full); unbounded ones never wait, and trust the sender.

#include <coroutine>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/sync/detail/waiter_list.hpp"
#include "spindle/sync/semaphore.hpp"

namespace spindle::mpsc {

/// A send's error: the receiver is gone; the value comes back.
template <class T>
struct SendError {
  T value;
};

/// try_send's error: full (bounded only) or closed; the value comes back either way.
template <class T>
struct TrySendError {
  enum class Reason { full, closed } reason;
  T value;
};

namespace detail {

template <class T>
struct Channel {
  explicit Channel(std::optional<std::size_t> bound) : capacity(bound.value_or(0)), bounded(bound.has_value()) {}

  std::mutex mutex;
  std::deque<T> queue;
  std::size_t senders = 1;
  bool receiver_gone = false;
  spindle::detail::SyncWaiter* receiver = nullptr;  // while it waits
  Semaphore capacity;                               // free slots; used when bounded
  const bool bounded;

  void push_locked(T value) {
    queue.push_back(std::move(value));
    if (receiver != nullptr) std::exchange(receiver, nullptr)->waker.wake();
  }
  void add_sender() {
    std::lock_guard lock(mutex);
    ++senders;
  }
  void drop_sender() noexcept {
    std::lock_guard lock(mutex);
    if (--senders == 0 && receiver != nullptr) std::exchange(receiver, nullptr)->waker.wake();
  }
  // Pops the next value and, for a bounded channel, frees its slot.
  std::optional<T> take() {
    std::optional<T> value;
    {
      std::lock_guard lock(mutex);
      if (queue.empty()) return std::nullopt;
      value.emplace(std::move(queue.front()));
      queue.pop_front();
    }
    if (bounded) capacity.release(1);
    return value;
  }
};

template <class T>
class SenderBase {
 public:
  SenderBase(const SenderBase& other) : channel_(other.channel_) { channel_->add_sender(); }
  SenderBase& operator=(const SenderBase& other) {
    if (this != &other) {
      drop();
      channel_ = other.channel_;
      channel_->add_sender();
    }
    return *this;
  }
  SenderBase(SenderBase&&) noexcept = default;
  SenderBase& operator=(SenderBase&& other) noexcept {
    if (this != &other) {
      drop();
      channel_ = std::move(other.channel_);
    }
    return *this;
  }
  ~SenderBase() { drop(); }

  /// True once the receiver is gone.
  bool is_closed() const {
    std::lock_guard lock(channel_->mutex);
    return channel_->receiver_gone;
  }

 protected:
  explicit SenderBase(std::shared_ptr<Channel<T>> channel) noexcept : channel_(std::move(channel)) {}
  void drop() noexcept {
    if (channel_) channel_->drop_sender();
    channel_.reset();
  }
  std::shared_ptr<Channel<T>> channel_;
};

}  // namespace detail

/// The sending side of a bounded channel; copy it for more senders.
template <class T>
class Sender : public detail::SenderBase<T> {
 public:
  explicit Sender(std::shared_ptr<detail::Channel<T>> channel) noexcept : detail::SenderBase<T>(std::move(channel)) {}

  /// Waits for a free slot, then queues `value`; fails (giving it back) once the receiver is gone.
  /// Cancellation-safe: cancelled while waiting, nothing is sent and the value is dropped with the task.
  /// The returned task holds a sender of its own, so it may outlive this one (and the receiver does not
  /// see the end of the stream while a send is still on its way).
  Task<Result<void, SendError<T>>> send(T value) const { return send_as(Sender{*this}, std::move(value)); }

  /// Queues `value` if there is a free slot now.
  Result<void, TrySendError<T>> try_send(T value) {
    auto& channel = *this->channel_;
    auto slot = channel.capacity.try_acquire();
    std::lock_guard lock(channel.mutex);
    if (channel.receiver_gone) return Err{TrySendError<T>{TrySendError<T>::Reason::closed, std::move(value)}};
    if (!slot) return Err{TrySendError<T>{TrySendError<T>::Reason::full, std::move(value)}};
    slot->forget();
    channel.push_locked(std::move(value));
    return {};
  }

 private:
  static Task<Result<void, SendError<T>>> send_as(Sender self, T value) {
    auto& channel = *self.channel_;
    auto slot = co_await channel.capacity.acquire();
    if (!slot) co_return Err{SendError<T>{std::move(value)}};
    std::lock_guard lock(channel.mutex);
    if (channel.receiver_gone) co_return Err{SendError<T>{std::move(value)}};
    slot->forget();  // the slot travels with the value; the receiver frees it
    channel.push_locked(std::move(value));
    co_return Result<void, SendError<T>>{};
  }
};

/// The sending side of an unbounded channel: send() never waits.
template <class T>
class UnboundedSender : public detail::SenderBase<T> {
 public:
  explicit UnboundedSender(std::shared_ptr<detail::Channel<T>> channel) noexcept
      : detail::SenderBase<T>(std::move(channel)) {}

  Result<void, SendError<T>> send(T value) {
    auto& channel = *this->channel_;
    std::lock_guard lock(channel.mutex);
    if (channel.receiver_gone) return Err{SendError<T>{std::move(value)}};
    channel.push_locked(std::move(value));
    return {};
  }
};

/// The receiving side: recv() yields the next value, or nullopt once every sender is gone and the queue
/// is drained. Dropping it closes the channel: waiting and later sends fail, queued values are dropped.
template <class T>
class Receiver {
 public:
  explicit Receiver(std::shared_ptr<detail::Channel<T>> channel) noexcept : channel_(std::move(channel)) {}
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&&) = delete;  // would drop the old channel's receiver without closing it
  ~Receiver() {
    if (!channel_) return;
    std::deque<T> dropped;  // destroyed outside the lock: a value's destructor may use the channel
    {
      std::lock_guard lock(channel_->mutex);
      channel_->receiver_gone = true;
      dropped.swap(channel_->queue);
    }
    channel_->capacity.close();
  }

  class Awaiter {
   public:
    explicit Awaiter(detail::Channel<T>& channel) noexcept : channel_(&channel) {}
    Awaiter(Awaiter&& other) noexcept : channel_(other.channel_) {}  // until awaited
    Awaiter& operator=(Awaiter&&) = delete;
    ~Awaiter() {
      std::lock_guard lock(channel_->mutex);
      if (channel_->receiver == &waiter_) channel_->receiver = nullptr;
    }
    bool await_ready() noexcept {
      std::lock_guard lock(channel_->mutex);
      return ready_locked() && spindle::detail::coop_take();  // budget spent: yield in await_suspend
    }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(channel_->mutex);
      if (ready_locked()) {
        waiter_.waker.wake();  // a value is there, but the task has had its turn: requeue it first
        return true;
      }
      channel_->receiver = &waiter_;
      return true;
    }
    /// Cancellation-safe: a value is taken from the queue only here, when the receiver resumes.
    std::optional<T> await_resume() { return channel_->take(); }

   private:
    bool ready_locked() const noexcept { return !channel_->queue.empty() || channel_->senders == 0; }
    detail::Channel<T>* channel_;
    spindle::detail::SyncWaiter waiter_;
  };

  Awaiter recv() noexcept { return Awaiter{*channel_}; }
  /// The next value if one is queued now.
  std::optional<T> try_recv() { return channel_->take(); }

 private:
  std::shared_ptr<detail::Channel<T>> channel_;
};

/// A bounded channel holding at most `capacity` queued values (capacity >= 1).
///
///   auto [tx, rx] = mpsc::channel<Job>(128);
///   spawn(produce(tx)).detach();                      // co_await tx.send(job) waits while 128 are queued
///   while (std::optional<Job> job = co_await rx.recv()) run(*job);
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(std::size_t capacity) {
  auto shared = std::make_shared<detail::Channel<T>>(capacity == 0 ? 1 : capacity);
  return {Sender<T>{shared}, Receiver<T>{shared}};
}

/// An unbounded channel: sends never wait (memory is the only limit: prefer bounded ones).
template <class T>
std::pair<UnboundedSender<T>, Receiver<T>> unbounded_channel() {
  auto shared = std::make_shared<detail::Channel<T>>(std::nullopt);
  return {UnboundedSender<T>{shared}, Receiver<T>{shared}};
}

}  // namespace spindle::mpsc
