#pragma once
// A connection's state, shared by its handle (Connection, a pool slot, a Listener), the tasks whose
// queries are in flight on it, and its reader task. Private to src/pg/.
//
// Who does what. A task that runs a query sends it itself: under the session's mutex it prepares the
// statement if this connection has not yet, queues it with a Sync (libpq's pipeline mode) and lets libpq
// flush, then waits for its Request to complete. One reader task per connection waits for the socket to
// become readable, reads (PQconsumeInput) and hands each result to the Request at the front of the
// in-flight queue, waking its task. So a query costs its task two switches and no thread, and any number
// of tasks can have queries in flight on one connection. A flush task per connection waits for room when
// the socket is full (rare: large parameters, or a burst of calls).
//
// libpq is not thread-safe per connection: every call on the PGconn happens under `mutex`.

#include <libpq-fe.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/pg/connection.hpp"
#include "spindle/pg/detail/codec.hpp"
#include "spindle/pg/listener.hpp"
#include "spindle/runtime/detail/reactor.hpp"
#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/sync/notify.hpp"

namespace spindle::pg::detail {

/// One call in flight: a query, or a script (simple query protocol).
struct Request {
  enum class Phase { queued, prepare, query, sync, script, done };

  Statement statement;  // or, for a script, its text (in statement.sql())
  bool is_script = false;
  /// A query of an explicit batch that is not the batch's last: no Sync of its own.
  bool sync_after = true;
  /// The request that ends this one's Sync group (its batch's last, or itself): what its caller awaits.
  const Request* group = this;
  Phase phase = Phase::queued;
  /// It created its statement's cache entry, to confirm or erase when its Parse is answered.
  bool created_statement = false;

  // Guarded by the session's mutex until `done`, then owned by the waiting task.
  ResultPtr result;
  std::unique_ptr<db::Error> error;  // boxed: a waiting request's size matters (bench/db)
  spindle::detail::Waker waker;
  std::atomic<bool> done{false};
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  /// Prepared statements kept per connection at most.
  static constexpr std::size_t kMaxPreparedStatements = 1024;

  /// Takes a PGconn that is connected (CONNECTION_OK) and not yet in pipeline mode; starts its reader
  /// and flush tasks on the current runtime.
  static Result<std::shared_ptr<Session>, db::Error> start(PGconn* connection);
  ~Session();

  /// Sends `request` (or queues it behind a script or a cancel); completes it at once if the
  /// connection is gone.
  void submit(const std::shared_ptr<Request>& request);
  /// The same for a batch's requests, with one flush.
  void submit(const std::vector<std::shared_ptr<Request>>& requests);
  /// Waits for a submitted request's completion; destroying the awaiter abandons the request.
  class Completion;
  /// A completed request's (or batch's) outcome, moved out of it.
  static Result<QueryResult, db::Error> outcome_of(Request& request);
  static Result<BatchResults, db::Error> outcome_of(std::vector<std::shared_ptr<Request>>& requests);
  static Task<Result<QueryResult, db::Error>> finish(std::shared_ptr<Session> self, std::shared_ptr<Request> request);
  static Task<Result<BatchResults, db::Error>> finish_batch(std::shared_ptr<Session> self,
                                                            std::vector<std::shared_ptr<Request>> requests);

  /// A request for a statement, and those of a batch (one Sync, after the last).
  static std::shared_ptr<Request> request_for(Statement statement);
  static std::vector<std::shared_ptr<Request>> requests_for(Batch batch);

  /// submit + finish.
  static Task<Result<QueryResult, db::Error>> run(std::shared_ptr<Session> self, Statement statement);
  static Task<Result<void, db::Error>> run_script(std::shared_ptr<Session> self, std::string script);
  static Task<Result<BatchResults, db::Error>> run_batch(std::shared_ptr<Session> self, Batch batch);
  /// Sends a statement whose outcome nobody waits for (the ROLLBACK of a transaction dropped unfinished).
  void run_detached(std::string_view sql);

  /// Closes the connection: in-flight calls fail with Kind::connection, the session's tasks end.
  void close();
  bool is_usable() const noexcept { return !broken_.load(std::memory_order_acquire); }
  std::size_t in_flight() const noexcept { return in_flight_count_.load(std::memory_order_relaxed); }
  int server_version() const noexcept { return server_version_; }

  /// Exclusive: one task at a time uses the connection (a transaction, an exclusive pool lease, a plain
  /// Connection), so a call that times out may cancel its query on the server, when it is the only
  /// query in flight. Shared connections never cancel: the query running might be another task's.
  void set_exclusive(bool exclusive) noexcept { exclusive_.store(exclusive, std::memory_order_relaxed); }

  /// Notifications (for a Listener): LISTENs run on this session deliver here.
  static Task<Result<Notification, db::Error>> next_notification(std::shared_ptr<Session> self);

 private:
  explicit Session(PGconn* connection);
  static Task<void> read_loop(std::shared_ptr<Session> self);
  static Task<void> flush_loop(std::shared_ptr<Session> self);

  // All below: with mutex_ held.
  void submit_locked(const std::shared_ptr<Request>& request);
  void send_locked(Request& request);
  void after_send_locked();
  void process_input_locked();
  void drain_results_locked();
  void complete_locked(Request& request);
  void fail_all_locked(const db::Error& error);
  void abandon_locked(Request& request);
  void send_pending_locked();
  bool tls_bytes_pending_locked() const;
  db::Error connection_error_locked(std::string_view what) const;

  struct Prepared {
    std::string name;
    const Request* creator;  // the Sync group whose Parse creates it
    bool confirmed;          // its Parse succeeded: any later call may use it
  };

  mutable std::mutex mutex_;
  PGconn* connection_;
  // A duplicate of libpq's socket, which the reactor watches: libpq closes its own fd when the connection
  // fails, and a registration must never outlive its fd (the number could be reused by another socket).
  int watched_fd_ = -1;
  spindle::detail::IoRegistration* registration_ = nullptr;
  PGcancel* cancel_ = nullptr;
  int server_version_ = 0;
  std::atomic<bool> broken_{false};
  std::atomic<bool> exclusive_{true};
  std::atomic<std::size_t> in_flight_count_{0};
  std::optional<db::Error> broken_error_;
  Notify flush_wanted_;  // the socket is full: the flush task waits for room

  std::deque<std::shared_ptr<Request>> in_flight_;  // sent, in the order their results will come
  std::deque<std::shared_ptr<Request>> pending_;    // waiting behind a script or a cancel
  bool script_running_ = false;
  bool cancel_running_ = false;
  std::unordered_map<std::string, Prepared> statements_;  // cache_key() -> prepared statement
  std::uint64_t next_statement_ = 0;

  // LISTEN/NOTIFY
  std::deque<Notification> notifications_;
  spindle::detail::Waker notification_waker_;
};

/// Waits for a submitted request; destroying it before the request completed abandons the request
/// (Session::abandon_locked).
class Session::Completion {
 public:
  Completion(std::shared_ptr<Session> session, std::shared_ptr<Request> request) noexcept
      : session_(std::move(session)), request_(std::move(request)) {}
  Completion(Completion&& other) noexcept = default;
  Completion& operator=(Completion&&) = delete;
  ~Completion() {
    if (!request_ || request_->done.load(std::memory_order_acquire)) return;
    std::lock_guard lock(session_->mutex_);
    if (!request_->done.load(std::memory_order_relaxed)) session_->abandon_locked(*request_);
  }
  bool await_ready() const noexcept { return request_->done.load(std::memory_order_acquire); }
  bool await_suspend(std::coroutine_handle<> h) {
    spindle::detail::Waker waker = spindle::detail::make_waker(h);
    std::lock_guard lock(session_->mutex_);
    if (request_->done.load(std::memory_order_relaxed)) return false;
    request_->waker = std::move(waker);
    return true;
  }
  void await_resume() const noexcept {}

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<Request> request_;
};

}  // namespace spindle::pg::detail
