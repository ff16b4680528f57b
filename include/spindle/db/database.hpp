#pragma once
// The Database concept: what spindle::pg::Pool and spindle::sqlite::Database both offer, so that a
// repository is written once as a template and runs on either (monomorphized: no virtual call between a
// handler and its query).
//
//   template <db::Database Db>
//   class UserRepository {
//    public:
//     explicit UserRepository(Db& db) : db_(db) {}
//     Task<Result<User, db::Error>> find(std::int64_t id) {
//       auto found = db_.template query_one<User>("SELECT id, name, email FROM users WHERE id = $1", id);
//       co_return co_await std::move(found);
//     }
//    private:
//     Db& db_;
//   };
//
// SQL is written with PostgreSQL's $1, $2... placeholders; SQLite accepts the same text. Queries:
//   query<T>(sql, args...)      every row, as std::vector<T>
//   query_one<T>(sql, args...)  exactly the first row; Error::Kind::not_found if there is none
//   query_opt<T>(sql, args...)  the first row or std::nullopt
//   execute(sql, args...)       the number of rows affected
//   batch_execute(script)       several statements separated by ';', no parameters (migrations)
//   begin()                     a Transaction with the same five calls plus commit(), rollback() and
//                               begin() again for a savepoint; rolled back if destroyed uncommitted

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::db {

/// The calls a database and a transaction share.
template <class D>
concept Queryable = requires(D& db, std::string_view sql, std::int64_t id, std::string text) {
  { db.template query<std::int64_t>(sql, id, text) } -> std::same_as<Task<Result<std::vector<std::int64_t>, Error>>>;
  { db.template query_one<std::int64_t>(sql, id) } -> std::same_as<Task<Result<std::int64_t, Error>>>;
  { db.template query_opt<std::int64_t>(sql, text) } -> std::same_as<Task<Result<std::optional<std::int64_t>, Error>>>;
  { db.execute(sql, id) } -> std::same_as<Task<Result<std::uint64_t, Error>>>;
  { db.batch_execute(sql) } -> std::same_as<Task<Result<void, Error>>>;
};

/// A transaction: Queryable, plus its end. Destroying it uncommitted rolls it back.
template <class T>
concept Transaction = Queryable<T> && requires(T& tx) {
  { tx.commit() } -> std::same_as<Task<Result<void, Error>>>;
  { tx.rollback() } -> std::same_as<Task<Result<void, Error>>>;
};

/// A database handle a repository can hold: pg::Pool, sqlite::Database.
template <class D>
concept Database = Queryable<D> && requires(D& db) {
  typename D::Transaction;
  requires Transaction<typename D::Transaction>;
  { db.begin() } -> std::same_as<Task<Result<typename D::Transaction, Error>>>;
  { D::dialect } -> std::convertible_to<std::string_view>;  // "postgresql", "sqlite"
};

}  // namespace spindle::db
