#include "spindle/sync/cancellation_token.hpp"

#include <algorithm>

namespace spindle {

CancellationToken::CancellationToken() : state_(std::make_shared<State>()) {}

void CancellationToken::cancel() const { cancel_state(state_); }

void CancellationToken::cancel_state(const std::shared_ptr<State>& state) {
  std::vector<std::weak_ptr<State>> children;
  {
    std::lock_guard lock(state->mutex);
    if (state->cancelled) return;
    state->cancelled = true;
    while (auto* waiter = state->waiters.pop_front()) waiter->waker.wake();
    children.swap(state->children);
  }
  // Outside the parent's lock: a child's lock is never taken while holding its parent's, in any path.
  for (const auto& weak : children)
    if (auto child = weak.lock()) cancel_state(child);
}

bool CancellationToken::is_cancelled() const {
  std::lock_guard lock(state_->mutex);
  return state_->cancelled;
}

CancellationToken CancellationToken::child_token() const {
  auto child = std::make_shared<State>();
  std::lock_guard lock(state_->mutex);
  if (state_->cancelled) {
    child->cancelled = true;
  } else {
    // Forget children that are gone, so a long-lived parent's list does not grow without bound.
    std::erase_if(state_->children, [](const std::weak_ptr<State>& weak) { return weak.expired(); });
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
