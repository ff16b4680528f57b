#pragma once
// oneshot: a channel for exactly one value, from one task to another (a reply to a request).

#include <coroutine>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle::oneshot {

/// The receiver's error: the sender was dropped without sending.
struct SenderDropped {};

namespace detail {
template <class T>
struct Shared {
  std::mutex mutex;
  std::optional<T> value;
  bool sender_gone = false;
  bool receiver_gone = false;
  spindle::detail::SyncWaiter* waiter = nullptr;  // the receiver, while it waits

  void wake_receiver_locked() noexcept {
    if (waiter != nullptr) std::exchange(waiter, nullptr)->waker.wake();
  }
};
}  // namespace detail

/// Sends the value. Dropping it unsent tells the receiver (SenderDropped).
template <class T>
class Sender {
 public:
  explicit Sender(std::shared_ptr<detail::Shared<T>> shared) noexcept : shared_(std::move(shared)) {}
  Sender(Sender&&) noexcept = default;
  Sender& operator=(Sender&& other) noexcept {
    if (this != &other) {
      drop();
      shared_ = std::move(other.shared_);
    }
    return *this;
  }
  ~Sender() { drop(); }

  /// Delivers `value`; if the receiver is gone, hands it back as the error.
  Result<void, T> send(T value) && {
    auto shared = std::move(shared_);
    std::lock_guard lock(shared->mutex);
    shared->sender_gone = true;
    if (shared->receiver_gone) return Err{std::move(value)};
    shared->value.emplace(std::move(value));
    shared->wake_receiver_locked();
    return {};
  }
  /// True once the receiver was dropped (nobody will read a value).
  bool is_closed() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->receiver_gone;
  }

 private:
  void drop() noexcept {
    if (!shared_) return;
    std::lock_guard lock(shared_->mutex);
    shared_->sender_gone = true;
    shared_->wake_receiver_locked();
    shared_.reset();
  }
  std::shared_ptr<detail::Shared<T>> shared_;
};

/// Awaiting it yields the value, or SenderDropped.
template <class T>
class Receiver {
 public:
  explicit Receiver(std::shared_ptr<detail::Shared<T>> shared) noexcept : shared_(std::move(shared)) {}
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&&) = delete;  // would drop the old channel's receiver without telling it
  ~Receiver() {
    if (!shared_) return;
    std::lock_guard lock(shared_->mutex);
    shared_->receiver_gone = true;
  }

  class Awaiter {
   public:
    explicit Awaiter(detail::Shared<T>& shared) noexcept : shared_(&shared) {}
    Awaiter(Awaiter&& other) noexcept : shared_(other.shared_) {}  // until awaited
    Awaiter& operator=(Awaiter&&) = delete;
    ~Awaiter() {
      std::lock_guard lock(shared_->mutex);
      if (shared_->waiter == &waiter_) shared_->waiter = nullptr;
    }
    bool await_ready() noexcept {
      std::lock_guard lock(shared_->mutex);
      return shared_->value || shared_->sender_gone;
    }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(shared_->mutex);
      if (shared_->value || shared_->sender_gone) return false;
      shared_->waiter = &waiter_;
      return true;
    }
    Result<T, SenderDropped> await_resume() {
      std::lock_guard lock(shared_->mutex);
      if (!shared_->value) return Err{SenderDropped{}};
      T value = std::move(*shared_->value);
      shared_->value.reset();
      return value;
    }

   private:
    detail::Shared<T>* shared_;
    spindle::detail::SyncWaiter waiter_;
  };

  Awaiter operator co_await() noexcept { return Awaiter{*shared_}; }

 private:
  std::shared_ptr<detail::Shared<T>> shared_;
};

/// A connected pair.
///
///   auto [reply_to, reply] = oneshot::channel<int>();
///   spawn(work(std::move(reply_to))).detach();       // work() calls std::move(reply_to).send(42)
///   Result<int, oneshot::SenderDropped> answer = co_await reply;
template <class T>
std::pair<Sender<T>, Receiver<T>> channel() {
  auto shared = std::make_shared<detail::Shared<T>>();
  return {Sender<T>{shared}, Receiver<T>{shared}};
}

}  // namespace spindle::oneshot
