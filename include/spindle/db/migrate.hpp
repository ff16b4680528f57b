#pragma once
// Versioned SQL migrations, applied at start in one transaction and recorded in a table
// (spindle_migrations), for any db::Database.
//
//   constexpr db::Migration kMigrations[] = {
//       {1, "create users", "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, email TEXT UNIQUE NOT NULL)"},
//       {2, "add name", "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT ''"},
//   };
//   auto applied = co_await db::migrate(pool, kMigrations);   // Result<MigrationReport, db::Error>
//
// Versions are positive and increasing. A database already at a version this binary does not know (a
// newer binary migrated it) is refused with Error::Kind::migration rather than run against a schema the
// code was not written for. Two processes starting at once do not both migrate: PostgreSQL locks the
// table for the transaction, SQLite's writer transaction (BEGIN IMMEDIATE) excludes the other writer.

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spindle/db/database.hpp"
#include "spindle/db/value.hpp"

namespace spindle::db {

struct Migration {
  std::int64_t version;
  std::string_view name;
  std::string_view sql;  ///< one or more statements separated by ';'
};

struct MigrationReport {
  std::int64_t from_version = 0;  ///< the database's version before
  std::int64_t to_version = 0;    ///< and after
  int applied = 0;                ///< migrations run now
};

namespace detail {
/// The migrations' own checks: versions positive and strictly increasing.
Result<void, Error> check_migration_list(std::span<const Migration> migrations);
std::string migration_too_new_message(std::int64_t database_version, std::int64_t binary_version);
}  // namespace detail

/// Brings `db` up to the last of `migrations`. See the top of this header.
template <Database Db>
Task<Result<MigrationReport, Error>> migrate(Db& db, std::span<const Migration> migrations) {
  Result<void, Error> valid = detail::check_migration_list(migrations);
  if (!valid) co_return Err{valid.error()};
  constexpr std::string_view kCreateTable =
      "CREATE TABLE IF NOT EXISTS spindle_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, "
      "applied_at TEXT NOT NULL)";
  Result<void, Error> table = co_await db.batch_execute(kCreateTable);
  // Two PostgreSQL instances creating it at the same instant: one fails with a unique violation on the
  // catalog, after which the table exists.
  if (!table && table.error().kind == Error::Kind::unique_violation) table = co_await db.batch_execute(kCreateTable);
  if (!table) co_return Err{table.error()};

  Result<typename Db::Transaction, Error> begun = co_await db.begin();
  if (!begun) co_return Err{std::move(begun).error()};
  typename Db::Transaction& tx = *begun;
  if constexpr (std::string_view{Db::dialect} == "postgresql") {
    Result<void, Error> locked = co_await tx.batch_execute("LOCK TABLE spindle_migrations IN EXCLUSIVE MODE");
    if (!locked) co_return Err{locked.error()};
  }
  Result<std::int64_t, Error> current =
      co_await tx.template query_one<std::int64_t>("SELECT COALESCE(MAX(version), 0) FROM spindle_migrations");
  if (!current) co_return Err{std::move(current).error()};

  MigrationReport report;
  report.from_version = report.to_version = *current;
  const std::int64_t latest = migrations.empty() ? 0 : migrations.back().version;
  if (*current > latest)
    co_return Err{Error{Error::Kind::migration, detail::migration_too_new_message(*current, latest), {}, {}}};

  for (const Migration& migration : migrations) {
    if (migration.version <= *current) continue;
    Task<Result<void, Error>> script = tx.batch_execute(migration.sql);
    Result<void, Error> ran = co_await std::move(script);
    if (!ran)
      co_return Err{Error{Error::Kind::migration,
                          "migration " + std::to_string(migration.version) + " (" + std::string{migration.name} +
                              ") failed: " + ran.error().message,
                          ran.error().sqlstate, ran.error().constraint}};
    const std::string applied_at =
        format_timestamp(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()));
    Task<Result<std::uint64_t, Error>> record =
        tx.execute("INSERT INTO spindle_migrations (version, name, applied_at) VALUES ($1, $2, $3)", migration.version,
                   migration.name, applied_at);
    Result<std::uint64_t, Error> recorded = co_await std::move(record);
    if (!recorded) co_return Err{std::move(recorded).error()};
    report.to_version = migration.version;
    ++report.applied;
  }
  Result<void, Error> committed = co_await tx.commit();
  if (!committed) co_return Err{committed.error()};
  co_return report;
}

}  // namespace spindle::db
