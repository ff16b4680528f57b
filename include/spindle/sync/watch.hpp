#pragma once
// watch: one value that changes over time; receivers see the latest one (configuration, state, a
// shutdown flag). Intermediate values may be skipped: a receiver wakes once per change it has not seen.

#include <coroutine>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle::watch {

namespace detail {
template <class T>
struct Shared {
  explicit Shared(T initial) : value(std::move(initial)) {}
  std::mutex mutex;
  T value;
  std::uint64_t version = 0;
  bool sender_gone = false;
  spindle::detail::WaiterList waiters;

  void wake_all_locked() noexcept {
    while (auto* waiter = waiters.pop_front()) waiter->waker.wake();
  }
};
}  // namespace detail

template <class T>
class Receiver;

/// Publishes new values. Dropping it ends the receivers' changed() with false.
template <class T>
class Sender {
 public:
  explicit Sender(std::shared_ptr<detail::Shared<T>> shared) noexcept : shared_(std::move(shared)) {}
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&&) = delete;  // would drop the old channel's sender without telling receivers
  ~Sender() {
    if (!shared_) return;
    std::lock_guard lock(shared_->mutex);
    shared_->sender_gone = true;
    shared_->wake_all_locked();
  }

  /// Replaces the value and wakes every receiver.
  void send(T value) {
    std::lock_guard lock(shared_->mutex);
    shared_->value = std::move(value);
    ++shared_->version;
    shared_->wake_all_locked();
  }
  /// Modifies the value in place and wakes every receiver.
  template <class F>
  void send_modify(F&& modify) {
    std::lock_guard lock(shared_->mutex);
    std::forward<F>(modify)(shared_->value);
    ++shared_->version;
    shared_->wake_all_locked();
  }
  Receiver<T> subscribe() const;

 private:
  std::shared_ptr<detail::Shared<T>> shared_;
};

/// Reads the latest value; changed() waits for a newer one. Copy it for more receivers.
template <class T>
class Receiver {
 public:
  explicit Receiver(std::shared_ptr<detail::Shared<T>> shared) : shared_(std::move(shared)) {
    std::lock_guard lock(shared_->mutex);
    seen_ = shared_->version;
  }

  /// A copy of the current value, which marks it seen.
  T borrow_and_update() {
    std::lock_guard lock(shared_->mutex);
    seen_ = shared_->version;
    return shared_->value;
  }
  /// A copy of the current value, leaving it unseen.
  T borrow() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->value;
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
      return ready_locked();
    }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(receiver_->shared_->mutex);
      if (ready_locked()) return false;
      receiver_->shared_->waiters.push_back(waiter_);
      return true;
    }
    /// True: a newer value is there (now marked seen); false: the sender is gone.
    bool await_resume() noexcept {
      std::lock_guard lock(receiver_->shared_->mutex);
      if (receiver_->seen_ != receiver_->shared_->version) {
        receiver_->seen_ = receiver_->shared_->version;
        return true;
      }
      return false;
    }

   private:
    bool ready_locked() const noexcept {
      return receiver_->seen_ != receiver_->shared_->version || receiver_->shared_->sender_gone;
    }
    Receiver* receiver_;
    spindle::detail::SyncWaiter waiter_;
  };

  /// Waits until the value changes from the last one seen; false once the sender is gone.
  Awaiter changed() noexcept { return Awaiter{*this}; }

 private:
  std::shared_ptr<detail::Shared<T>> shared_;
  std::uint64_t seen_ = 0;
};

template <class T>
Receiver<T> Sender<T>::subscribe() const {
  return Receiver<T>{shared_};
}

/// A sender and a first receiver, starting from `initial`.
///
///   auto [publish, config] = watch::channel<Config>(load());
///   while (co_await config.changed()) apply(config.borrow_and_update());
template <class T>
std::pair<Sender<T>, Receiver<T>> channel(T initial) {
  auto shared = std::make_shared<detail::Shared<T>>(std::move(initial));
  return {Sender<T>{shared}, Receiver<T>{shared}};
}

}  // namespace spindle::watch
