#include "backend.hpp"

#include <spindle/http/metrics.hpp>
#include <spindle/pg.hpp>
#include <spindle/sqlite.hpp>

#include <filesystem>
#include <system_error>

#include "log.hpp"

namespace users {

namespace prometheus = spindle::http::prometheus;

template <>
void DbUserStore<spindle::pg::Pool>::write_metrics(std::string& out) const {
  const spindle::pg::PoolStats stats = db_.stats();
  prometheus::write_gauge(out, "spindle_db_pool_connections", "PostgreSQL connections open",
                          static_cast<double>(stats.connections));
  prometheus::write_gauge(out, "spindle_db_pool_leased", "connections held by a transaction or an exclusive query",
                          static_cast<double>(stats.leased));
  prometheus::write_gauge(out, "spindle_db_pool_in_flight", "queries sent and not yet answered",
                          static_cast<double>(stats.in_flight));
  prometheus::write_counter(out, "spindle_db_pool_connects_total", "connections opened (reconnections included)",
                            static_cast<double>(stats.connects));
}

template <>
void DbUserStore<spindle::sqlite::Database>::write_metrics(std::string& out) const {
  const spindle::sqlite::Stats stats = db_.stats();
  prometheus::write_counter(out, "spindle_db_writes_total", "SQLite statements run by the writer",
                            static_cast<double>(stats.writes));
  prometheus::write_counter(out, "spindle_db_write_batches_total", "SQLite transactions the writes were committed in",
                            static_cast<double>(stats.write_batches));
}

namespace {

spindle::Task<spindle::Result<Backend, std::string>> migrated(Backend backend, std::string display) {
  auto migrating = backend.store->migrate();
  spindle::Result<spindle::db::MigrationReport, spindle::db::Error> report = co_await std::move(migrating);
  if (!report) co_return spindle::Err{"cannot set up the schema in " + display + ": " + report.error().message};
  if (report->applied > 0)
    log(LogLevel::info, "schema of " + display + " brought from version " + std::to_string(report->from_version) +
                            " to " + std::to_string(report->to_version));
  co_return std::move(backend);
}

spindle::Task<spindle::Result<Backend, std::string>> open_sqlite(DatabaseUrl url) {
  const std::filesystem::path file{url.sqlite_path};
  const std::filesystem::path directory = file.has_parent_path() ? file.parent_path() : ".";
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error))
    co_return spindle::Err{"DATABASE_URL " + url.display + ": the directory " + directory.string() +
                           " does not exist (it is not created for you)"};
  spindle::sqlite::Config config;
  config.path = url.sqlite_path;
  auto opening = spindle::sqlite::Database::open(config);
  spindle::Result<spindle::sqlite::Database, spindle::db::Error> database = co_await std::move(opening);
  if (!database) co_return spindle::Err{"cannot open " + url.display + ": " + database.error().message};
  std::shared_ptr<Events> events = local_events();
  Backend backend{std::make_shared<DbUserStore<spindle::sqlite::Database>>(std::move(*database), events), events};
  auto migrating = migrated(std::move(backend), url.display);
  spindle::Result<Backend, std::string> ready = co_await std::move(migrating);
  co_return ready;
}

spindle::Task<spindle::Result<Backend, std::string>> open_postgres(DatabaseUrl url, std::size_t pool_size) {
  spindle::pg::PoolConfig config;
  config.url = url.postgres_url;
  config.max_size = pool_size;
  config.query_timeout = std::chrono::seconds(10);
  auto connecting = spindle::pg::Pool::connect(config);
  spindle::Result<spindle::pg::Pool, spindle::db::Error> pool = co_await std::move(connecting);
  if (!pool) co_return spindle::Err{"cannot connect to " + url.display + ": " + pool.error().message};
  auto listening = postgres_events(*pool);
  spindle::Result<std::unique_ptr<Events>, spindle::db::Error> events = co_await std::move(listening);
  if (!events) co_return spindle::Err{"cannot listen for events on " + url.display + ": " + events.error().message};
  std::shared_ptr<Events> feed = std::move(*events);
  Backend backend{std::make_shared<DbUserStore<spindle::pg::Pool>>(*pool, feed), feed};
  auto migrating = migrated(std::move(backend), url.display);
  spindle::Result<Backend, std::string> ready = co_await std::move(migrating);
  co_return ready;
}

}  // namespace

spindle::Task<spindle::Result<Backend, std::string>> open_backend(const Config& config) {
  if (config.database.kind == DatabaseUrl::Kind::sqlite) return open_sqlite(config.database);
  return open_postgres(config.database, config.pool_size);
}

}  // namespace users
