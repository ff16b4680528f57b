#pragma once
// Semaphore: a count of permits that tasks wait for, fairly (first come, first served: a large request
// at the head is not overtaken by smaller ones behind it, so it cannot starve). Tokio's Semaphore.

#include <coroutine>
#include <cstddef>
#include <mutex>
#include <optional>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle {

/// The error of acquiring from a closed semaphore.
struct SemaphoreClosed {};

/// Limits how many tasks do something at once.
///
///   Semaphore connections{100};
///   auto permit = co_await connections.acquire();   // Result<Semaphore::Permit, SemaphoreClosed>
///   if (!permit) co_return;                          // closed
///   ... at most 100 tasks are here; the permit goes back when `permit` is destroyed
class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) noexcept : permits_(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Permits held; given back on destruction unless forgotten.
  class [[nodiscard]] Permit {
   public:
    Permit() noexcept = default;
    Permit(Semaphore& semaphore, std::size_t count) noexcept : semaphore_(&semaphore), count_(count) {}
    Permit(Permit&& other) noexcept
        : semaphore_(std::exchange(other.semaphore_, nullptr)), count_(std::exchange(other.count_, 0)) {}
    Permit& operator=(Permit&& other) noexcept {
      if (this != &other) {
        reset();
        semaphore_ = std::exchange(other.semaphore_, nullptr);
        count_ = std::exchange(other.count_, 0);
      }
      return *this;
    }
    ~Permit() { reset(); }
    std::size_t count() const noexcept { return count_; }
    /// Keeps the permits taken for good (they do not come back).
    void forget() noexcept {
      semaphore_ = nullptr;
      count_ = 0;
    }

   private:
    void reset() noexcept {
      if (semaphore_ != nullptr && count_ > 0) semaphore_->release(count_);
      semaphore_ = nullptr;
      count_ = 0;
    }
    Semaphore* semaphore_ = nullptr;
    std::size_t count_ = 0;
  };

  class Awaiter {
   public:
    Awaiter(Semaphore& semaphore, std::size_t count) noexcept : semaphore_(&semaphore) { waiter_.needed = count; }
    /// Movable until awaited (timeout() moves it into its own coroutine).
    Awaiter(Awaiter&& other) noexcept : semaphore_(other.semaphore_) { waiter_.needed = other.waiter_.needed; }
    Awaiter& operator=(Awaiter&&) = delete;
    /// Cancellation-safe: a waiter dropped after being granted its permits gives them back.
    ~Awaiter();

    bool await_ready() noexcept;
    bool await_suspend(std::coroutine_handle<> h);
    Result<Permit, SemaphoreClosed> await_resume() noexcept;

   private:
    friend class Semaphore;
    struct Waiter : detail::SyncWaiter {
      std::size_t needed = 1;
    };
    Semaphore* semaphore_;
    Waiter waiter_;
    bool resumed_ = false;
  };

  /// Waits for `count` permits (FIFO among waiters), or fails once the semaphore is closed.
  Awaiter acquire(std::size_t count = 1) noexcept { return Awaiter{*this, count}; }
  /// Takes `count` permits if they are free now and nobody waits ahead.
  std::optional<Permit> try_acquire(std::size_t count = 1) noexcept;
  /// Adds permits (also how a Permit gives its own back), waking waiters in order.
  void release(std::size_t count) noexcept;
  /// Fails every waiting and future acquire; permits already held stay valid.
  void close() noexcept;
  bool is_closed() const noexcept;
  std::size_t available() const noexcept;

 private:
  bool can_take_locked(std::size_t count) const noexcept { return waiters_.empty() && permits_ >= count; }
  void grant_waiters_locked() noexcept;

  mutable std::mutex mutex_;
  detail::WaiterList waiters_;
  std::size_t permits_;
  bool closed_ = false;
};

}  // namespace spindle
