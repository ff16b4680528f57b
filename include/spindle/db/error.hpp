#pragma once
// spindle::db::Error: what went wrong with a database call, typed so that a handler can map it (a unique
// violation becomes 409, a pool timeout 503) whichever database is behind it. Shared by spindle::pg and
// spindle::sqlite.

#include <string>
#include <string_view>

namespace spindle::db {

/// A failed database call.
///
///   auto user = co_await db.query_one<User>("INSERT INTO users (email) VALUES ($1) RETURNING *", email);
///   if (!user && user.error().kind == db::Error::Kind::unique_violation) co_return conflict();
struct Error {
  enum class Kind {
    unique_violation,       ///< a UNIQUE or PRIMARY KEY constraint (SQLSTATE 23505, SQLITE_CONSTRAINT_UNIQUE)
    foreign_key_violation,  ///< 23503, SQLITE_CONSTRAINT_FOREIGNKEY
    not_null_violation,     ///< 23502, SQLITE_CONSTRAINT_NOTNULL
    check_violation,        ///< 23514, SQLITE_CONSTRAINT_CHECK
    serialization_failure,  ///< 40001 or a deadlock (40P01): retry the whole transaction
    connection,             ///< could not connect, or the connection was lost mid-call
    timeout,                ///< the call ran past its deadline and was cancelled
    pool_timeout,           ///< no connection became free within the pool's acquire timeout
    busy,                   ///< SQLite: the database stayed locked past the busy bound
    not_found,              ///< query_one found no row
    decode,                 ///< a column did not convert to the requested C++ type, or is missing
    query,                  ///< any other error the server reported (syntax, permissions, ...)
    migration,              ///< the database's schema is newer than this binary, or a migration failed
  };

  Kind kind = Kind::query;
  std::string message;
  /// The server's SQLSTATE ("23505"); empty where there is none (SQLite, client-side errors).
  std::string sqlstate;
  /// The constraint a violation names, when the database says.
  std::string constraint;

  /// Whether the same call may succeed when tried again: a lost connection, a timeout, a busy pool or
  /// database, a serialization failure (retry the whole transaction, not the statement).
  bool is_transient() const noexcept {
    return kind == Kind::connection || kind == Kind::timeout || kind == Kind::pool_timeout || kind == Kind::busy ||
           kind == Kind::serialization_failure;
  }
  /// "unique_violation: duplicate key value violates unique constraint \"users_email_key\"".
  std::string to_string() const;
};

std::string_view to_string(Error::Kind kind) noexcept;

}  // namespace spindle::db
