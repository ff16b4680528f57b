#pragma once
// CancellationToken: a flag a task can wait on, for cooperative shutdown. Tokens form a tree: cancelling
// one cancels its children (made with child_token()), never its parent.

#include <coroutine>
#include <memory>
#include <mutex>
#include <vector>

#include "spindle/sync/detail/waiter_list.hpp"

namespace spindle {

/// Copies share the same state.
///
///   CancellationToken shutdown;
///   spawn(serve(listener, shutdown.child_token())).detach();
///   co_await ctrl_c();
///   shutdown.cancel();                            // every child's cancelled() completes
///
///   // in serve():  co_await token.cancelled();  or  if (token.is_cancelled()) break;
class CancellationToken {
  struct State {
    std::mutex mutex;
    bool cancelled = false;
    detail::WaiterList waiters;
    // Strong references: a child token's state must outlive the child token itself while it has
    // children of its own, or cancelling the parent would not reach them.
    std::vector<std::shared_ptr<State>> children;
    std::size_t prune_at = 8;  // prune the subtree when this many children are listed (amortised O(1))
  };
  static void prune_locked(State& state);

 public:
  CancellationToken();

  /// Cancels this token and every token below it. Idempotent; thread-safe.
  void cancel() const;
  bool is_cancelled() const;
  /// A token cancelled when this one is (or at once, if it already is), and on its own.
  CancellationToken child_token() const;

  class Awaiter {
   public:
    explicit Awaiter(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
    Awaiter(Awaiter&& other) noexcept : state_(other.state_) {}  // until awaited
    Awaiter& operator=(Awaiter&&) = delete;
    ~Awaiter();
    bool await_ready() const;
    bool await_suspend(std::coroutine_handle<> h);
    void await_resume() const noexcept {}

   private:
    std::shared_ptr<State> state_;
    detail::SyncWaiter waiter_;
  };
  /// Completes once the token is cancelled.
  Awaiter cancelled() const noexcept { return Awaiter{state_}; }

 private:
  explicit CancellationToken(std::shared_ptr<State> state) noexcept : state_(std::move(state)) {}
  static void cancel_state(const std::shared_ptr<State>& state);

  std::shared_ptr<State> state_;
};

}  // namespace spindle
