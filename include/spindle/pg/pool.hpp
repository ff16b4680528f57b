#pragma once
// pg::Pool: connections to one database, shared by every task of the process.
//
//   pg::PoolConfig config;
//   config.url = std::getenv("DATABASE_URL");
//   auto pool = co_await pg::Pool::connect(config);     // no braced list inside co_await (GCC 12)
//   if (!pool) fail(pool.error().to_string());
//   auto user = co_await pool->query_one<User>("SELECT id, name, email FROM users WHERE id = $1", id);
//
// Two ways to share, chosen by PoolConfig::pipeline:
// - pipeline (the default): a query goes to the open connection with the fewest queries in flight, and
//   waits behind them in that connection's pipeline; a new connection opens while every open one is busy
//   and the pool is below max_size. No query waits for a connection to be free (only, at start and
//   after an outage, for one to open).
// - exclusive: a query takes a connection to itself (at most max_size at once; the others wait in FIFO
//   order, up to acquire_timeout), as classic pools do.
// Transactions always have a connection to themselves (in pipeline mode at most max_size - 1, so one
// connection stays shared).
//
// Failure: a connection that breaks (the server restarted) fails only the queries on it, with
// Error::Kind::connection, and leaves the pool. While connecting fails, calls that need a new connection
// fail at once with the connect error (Kind::connection) for a short back-off (50 ms doubling up to
// PoolConfig::reconnect_backoff), then the next call tries again: during an outage calls fail fast, and
// the pool recovers by itself when the server is back.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "spindle/pg/connection.hpp"
#include "spindle/pg/listener.hpp"

namespace spindle::pg {

struct PoolConfig {
  std::string url;  ///< as Config::url
  std::size_t max_size = 16;
  /// Exclusive mode and transactions: how long a call waits for a connection before
  /// Error::Kind::pool_timeout (a web service answers 503).
  Duration acquire_timeout = std::chrono::seconds{5};
  Duration connect_timeout = std::chrono::seconds{5};
  /// Each call's deadline on the pool (query, execute, run, batch_execute), waiting included; past it the
  /// call fails with Error::Kind::timeout and, on a connection of its own, the server is told to cancel
  /// the query. Not applied to a transaction's statements: wrap those in spindle::timeout(). Unset: no
  /// deadline.
  std::optional<Duration> query_timeout;
  /// Pipeline queries of several tasks on one connection (see the top of this header); false: a
  /// connection per query.
  bool pipeline = true;
  /// The longest wait between two connection attempts while the server is unreachable.
  Duration reconnect_backoff = std::chrono::milliseconds{500};
};

struct PoolStats {
  std::size_t connections;  ///< open
  std::size_t leased;       ///< held by a transaction or an exclusive query
  std::size_t in_flight;    ///< queries sent and not yet answered, on all connections
  std::size_t connects;     ///< connections opened since the pool began (reconnections show here)
};

namespace detail {
class PoolCore;
}

/// A pool of connections; a cheap copyable handle (copies share the pool). Satisfies db::Database.
class Pool : public detail::QueryMethods<Pool> {
 public:
  using Transaction = pg::Transaction;
  static constexpr std::string_view dialect = "postgresql";

  /// Opens the first connection, so that a wrong URL or an unreachable server fails here, at start.
  static Task<Result<Pool, db::Error>> connect(PoolConfig config);

  /// A transaction on a connection of its own.
  Task<Result<Transaction, db::Error>> begin();
  /// LISTEN on `channel`, on a connection of its own (not counted in max_size).
  Task<Result<Listener, db::Error>> listen(std::string channel);
  /// `SELECT 1` through the pool: whether the database answers (a readiness probe).
  Task<Result<void, db::Error>> ping();
  PoolStats stats() const;

  Task<Result<detail::QueryResult, db::Error>> submit(detail::Statement statement);
  Task<Result<void, db::Error>> submit_script(std::string script);
  Task<Result<BatchResults, db::Error>> submit_batch(Batch batch);

 private:
  explicit Pool(std::shared_ptr<detail::PoolCore> core) noexcept : core_(std::move(core)) {}
  static Task<Result<Transaction, db::Error>> begin_on(std::shared_ptr<detail::PoolCore> core);
  static Task<Result<Listener, db::Error>> listen_on(PoolConfig config, std::string channel);
  std::shared_ptr<detail::PoolCore> core_;
};

}  // namespace spindle::pg
