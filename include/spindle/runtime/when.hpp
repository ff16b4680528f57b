#pragma once
// when_all and when_any: run tasks concurrently and wait for all of them, or for the first.
//
// Each task is spawned as a task of its own (a Spindle task has one resume point, so concurrent
// operations inside one task would need their own wake-up bookkeeping; a spawn costs about 50 ns).
// If the awaiting task is cancelled, the tasks it started are aborted. Aborting is asynchronous: an
// aborted task is destroyed at its next turn, without running any further.

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

#include "spindle/runtime/join_set.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

namespace detail {

/// void results become std::monostate, so every result fits in a tuple or a variant.
template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
Task<value_or_monostate_t<T>> monostate_if_void(Task<T> task) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(task);
    co_return std::monostate{};
  } else {
    co_return co_await std::move(task);
  }
}

/// Aborts the handles it holds when destroyed (the awaiting task was cancelled, or threw).
template <class T>
struct AbortOnDrop {
  std::vector<JoinHandle<T>> handles;
  ~AbortOnDrop() {
    for (auto& handle : handles) handle.abort();
  }
};

template <class T>
value_or_monostate_t<T> value_or_rethrow(Result<value_or_monostate_t<T>, JoinError> outcome) {
  if (!outcome) {
    if (outcome.error().is_cancelled()) throw std::logic_error("spindle: a task awaited by when_* was cancelled");
    std::rethrow_exception(outcome.error().exception);
  }
  return std::move(outcome).value();
}

// Awaits the handles of a tuple one after another (no co_await inside an initializer list or a fold:
// GCC 12 miscompiles some of those).
template <std::size_t I, class Handles, class Outcomes>
Task<void> await_each(Handles& handles, Outcomes& outcomes) {
  if constexpr (I < std::tuple_size_v<Handles>) {
    auto outcome = co_await std::move(std::get<I>(handles));
    std::get<I>(outcomes).emplace(std::move(outcome));
    co_await await_each<I + 1>(handles, outcomes);
  }
  co_return;
}

}  // namespace detail

/// Runs all the tasks concurrently; their results, in order, once all have finished. If any threw, the
/// first exception (in argument order) is rethrown after all have finished.
///
///   auto [user, orders] = co_await when_all(load_user(id), load_orders(id));
template <class... Ts>
Task<std::tuple<detail::value_or_monostate_t<Ts>...>> when_all(Task<Ts>... tasks) {
  auto handles = std::make_tuple(spawn(detail::monostate_if_void(std::move(tasks)))...);
  struct AbortAll {  // the awaiting task was cancelled: stop the children too
    decltype(handles)& held;
    ~AbortAll() {
      std::apply([](auto&... handle) { (handle.abort(), ...); }, held);
    }
  } abort_all{handles};
  std::tuple<std::optional<Result<detail::value_or_monostate_t<Ts>, JoinError>>...> outcomes;
  co_await detail::await_each<0>(handles, outcomes);
  co_return std::apply(
      [](auto&... outcome) {
        return std::tuple<detail::value_or_monostate_t<Ts>...>{detail::value_or_rethrow<Ts>(std::move(*outcome))...};
      },
      outcomes);
}

/// when_all over a vector of tasks of one type.
template <class T>
Task<std::vector<detail::value_or_monostate_t<T>>> when_all(std::vector<Task<T>> tasks) {
  detail::AbortOnDrop<detail::value_or_monostate_t<T>> running;
  for (auto& task : tasks) running.handles.push_back(spawn(detail::monostate_if_void(std::move(task))));
  std::vector<Result<detail::value_or_monostate_t<T>, JoinError>> outcomes;
  for (auto& handle : running.handles) {
    auto outcome = co_await std::move(handle);
    outcomes.push_back(std::move(outcome));
  }
  std::vector<detail::value_or_monostate_t<T>> values;
  for (auto& outcome : outcomes) values.push_back(detail::value_or_rethrow<T>(std::move(outcome)));
  co_return values;
}

/// Runs the tasks concurrently until the first finishes: its index and value (its exception is
/// rethrown). The others are aborted, and gone by the time it returns.
///
///   auto [index, reply] = co_await when_any(std::move(replicas));   // fastest replica wins
template <class T>
Task<std::pair<std::size_t, detail::value_or_monostate_t<T>>> when_any(std::vector<Task<T>> tasks) {
  using Value = detail::value_or_monostate_t<T>;
  using Indexed = std::pair<std::size_t, Value>;
  if (tasks.empty()) throw std::invalid_argument("spindle::when_any needs at least one task");
  JoinSet<Indexed> racing;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    racing.spawn([](Task<T> task, std::size_t index) -> Task<Indexed> {
      Value value = co_await detail::monostate_if_void(std::move(task));
      co_return Indexed{index, std::move(value)};
    }(std::move(tasks[i]), i));
  }
  auto first = co_await racing.join_next();
  // Abort the others and wait until they are gone: each is destroyed (its pending socket operation
  // withdrawn, its buffers released) before the caller continues, so nothing of theirs outlives this.
  racing.abort_all();
  while (co_await racing.join_next()) {
  }
  co_return detail::value_or_rethrow<Indexed>(std::move(*first));
}

/// when_any over tasks of different types: the winner's value in a variant whose index is the winner's.
/// The losers are aborted and gone before it returns. An operation that had already finished in a loser
/// is lost with it (a read's bytes, say): race operations that are safe to cancel, as with Tokio's select!.
///
///   auto winner = co_await select(next_job(queue), shutdown_requested(token));
///   if (winner.index() == 1) co_return;
template <class... Ts>
Task<std::variant<detail::value_or_monostate_t<Ts>...>> select(Task<Ts>... tasks) {
  using Variant = std::variant<detail::value_or_monostate_t<Ts>...>;
  std::vector<Task<Variant>> as_variants;
  [&]<std::size_t... I>(std::index_sequence<I...>) {
    (as_variants.push_back([](Task<Ts> task) -> Task<Variant> {
      auto value = co_await detail::monostate_if_void(std::move(task));
      co_return Variant{std::in_place_index<I>, std::move(value)};
    }(std::move(tasks))),
     ...);
  }
  (std::index_sequence_for<Ts...>{});
  std::pair<std::size_t, Variant> winner = co_await when_any(std::move(as_variants));
  co_return std::move(winner.second);
}

}  // namespace spindle
