#include "spindle/sync/cancellation_token.hpp"

#include <algorithm>

namespace spindle {

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

void CancellationToken::cancel() const { cancel_state(state_); }

void CancellationToken::cancel_state(const std::shared_ptr<State>& state) {
  std::vector<std::shared_ptr<State>> children;
  {
    std::lock_guard lock(state->mutex);
    if (state->cancelled) return;
    state->cancelled = true;
    while (auto* waiter = state->waiters.pop_front()) waiter->waker.wake();
    children.swap(state->children);
  }
  // Outside the parent's lock: a child's lock is never taken while holding its parent's, in any path.
  for (const auto& child : children) cancel_state(child);
}

bool CancellationToken::is_cancelled() const {
  std::lock_guard lock(state_->mutex);
  return state_->cancelled;
}

// Forgets, through the whole subtree, the states that no token holds any more and that have no children
// left, so a long-lived parent's list does not grow without bound. Lock order: parent, then child
// (cancel never holds a parent's lock while taking a child's).
void CancellationToken::prune_locked(State& state) {
  std::erase_if(state.children, [](const std::shared_ptr<State>& child) {
    std::lock_guard child_lock(child->mutex);
    prune_locked(*child);
    return child.use_count() == 1 && child->children.empty();
  });
}

CancellationToken CancellationToken::child_token() const {
  auto child = std::make_shared<State>();
  std::lock_guard lock(state_->mutex);
  if (state_->cancelled) {
    child->cancelled = true;
  } else {
    if (state_->children.size() >= state_->prune_at) {
      prune_locked(*state_);
      state_->prune_at = std::max<std::size_t>(8, 2 * state_->children.size());
    }
    state_->children.push_back(child);
  }
  return CancellationToken{std::move(child)};
}

CancellationToken::Awaiter::~Awaiter() {
  std::lock_guard lock(state_->mutex);
  state_->waiters.remove(waiter_);
}

bool CancellationToken::Awaiter::await_ready() const {
  std::lock_guard lock(state_->mutex);
  return state_->cancelled;
}

bool CancellationToken::Awaiter::await_suspend(std::coroutine_handle<> h) {
  waiter_.waker = detail::make_waker(h);
  std::lock_guard lock(state_->mutex);
  if (state_->cancelled) return false;
  state_->waiters.push_back(waiter_);
  return true;
}

}  // namespace spindle
