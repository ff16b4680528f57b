#pragma once
// JoinSet<T>: spawn many tasks, take their outcomes as they finish, abort the rest on destruction.

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/sync/notify.hpp"

namespace spindle {

/// A set of spawned tasks with results of type T.
///
///   JoinSet<Response> calls;
///   for (auto& backend : backends) calls.spawn(query(backend));
///   while (auto outcome = co_await calls.join_next()) {      // in order of completion
///     if (*outcome) use(outcome->value());
///   }
///   // leaving the scope aborts whatever is still running
///
/// The set belongs to one task (spawn and join_next are not to be called concurrently); the tasks in it
/// may run anywhere.
template <class T>
class JoinSet {
 public:
  JoinSet() : shared_(std::make_shared<Shared>()) {}
  JoinSet(JoinSet&&) noexcept = default;
  JoinSet& operator=(JoinSet&&) noexcept = default;
  JoinSet(const JoinSet&) = delete;
  JoinSet& operator=(const JoinSet&) = delete;
  /// Aborts every task still in the set (asynchronously: each is destroyed at its next turn).
  ~JoinSet() { abort_all(); }

  /// Spawns `task` into the set.
  void spawn(Task<T> task) {
    const std::uint64_t id = next_id_++;
    tasks_.emplace(id, spindle::spawn(detail::with_guard(std::move(task), Reporter{shared_, id})));
  }

  /// The outcome of the next task to finish, or nullopt once the set is empty.
  Task<std::optional<Result<T, JoinError>>> join_next() {
    for (;;) {
      if (tasks_.empty()) co_return std::nullopt;
      std::optional<std::uint64_t> id;
      {
        std::lock_guard lock(shared_->mutex);
        if (!shared_->finished.empty()) {
          id = shared_->finished.front();
          shared_->finished.pop_front();
        }
      }
      if (id) {
        auto node = tasks_.extract(*id);
        co_return co_await std::move(node.mapped());
      }
      co_await shared_->ready.notified();
    }
  }

  /// Aborts every task in the set; join_next() then yields their cancellations.
  void abort_all() noexcept {
    for (auto& [id, handle] : tasks_) handle.abort();
  }
  std::size_t size() const noexcept { return tasks_.size(); }
  bool empty() const noexcept { return tasks_.empty(); }

 private:
  struct Shared {
    std::mutex mutex;
    std::deque<std::uint64_t> finished;
    Notify ready;
  };

  // Reports the id when the task ends, however it ends (run under detail::with_guard).
  struct Reporter {
    std::shared_ptr<Shared> shared;
    std::uint64_t id;
    Reporter(std::shared_ptr<Shared> s, std::uint64_t i) noexcept : shared(std::move(s)), id(i) {}
    Reporter(Reporter&&) noexcept = default;
    ~Reporter() {
      if (!shared) return;
      {
        std::lock_guard lock(shared->mutex);
        shared->finished.push_back(id);
      }
      shared->ready.notify_one();
    }
  };

  std::shared_ptr<Shared> shared_;
  std::unordered_map<std::uint64_t, JoinHandle<T>> tasks_;
  std::uint64_t next_id_ = 0;
};

}  // namespace spindle
