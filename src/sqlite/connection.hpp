#pragma once
// One SQLite connection as spindle::sqlite uses it: opened and configured (WAL, busy timeout, foreign
// keys), its prepared statements cached by SQL text, a Statement's parameters bound by their $N names and
// its rows handed to the Statement, SQLite's errors mapped to db::Error. Private to src/sqlite/.
//
// A connection is opened with SQLITE_OPEN_NOMUTEX: SQLite does no locking of its own for it, so it is
// used by one thread at a time (the writer thread; a reader by the blocking-pool thread that leased it,
// the lease passing through a mutex).

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/result.hpp"
#include "spindle/sqlite/database.hpp"

namespace spindle::sqlite::detail {

class Connection {
 public:
  enum class Role {
    writer,  ///< switches the file to WAL; refuses transaction control in user statements
    reader,  ///< query_only: a statement routed here by mistake fails rather than write
  };

  /// Opens `config.path` (creating the file) and configures the connection. Kind::connection on failure.
  static Result<std::unique_ptr<Connection>, db::Error> open(const Config& config, Role role);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// The prepared statement for `sql`, cached (SQLITE_PREPARE_PERSISTENT). One statement per text: a
  /// second one after the first is an error that points to batch_execute.
  Result<sqlite3_stmt*, db::Error> prepare(std::string_view sql);
  /// Drops `sql` from the cache.
  void forget(std::string_view sql) noexcept;
  /// Binds `statement`'s parameters to `prepared`, steps it to the end (a read-only statement stops once
  /// the Statement wants no more rows), hands the rows over and resets it. The rows it inserted, updated
  /// or deleted.
  Result<std::uint64_t, db::Error> run(sqlite3_stmt* prepared, Statement& statement);
  /// A statement of Spindle's own (BEGIN IMMEDIATE, SAVEPOINT, COMMIT...), cached; the writer's
  /// authorizer lets these through and refuses them in user SQL.
  Result<void, db::Error> control(std::string_view sql);
  /// A script of statements without parameters (sqlite3_exec).
  Result<void, db::Error> exec_script(const std::string& script);
  /// Whether a transaction is open (SQLite may end one by itself: disk full, I/O error).
  bool in_transaction() const noexcept { return sqlite3_get_autocommit(handle_) == 0; }

 private:
  Connection(sqlite3* handle, std::chrono::milliseconds busy_timeout) noexcept
      : handle_(handle), busy_timeout_(busy_timeout) {}
  Result<void, db::Error> configure(Role role);
  Result<void, db::Error> bind(sqlite3_stmt* prepared, const std::vector<Param>& params);
  void clear_cache() noexcept;
  db::Error error(std::string_view context = {}) const;
  static int authorize(void* self, int action, const char*, const char*, const char*, const char*) noexcept;

  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
  };

  sqlite3* handle_;
  std::chrono::milliseconds busy_timeout_;
  std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>> cache_;
  std::unordered_map<std::string, sqlite3_stmt*, TextHash, std::equal_to<>> control_cache_;
  bool control_allowed_ = false;  // set while control() runs (the authorizer is asked on every prepare)
};

/// Whether a prepared statement belongs on a reader: SQLite says it does not write, and it returns rows.
/// (BEGIN, COMMIT, SAVEPOINT and ATTACH are read-only to SQLite too, but have no place on a reader.)
bool is_plain_read(sqlite3_stmt* prepared) noexcept;

}  // namespace spindle::sqlite::detail
