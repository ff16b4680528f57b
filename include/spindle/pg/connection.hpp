#pragma once
// spindle::pg: PostgreSQL through libpq's non-blocking API, driven by Spindle's reactor. No thread waits
// while a query runs: a task that awaits a query is suspended until its result has arrived.
//
//   pg::Config config{"postgres://app@127.0.0.1/app"};
//   auto connection = co_await pg::Connection::connect(config);
//   auto users = co_await connection->query<User>("SELECT id, name FROM users WHERE id > $1", 10);
//
// Most code uses a pg::Pool (spindle/pg/pool.hpp), which has the same calls. Every connection runs in
// libpq's pipeline mode: queries from several tasks go out back to back on one connection without
// waiting for each other's results, each followed by its own Sync, so one query's error never aborts
// another's. Statements are prepared once per connection (cached by their SQL text and parameter types).
//
// Parameter types: bool, integers (int16/int32/int64 on the wire by size), float, double, std::string,
// std::string_view and const char* (sent as text of type "unknown", so they fit text, varchar, json,
// jsonb, uuid, enum or date columns), db::Bytes (bytea), db::Timestamp (timestamptz), db::Uuid, described
// enums (their name), std::optional<T> and std::nullopt (NULL).
// Column types: the same, read from binary results: integers from int2/int4/int8 (range-checked),
// double/float from float4/float8, std::string from any text-like column (text, varchar, char, name,
// json, jsonb), db::Bytes from bytea, db::Timestamp from timestamptz and timestamp, db::Uuid from uuid,
// described enums from their label; NULL only into std::optional. Other types (numeric, arrays): cast in
// SQL (`total::float8`, `tags::text`).
//
// Calls copy their SQL and arguments before they return: the returned Task may be stored and awaited
// later. Like every Task, a call is lazy: nothing is sent until it is awaited.
//
// Not supported: COPY ... FROM STDIN / TO STDOUT (refused with an error), numeric and array columns
// (cast them). TLS works as libpq does it (sslmode in the URL).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/pg/detail/codec.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::pg {

namespace detail {
class Session;
}

/// Statements sent together and answered together: one round trip and one write for all of them.
/// PostgreSQL runs the statements between two Syncs as one implicit transaction, so a batch is atomic:
/// if one statement fails, none of them takes effect (inside a Transaction, the transaction fails).
///
///   pg::Batch batch;
///   for (std::int64_t id : ids) batch.add("SELECT id, randomnumber FROM world WHERE id = $1", id);
///   auto results = co_await pool.run(std::move(batch));      // Result<BatchResults, db::Error>
///   auto world = results->one<World>(0);
class Batch {
 public:
  template <class... Args>
  Batch& add(std::string_view sql, const Args&... args) {
    statements_.push_back(detail::Statement::make(sql, args...));
    return *this;
  }
  std::size_t size() const noexcept { return statements_.size(); }

 private:
  friend class detail::Session;
  std::vector<detail::Statement> statements_;
};

/// The outcomes of a Batch, in the order the statements were added.
class BatchResults {
 public:
  explicit BatchResults(std::vector<detail::QueryResult> results) noexcept : results_(std::move(results)) {}
  std::size_t size() const noexcept { return results_.size(); }
  template <class T>
  Result<std::vector<T>, db::Error> rows(std::size_t statement) const {
    return detail::rows_of<T>(results_.at(statement));
  }
  /// The first row of a statement's result; Kind::not_found if it has none.
  template <class T>
  Result<T, db::Error> one(std::size_t statement) const {
    Result<std::optional<T>, db::Error> row = detail::first_row_of<T>(results_.at(statement));
    if (!row) return Err{std::move(row).error()};
    if (!*row) return Err{db::Error{db::Error::Kind::not_found, "the query returned no row", {}, {}}};
    return std::move(**row);
  }
  std::uint64_t affected(std::size_t statement) const { return results_.at(statement).affected(); }

 private:
  std::vector<detail::QueryResult> results_;
};

namespace detail {
struct TransactionState;

/// query/query_one/query_opt/execute/batch_execute for anything that can run a Statement
/// (`Derived::submit`) and a script (`Derived::submit_script`).
template <class Derived>
class QueryMethods {
 public:
  /// Every row, as T (a described struct, a std::tuple, or one column's type).
  template <class T, class... Args>
  Task<Result<std::vector<T>, db::Error>> query(std::string_view sql, const Args&... args) {
    return all_rows<T>(self().submit(Statement::make(sql, args...)));
  }
  /// The first row; db::Error::Kind::not_found when there is none.
  template <class T, class... Args>
  Task<Result<T, db::Error>> query_one(std::string_view sql, const Args&... args) {
    return one_row<T>(self().submit(Statement::make(sql, args...)));
  }
  /// The first row, or nullopt.
  template <class T, class... Args>
  Task<Result<std::optional<T>, db::Error>> query_opt(std::string_view sql, const Args&... args) {
    return optional_row<T>(self().submit(Statement::make(sql, args...)));
  }
  /// Runs a statement; the number of rows it inserted, updated or deleted.
  template <class... Args>
  Task<Result<std::uint64_t, db::Error>> execute(std::string_view sql, const Args&... args) {
    return affected_rows(self().submit(Statement::make(sql, args...)));
  }
  /// Runs several statements separated by ';' (no parameters), as PostgreSQL's simple query protocol
  /// does: for schemas and migrations.
  Task<Result<void, db::Error>> batch_execute(std::string_view script) {
    return self().submit_script(std::string{script});
  }
  /// Runs a Batch: every statement in one round trip, atomically.
  Task<Result<BatchResults, db::Error>> run(Batch batch) { return self().submit_batch(std::move(batch)); }

 private:
  using Pending = Task<Result<QueryResult, db::Error>>;
  Derived& self() { return static_cast<Derived&>(*this); }

  // Each awaits the call into one local and converts it in a plain function: GCC 12 keeps every local of
  // a coroutine in its frame, and this frame lives as long as the query waits.
  template <class T>
  static Task<Result<std::vector<T>, db::Error>> all_rows(Pending pending) {
    Result<QueryResult, db::Error> result = co_await std::move(pending);
    co_return convert(std::move(result), [](const QueryResult& done) { return rows_of<T>(done); });
  }
  template <class T>
  static Task<Result<T, db::Error>> one_row(Pending pending) {
    Result<QueryResult, db::Error> result = co_await std::move(pending);
    co_return convert(std::move(result), [](const QueryResult& done) -> Result<T, db::Error> {
      Result<std::optional<T>, db::Error> row = first_row_of<T>(done);
      if (!row) return Err{std::move(row).error()};
      if (!*row) return Err{db::Error{db::Error::Kind::not_found, "the query returned no row", {}, {}}};
      return std::move(**row);
    });
  }
  template <class T>
  static Task<Result<std::optional<T>, db::Error>> optional_row(Pending pending) {
    Result<QueryResult, db::Error> result = co_await std::move(pending);
    co_return convert(std::move(result), [](const QueryResult& done) { return first_row_of<T>(done); });
  }
  static Task<Result<std::uint64_t, db::Error>> affected_rows(Pending pending) {
    Result<QueryResult, db::Error> result = co_await std::move(pending);
    co_return convert(std::move(result),
                      [](const QueryResult& done) -> Result<std::uint64_t, db::Error> { return done.affected(); });
  }
  template <class F>
  static auto convert(Result<QueryResult, db::Error>&& result, F to_rows) -> decltype(to_rows(*result)) {
    if (!result) return Err{std::move(result).error()};
    return to_rows(*result);
  }
};
}  // namespace detail

/// Where and how to connect.
struct Config {
  /// A URL ("postgres://user:password@host:port/dbname?sslmode=disable") or a libpq connection string
  /// ("host=127.0.0.1 port=5432 user=app"). A host name is resolved on the blocking pool (libpq would
  /// resolve it synchronously); a host starting with '/' is a Unix socket directory.
  std::string url;
  /// Connecting (resolution, TCP, authentication) gives up after this long.
  Duration connect_timeout = std::chrono::seconds{5};
};

class Transaction;

/// One connection to PostgreSQL. Cheap to move; the connection closes when it is destroyed. Tasks on
/// any thread may use it at once: their queries are pipelined. A call that times out has its query
/// cancelled on the server when it is the only one in flight; otherwise its result is dropped when it
/// comes.
class Connection : public detail::QueryMethods<Connection> {
 public:
  static Task<Result<Connection, db::Error>> connect(Config config);

  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  /// Starts a transaction (BEGIN). While it is open, this connection serves only the transaction: other
  /// calls on it would run inside it, so a transaction usually comes from a Pool, which hands it a
  /// connection of its own.
  Task<Result<Transaction, db::Error>> begin();

  /// False once the connection failed (the server went away); every call then fails at once.
  bool is_usable() const noexcept;
  /// The server's version, e.g. 150018 for 15.18.
  int server_version() const noexcept;

  Task<Result<detail::QueryResult, db::Error>> submit(detail::Statement statement);
  Task<Result<void, db::Error>> submit_script(std::string script);
  Task<Result<BatchResults, db::Error>> submit_batch(Batch batch);

 private:
  friend class Pool;
  friend class Listener;
  explicit Connection(std::shared_ptr<detail::Session> session) noexcept;
  std::shared_ptr<detail::Session> session_;
};

/// A transaction, or a savepoint inside one (begin() on a transaction). Rolled back when it is
/// destroyed without commit(): leaving a scope by an exception or an early co_return undoes it.
///
///   auto tx = co_await pool.begin();
///   if (!tx) co_return Err{tx.error()};
///   auto debited = co_await tx->execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, from);
///   ...
///   auto committed = co_await tx->commit();
///
/// A statement that fails leaves the transaction failed (PostgreSQL's rule): further statements fail and
/// commit() reports an error. A savepoint that rolls back clears that state for the outer transaction.
class Transaction : public detail::QueryMethods<Transaction> {
 public:
  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) noexcept;
  ~Transaction();

  Task<Result<void, db::Error>> commit();
  Task<Result<void, db::Error>> rollback();
  /// A savepoint: a nested transaction whose rollback keeps the outer one's work. It must end before its
  /// parent does.
  Task<Result<Transaction, db::Error>> begin();

  Task<Result<detail::QueryResult, db::Error>> submit(detail::Statement statement);
  Task<Result<void, db::Error>> submit_script(std::string script);
  Task<Result<BatchResults, db::Error>> submit_batch(Batch batch);

 private:
  friend class Connection;
  friend class Pool;
  friend struct detail::TransactionState;
  explicit Transaction(std::shared_ptr<detail::TransactionState> state) noexcept;
  static Task<Result<Transaction, db::Error>> start(std::shared_ptr<detail::TransactionState> state);
  static Task<Result<void, db::Error>> finish(std::shared_ptr<detail::TransactionState> state, bool commit);
  std::shared_ptr<detail::TransactionState> state_;
};

}  // namespace spindle::pg
