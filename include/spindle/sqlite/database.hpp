#pragma once
// spindle::sqlite: SQLite, embedded, behind the calls spindle::pg has (the db::Database concept), so a
// repository written once runs on either. Link spindle::sqlite.
//
//   sqlite::Config config{.path = "/var/lib/app/app.db"};
//   auto db = co_await sqlite::Database::open(config);
//   if (!db) fail(db.error().to_string());
//   auto users = co_await db->query<User>("SELECT id, name FROM users WHERE id > $1", 10);
//
// SQLite lets one connection write at a time and blocks the thread that waits for it, so the design
// follows from keeping runtime threads out of it:
// - One writer thread owns the one writing connection and a queue. It takes every write waiting (up to
//   Config::max_batch) and runs them in one `BEGIN IMMEDIATE ... COMMIT`, each inside its own SAVEPOINT: a
//   statement that fails (a unique violation) is rolled back alone and its caller alone gets the error,
//   while the others commit. One commit for many writes is where SQLite's write throughput comes from.
// - Reads (a statement SQLite calls read-only that returns rows) run on Config::readers connections of
//   their own, on the blocking pool (spawn_blocking), in parallel with each other and with the writer:
//   the database is in WAL mode, where readers see the last commit and never wait for the writer. A
//   read waits (asynchronously) for a free reader. Which statements read is decided once per SQL text,
//   by preparing it on a reader (sqlite3_stmt_readonly).
// - A transaction has the writer to itself: from begin() to commit() or rollback(), the writer runs only
//   that transaction's statements (reads included, so they see its writes) and other writes wait in the
//   queue. Keep transactions short, and inside one use the transaction's calls, not the Database's: a
//   write through the Database would wait for the transaction that is waiting for it.
//
// Each call may run on a different connection, so per-connection state does not carry from one call to
// the next: use `INSERT ... RETURNING id` rather than last_insert_rowid(), and no TEMP tables.
//
// SQL uses PostgreSQL's placeholders, $1, $2... (SQLite takes "$1" as a named parameter): "$2 ... $1"
// and a placeholder used twice work; `?` and `:name` are refused.
//
// Parameter types: bool (0/1), integers (a uint64 above INT64_MAX is refused), float, double,
// std::string, std::string_view and const char* (TEXT), db::Bytes (BLOB), db::Timestamp (RFC 3339 TEXT in
// UTC, which sorts as time does), db::Uuid (its canonical TEXT), described enums (their name as TEXT),
// std::optional<T> and std::nullopt (NULL).
// Column types, checked strictly against each value's own type (SQLite stores a value with its type,
// whatever the column declares): integers from INTEGER (range-checked), bool from INTEGER 0 or 1, double and float from
// REAL or INTEGER, std::string from TEXT, db::Bytes from BLOB, db::Timestamp, db::Uuid and described enums from TEXT;
// NULL only into std::optional. Anything else is Error::Kind::decode naming the column.
//
// Calls copy their SQL and arguments before they return: the returned Task may be stored and awaited
// later. A Task that is never awaited runs nothing; a write whose awaiting task is cancelled before the
// writer reached it is skipped.

#include <boost/describe/enumerators.hpp>
#include <boost/mp11/algorithm.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/db/row.hpp"
#include "spindle/db/value.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

struct sqlite3;       // SQLite's handles, kept out of public headers
struct sqlite3_stmt;  // (<sqlite3.h> declares them with these same names)

namespace spindle::sqlite {

struct Config {
  /// The database file; created if missing, but its directory must exist (Error::Kind::connection
  /// otherwise). Not ":memory:": an in-memory database would be private to each connection.
  std::string path;
  /// Connections for reads, which run in parallel on the blocking pool. 0: reads go to the writer.
  std::size_t readers = 4;
  /// How long a statement waits for a lock another process holds before Error::Kind::busy.
  std::chrono::milliseconds busy_timeout{5000};
  /// At most this many writes are committed together in one transaction.
  std::size_t max_batch = 64;
};

/// What the writer has done, for tests and metrics.
struct Stats {
  std::uint64_t writes;         ///< statements and scripts run in batches (outside explicit transactions)
  std::uint64_t write_batches;  ///< the transactions they were committed in
};

class Database;
class Transaction;

namespace detail {

class State;     // the database: writer thread, readers (src/sqlite/database.cpp)
struct TxState;  // one transaction or savepoint, as the writer tracks it

/// One parameter, converted when the call is made: NULL, INTEGER, REAL, TEXT or BLOB.
using Param = std::variant<std::monostate, std::int64_t, double, std::string, db::Bytes>;

template <class T>
inline constexpr bool is_described_enum = boost::describe::has_describe_enumerators<T>::value;
template <class T>
inline constexpr bool dependent_false = false;

// Column access for the row reader, defined beside the rest of the SQLite calls (connection.cpp) so that
// this header needs no <sqlite3.h>.
enum class ColumnType : unsigned char { integer, real, text, blob, null };
int column_count(sqlite3_stmt* statement) noexcept;
std::string_view column_name(sqlite3_stmt* statement, int column) noexcept;
ColumnType column_type(sqlite3_stmt* statement, int column) noexcept;
std::int64_t column_integer(sqlite3_stmt* statement, int column) noexcept;
double column_real(sqlite3_stmt* statement, int column) noexcept;
std::string_view column_text(sqlite3_stmt* statement, int column) noexcept;
std::span<const std::byte> column_blob(sqlite3_stmt* statement, int column) noexcept;
/// Error::Kind::decode: `column "name": <problem>`.
db::Error column_error(sqlite3_stmt* statement, int column, std::string_view problem);
/// The column's value has the wrong type for `wanted` (or is NULL): names the column and both types.
db::Error type_mismatch(sqlite3_stmt* statement, int column, std::string_view wanted);

/// The C++ type a column is read into, for error messages.
template <class V>
constexpr std::string_view type_name() {
  if constexpr (std::is_same_v<V, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<V> && std::is_signed_v<V>)
    return sizeof(V) == 1 ? "int8" : sizeof(V) == 2 ? "int16" : sizeof(V) == 4 ? "int32" : "int64";
  else if constexpr (std::is_integral_v<V>)
    return sizeof(V) == 1 ? "uint8" : sizeof(V) == 2 ? "uint16" : sizeof(V) == 4 ? "uint32" : "uint64";
  else if constexpr (std::is_same_v<V, float>)
    return "float";
  else if constexpr (std::is_floating_point_v<V>)
    return "double";
  else if constexpr (std::is_same_v<V, std::string>)
    return "std::string";
  else if constexpr (std::is_same_v<V, db::Bytes>)
    return "db::Bytes";
  else if constexpr (std::is_same_v<V, db::Timestamp>)
    return "db::Timestamp";
  else if constexpr (std::is_same_v<V, db::Uuid>)
    return "db::Uuid";
  else
    return "an enum";
}

/// The result's columns, for db::ColumnBinding.
class Columns {
 public:
  explicit Columns(sqlite3_stmt* statement) noexcept : statement_(statement) {}
  int column_count() const noexcept { return detail::column_count(statement_); }
  std::string_view column_name(int column) const noexcept { return detail::column_name(statement_, column); }

 private:
  sqlite3_stmt* statement_;
};

/// Reads fields of the current row, for db::read_row.
class RowReader {
 public:
  explicit RowReader(sqlite3_stmt* statement) noexcept : statement_(statement) {}

  template <class V>
  Result<void, db::Error> read(int column, V& out) {
    const ColumnType type = column_type(statement_, column);
    if constexpr (db::detail::is_optional<V>::value) {
      if (type == ColumnType::null) {
        out.reset();
        return {};
      }
      typename V::value_type value{};
      Result<void, db::Error> done = read(column, value);
      if (!done) return done;
      out = std::move(value);
      return {};
    } else if constexpr (std::is_same_v<V, bool>) {
      if (type != ColumnType::integer) return Err{type_mismatch(statement_, column, type_name<V>())};
      const std::int64_t value = column_integer(statement_, column);
      if (value != 0 && value != 1)
        return Err{column_error(statement_, column, std::to_string(value) + " is not a bool (0 or 1)")};
      out = value == 1;
      return {};
    } else if constexpr (std::is_integral_v<V>) {
      if (type != ColumnType::integer) return Err{type_mismatch(statement_, column, type_name<V>())};
      const std::int64_t value = column_integer(statement_, column);
      if (!std::in_range<V>(value))
        return Err{column_error(statement_, column,
                                std::to_string(value) + " does not fit in " + std::string{type_name<V>()})};
      out = static_cast<V>(value);
      return {};
    } else if constexpr (std::is_floating_point_v<V>) {
      if (type == ColumnType::real)
        out = static_cast<V>(column_real(statement_, column));
      else if (type == ColumnType::integer)
        out = static_cast<V>(column_integer(statement_, column));
      else
        return Err{type_mismatch(statement_, column, type_name<V>())};
      return {};
    } else if constexpr (std::is_same_v<V, std::string>) {
      if (type != ColumnType::text) return Err{type_mismatch(statement_, column, type_name<V>())};
      out.assign(column_text(statement_, column));
      return {};
    } else if constexpr (std::is_same_v<V, db::Bytes>) {
      if (type != ColumnType::blob) return Err{type_mismatch(statement_, column, type_name<V>())};
      const std::span<const std::byte> blob = column_blob(statement_, column);
      out.assign(blob.begin(), blob.end());
      return {};
    } else if constexpr (std::is_same_v<V, db::Timestamp> || std::is_same_v<V, db::Uuid> || is_described_enum<V>) {
      if (type != ColumnType::text) return Err{type_mismatch(statement_, column, type_name<V>())};
      const std::string_view text = column_text(statement_, column);
      if (parse_text(text, out)) return {};
      return Err{column_error(statement_, column, "\"" + std::string{text} + "\" is not " + what<V>())};
    } else {
      static_assert(dependent_false<V>,
                    "spindle::sqlite cannot read a column into this type: use bool, an integer, float, double, "
                    "std::string, db::Bytes, db::Timestamp, db::Uuid, a described enum, or std::optional of one");
      return {};
    }
  }

 private:
  static bool parse_text(std::string_view text, db::Timestamp& out) {
    std::optional<db::Timestamp> parsed = db::parse_timestamp(text);
    if (parsed) out = *parsed;
    return parsed.has_value();
  }
  static bool parse_text(std::string_view text, db::Uuid& out) {
    std::optional<db::Uuid> parsed = db::Uuid::parse(text);
    if (parsed) out = *parsed;
    return parsed.has_value();
  }
  template <class E>
  requires is_described_enum<E>
  static bool parse_text(std::string_view text, E& out) {
    bool found = false;
    boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto enumerator) {
      if (!found && text == enumerator.name) {
        out = enumerator.value;
        found = true;
      }
    });
    return found;
  }
  template <class V>
  static std::string what() {
    if constexpr (std::is_same_v<V, db::Timestamp>) {
      return "an RFC 3339 timestamp";
    } else if constexpr (std::is_same_v<V, db::Uuid>) {
      return "a UUID";
    } else {
      std::string names;
      boost::mp11::mp_for_each<boost::describe::describe_enumerators<V>>([&](auto enumerator) {
        if (!names.empty()) names += ", ";
        names += enumerator.name;
      });
      return "one of " + names;
    }
  }

  sqlite3_stmt* statement_;
};

/// A call's SQL and parameters, owned (copied before the call returns), and what becomes of its rows.
/// The writer thread or a reader runs it; the awaiting task reads the outcome after completion.
class Statement {
 public:
  explicit Statement(std::string_view text) : sql(text) {}
  virtual ~Statement() = default;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  template <class... Args>
  void add_params(const Args&... args) {
    params.reserve(sizeof...(Args));
    (add(args), ...);
  }

  // Called by the thread that runs the statement: start() once the statement is prepared, then row()
  // for each row while wants_row() says so.
  virtual Result<void, db::Error> start(const Columns&) { return {}; }
  virtual bool wants_row() const { return false; }
  virtual Result<void, db::Error> row(RowReader&) { return {}; }

  std::string sql;
  std::vector<Param> params;
  /// Why an argument could not become a parameter; reported instead of running the statement.
  std::optional<db::Error> error;

 private:
  template <class A>
  void add(const A& value) {
    using V = std::remove_cvref_t<A>;
    if constexpr (std::is_same_v<V, std::nullopt_t> || std::is_same_v<V, std::nullptr_t>) {
      params.emplace_back(std::monostate{});
    } else if constexpr (db::detail::is_optional<V>::value) {
      if (value)
        add(*value);
      else
        params.emplace_back(std::monostate{});
    } else if constexpr (std::is_same_v<V, bool>) {
      params.emplace_back(std::int64_t{value ? 1 : 0});
    } else if constexpr (std::is_integral_v<V>) {
      if (!std::in_range<std::int64_t>(value)) {
        refuse("argument $" + std::to_string(params.size() + 1) + " (" + std::to_string(value) +
               ") is beyond SQLite's 64-bit signed integers");
        params.emplace_back(std::monostate{});
      } else {
        params.emplace_back(static_cast<std::int64_t>(value));
      }
    } else if constexpr (std::is_floating_point_v<V>) {
      params.emplace_back(static_cast<double>(value));
    } else if constexpr (std::is_pointer_v<V> && std::is_convertible_v<V, const char*>) {
      if (value == nullptr)
        params.emplace_back(std::monostate{});
      else
        params.emplace_back(std::string{value});
    } else if constexpr (std::is_convertible_v<const V&, std::string_view>) {
      params.emplace_back(std::string{std::string_view{value}});
    } else if constexpr (std::is_same_v<V, db::Bytes>) {
      params.emplace_back(value);
    } else if constexpr (std::is_same_v<V, db::Timestamp>) {
      params.emplace_back(db::format_timestamp(value));
    } else if constexpr (std::is_same_v<V, db::Uuid>) {
      params.emplace_back(value.to_string());
    } else if constexpr (is_described_enum<V>) {
      const char* name = nullptr;
      boost::mp11::mp_for_each<boost::describe::describe_enumerators<V>>([&](auto enumerator) {
        if (name == nullptr && value == enumerator.value) name = enumerator.name;
      });
      if (name == nullptr) {
        refuse("argument $" + std::to_string(params.size() + 1) + " (" +
               std::to_string(static_cast<std::underlying_type_t<V>>(value)) + ") is not a named enumerator");
        params.emplace_back(std::monostate{});
      } else {
        params.emplace_back(std::string{name});
      }
    } else {
      static_assert(dependent_false<V>,
                    "spindle::sqlite cannot bind this parameter type: use bool, an integer, float, double, "
                    "std::string, std::string_view, const char*, db::Bytes, db::Timestamp, db::Uuid, a described "
                    "enum, std::optional of one, or std::nullopt");
    }
  }
  void refuse(std::string message) {
    if (!error) error = db::Error{db::Error::Kind::query, std::move(message), {}, {}};
  }
};

/// A statement whose rows become T (at most `limit` of them).
template <class T>
class RowsStatement final : public Statement {
 public:
  RowsStatement(std::string_view text, std::size_t limit) : Statement(text), limit_(limit) {}

  Result<void, db::Error> start(const Columns& columns) override {
    Result<db::ColumnBinding<T>, db::Error> bound = db::ColumnBinding<T>::bind(columns);
    if (!bound) return Err{std::move(bound).error()};
    binding_.emplace(std::move(*bound));
    rows.clear();
    return {};
  }
  bool wants_row() const override { return rows.size() < limit_; }
  Result<void, db::Error> row(RowReader& reader) override {
    Result<T, db::Error> decoded = db::read_row<T>(reader, *binding_);
    if (!decoded) return Err{std::move(decoded).error()};
    rows.push_back(std::move(*decoded));
    return {};
  }

  std::vector<T> rows;

 private:
  std::size_t limit_;
  std::optional<db::ColumnBinding<T>> binding_;
};

inline constexpr std::size_t kAllRows = std::numeric_limits<std::size_t>::max();

/// Runs a statement: on a reader if it only reads (and `tx` is null), otherwise on the writer, inside
/// `tx` if given. Rows affected.
Task<Result<std::uint64_t, db::Error>> run_statement(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                                                     std::shared_ptr<Statement> statement);

template <class T>
Task<Result<std::vector<T>, db::Error>> all_rows(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                                                 std::shared_ptr<RowsStatement<T>> statement) {
  Task<Result<std::uint64_t, db::Error>> running = run_statement(std::move(state), std::move(tx), statement);
  Result<std::uint64_t, db::Error> ran = co_await std::move(running);
  if (!ran) co_return Err{std::move(ran).error()};
  co_return std::move(statement->rows);
}

template <class T>
Task<Result<std::optional<T>, db::Error>> first_row(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                                                    std::shared_ptr<RowsStatement<T>> statement) {
  Task<Result<std::uint64_t, db::Error>> running = run_statement(std::move(state), std::move(tx), statement);
  Result<std::uint64_t, db::Error> ran = co_await std::move(running);
  if (!ran) co_return Err{std::move(ran).error()};
  std::optional<T> first;
  if (!statement->rows.empty()) first.emplace(std::move(statement->rows.front()));
  co_return std::move(first);
}

template <class T>
Task<Result<T, db::Error>> only_row(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                                    std::shared_ptr<RowsStatement<T>> statement) {
  Task<Result<std::uint64_t, db::Error>> running = run_statement(std::move(state), std::move(tx), statement);
  Result<std::uint64_t, db::Error> ran = co_await std::move(running);
  if (!ran) co_return Err{std::move(ran).error()};
  if (statement->rows.empty())
    co_return Err{db::Error{db::Error::Kind::not_found, "query_one: the query returned no row", {}, {}}};
  co_return std::move(statement->rows.front());
}

/// The calls a Database and a Transaction share. Each copies its SQL and arguments into a Statement
/// before it returns, then hands back a Task of a coroutine that owns that Statement.
class Session {
 public:
  /// Every row, as T (a described struct, a std::tuple, or one column's type).
  template <class T, class... Args>
  Task<Result<std::vector<T>, db::Error>> query(std::string_view sql, const Args&... args) {
    auto statement = std::make_shared<RowsStatement<T>>(sql, kAllRows);
    statement->add_params(args...);
    return all_rows<T>(state_, tx_, std::move(statement));
  }
  /// The first row; Error::Kind::not_found when there is none.
  template <class T, class... Args>
  Task<Result<T, db::Error>> query_one(std::string_view sql, const Args&... args) {
    auto statement = std::make_shared<RowsStatement<T>>(sql, 1);
    statement->add_params(args...);
    return only_row<T>(state_, tx_, std::move(statement));
  }
  /// The first row, or std::nullopt.
  template <class T, class... Args>
  Task<Result<std::optional<T>, db::Error>> query_opt(std::string_view sql, const Args&... args) {
    auto statement = std::make_shared<RowsStatement<T>>(sql, 1);
    statement->add_params(args...);
    return first_row<T>(state_, tx_, std::move(statement));
  }
  /// Runs a statement; the number of rows it inserted, updated or deleted (0 for anything else).
  template <class... Args>
  Task<Result<std::uint64_t, db::Error>> execute(std::string_view sql, const Args&... args) {
    auto statement = std::make_shared<Statement>(sql);
    statement->add_params(args...);
    return run_statement(state_, tx_, std::move(statement));
  }
  /// Several statements separated by ';', without parameters (schema scripts), on the writer. The script
  /// runs inside a transaction and is rolled back whole if a statement fails, so it may not contain
  /// BEGIN, COMMIT, SAVEPOINT or VACUUM.
  Task<Result<void, db::Error>> batch_execute(std::string_view script);

 protected:
  Session() noexcept = default;
  Session(std::shared_ptr<State> state, std::shared_ptr<TxState> tx) noexcept
      : state_(std::move(state)), tx_(std::move(tx)) {}

  std::shared_ptr<State> state_;
  std::shared_ptr<TxState> tx_;  // null for the Database itself
};

}  // namespace detail

/// A transaction (or, from Transaction::begin(), a savepoint inside one), with the Database's calls.
/// Until it ends, the writer serves only this transaction. Destroying it neither committed nor rolled
/// back rolls it back (queued: a destructor cannot wait), which is what happens when a coroutine holding
/// one throws.
///
///   auto tx = co_await db.begin();
///   if (!tx) co_return Err{tx.error()};
///   auto debited = co_await tx->execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", 10, from);
///   if (!debited) co_return Err{debited.error()};          // tx rolls back as it goes out of scope
///   auto credited = co_await tx->execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", 10, to);
///   if (!credited) co_return Err{credited.error()};
///   auto committed = co_await tx->commit();
class Transaction : public detail::Session {
 public:
  Transaction(Transaction&& other) noexcept = default;
  Transaction& operator=(Transaction&& other) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Task<Result<void, db::Error>> commit();
  Task<Result<void, db::Error>> rollback();
  /// A nested transaction on a savepoint: its commit releases the savepoint, its rollback undoes only
  /// what was done since. Dropped uncommitted, it rolls back to the savepoint.
  Task<Result<Transaction, db::Error>> begin();

 private:
  friend class Database;
  Transaction(std::shared_ptr<detail::State> state, std::shared_ptr<detail::TxState> tx) noexcept
      : Session(std::move(state), std::move(tx)) {}
  static Task<Result<Transaction, db::Error>> start(std::shared_ptr<detail::State> state,
                                                    std::shared_ptr<detail::TxState> parent);
  static Task<Result<void, db::Error>> finish(std::shared_ptr<detail::State> state, std::shared_ptr<detail::TxState> tx,
                                              bool commit);
  /// Queues the rollback of a transaction that has not ended, and lets go of it.
  void abandon() noexcept;
};

/// A SQLite database: one writer thread and a few reader connections (see the top of this header). A
/// cheap copyable handle; copies share the database, which closes (after the writes already queued) when
/// the last handle and the last Transaction are gone. Satisfies db::Database.
///
///   struct User {
///     std::int64_t id;
///     std::string email;
///     std::optional<std::string> name;
///   };
///   BOOST_DESCRIBE_STRUCT(User, (), (id, email, name))
///
///   Task<Result<void, db::Error>> example() {
///     sqlite::Config config{.path = "app.db"};
///     auto opened = co_await sqlite::Database::open(config);
///     if (!opened) co_return Err{opened.error()};
///     sqlite::Database db = std::move(*opened);
///     auto created = co_await db.batch_execute(
///         "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, name TEXT)");
///     if (!created) co_return Err{created.error()};
///     auto inserted = co_await db.execute("INSERT INTO users (email) VALUES ($1)", "ada@example.com");
///     if (!inserted && inserted.error().kind == db::Error::Kind::unique_violation) { /* already there */ }
///     auto user = co_await db.query_one<User>("SELECT id, email, name FROM users WHERE email = $1",
///                                             "ada@example.com");
///     if (!user) co_return Err{user.error()};
///     co_return Result<void, db::Error>{};
///   }
class Database : public detail::Session {
 public:
  using Transaction = sqlite::Transaction;
  static constexpr std::string_view dialect = "sqlite";

  /// Opens (creating the file if needed) in WAL mode, the writer connection and the readers, on the
  /// blocking pool. Error::Kind::connection if the file cannot be opened.
  static Task<Result<Database, db::Error>> open(Config config);

  /// A transaction (BEGIN IMMEDIATE), once the writer has finished what was queued before it.
  Task<Result<Transaction, db::Error>> begin();
  Stats stats() const;

 private:
  explicit Database(std::shared_ptr<detail::State> state) noexcept : Session(std::move(state), nullptr) {}
};

}  // namespace spindle::sqlite
