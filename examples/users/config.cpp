#include "config.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <thread>

namespace users {
namespace {

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "users-server: %s\n", message.c_str());
  std::exit(2);
}

/// "postgres://ada:secret@db/app?password=x" -> "postgres://ada:***@db/app?password=***".
std::string without_password(std::string_view url) {
  std::string shown{url};
  const std::size_t scheme_end = shown.find("://");
  if (scheme_end == std::string::npos) return shown;
  const std::size_t authority = scheme_end + 3;
  const std::size_t at = shown.find('@', authority);
  const std::size_t slash = shown.find('/', authority);
  const std::size_t colon = shown.find(':', authority);
  if (at != std::string::npos && (slash == std::string::npos || at < slash) && colon != std::string::npos && colon < at)
    shown.replace(colon + 1, at - colon - 1, "***");
  // libpq also takes the password as a parameter of the query.
  for (std::size_t from = shown.find('?'); from != std::string::npos; from = shown.find('&', from + 1)) {
    constexpr std::string_view kKey = "password=";
    if (shown.compare(from + 1, kKey.size(), kKey) != 0) continue;
    const std::size_t value = from + 1 + kKey.size();
    const std::size_t end = shown.find('&', value);
    shown.replace(value, (end == std::string::npos ? shown.size() : end) - value, "***");
  }
  return shown;
}

}  // namespace

spindle::Result<DatabaseUrl, std::string> parse_database_url(std::string_view url) {
  DatabaseUrl parsed;
  parsed.display = without_password(url);
  if (url.starts_with("sqlite://")) {
    std::string_view path = url.substr(9);
    if (const std::size_t query = path.find_first_of("?#"); query != std::string_view::npos)
      return spindle::Err{std::string{"DATABASE_URL: sqlite:// URLs take no query or fragment: "} + std::string{url}};
    if (path.empty() || path == "/")
      return spindle::Err{std::string{"DATABASE_URL: no file in "} + std::string{url} +
                          " (sqlite://users.db or sqlite:///absolute/users.db)"};
    if (path == ":memory:")
      return spindle::Err{std::string{"DATABASE_URL: an in-memory database is not supported (give a file)"}};
    parsed.kind = DatabaseUrl::Kind::sqlite;
    parsed.sqlite_path = std::string{path};
    return parsed;
  }
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    parsed.kind = DatabaseUrl::Kind::postgres;
    parsed.postgres_url = std::string{url};
    return parsed;
  }
  const std::size_t scheme = url.find("://");
  return spindle::Err{std::string{"DATABASE_URL: "} +
                      (scheme == std::string_view::npos
                           ? "not a URL: \"" + parsed.display + "\""
                           : "unsupported scheme \"" + std::string{url.substr(0, scheme)} + "\"") +
                      " (expected sqlite://PATH or postgres://...)"};
}

Config parse_config(int argc, char** argv) {
  CLI::App app{
      "users-server: the users API (POST/GET/PUT/PATCH/DELETE /users), its live event feeds (/ws/events, "
      "/events), /healthz, /readyz, /metrics, and a web page at /.",
      "users-server"};
  app.get_formatter()->column_width(34);
  std::string listen;
  unsigned workers = std::max(1u, std::thread::hardware_concurrency());
  std::string database_url = "sqlite://users.db";
  std::size_t pool_size = 16;
  std::string log_level = "info";
  app.add_option("--listen", listen,
                 "address to listen on, HOST:PORT (port 0 picks a free one); default 0.0.0.0:$PORT if PORT "
                 "is set, else 127.0.0.1:8080");
  app.add_option("--workers", workers, "worker threads (default: one per core)")
      ->envname("WORKERS")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--database-url", database_url,
                 "sqlite://PATH (relative to the working directory), sqlite:///ABSOLUTE/PATH, or "
                 "postgres://USER:PASSWORD@HOST:PORT/DB; the SQLite file and the schema are created on first "
                 "start, the file's directory must exist")
      ->envname("DATABASE_URL")
      ->capture_default_str();
  app.add_option("--pool-size", pool_size, "PostgreSQL connections at most")
      ->envname("DATABASE_POOL_SIZE")
      ->check(CLI::Range(std::size_t{2}, std::size_t{1000}))
      ->capture_default_str();
  app.add_option("--log-level", log_level, "error, warn, info (one access-log line per request) or debug")
      ->envname("LOG_LEVEL")
      ->check(CLI::IsMember({"error", "warn", "info", "debug"}))
      ->capture_default_str();
  app.footer(
      "Environment: PORT, WORKERS, DATABASE_URL, DATABASE_POOL_SIZE and LOG_LEVEL stand in for the flags; a "
      "flag wins over its variable.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    std::exit(app.exit(help));
  } catch (const CLI::ParseError& error) {
    fail(error.what());
  }

  Config config;
  if (listen.empty()) {
    const char* port = std::getenv("PORT");
    listen = port != nullptr && *port != '\0' ? std::string{"0.0.0.0:"} + port : "127.0.0.1:8080";
  }
  auto address = spindle::SocketAddr::parse(listen);
  if (!address) fail("--listen " + listen + ": " + address.error());
  config.listen = *address;
  config.workers = workers;
  auto database = parse_database_url(database_url);
  if (!database) fail(database.error());
  config.database = std::move(*database);
  config.pool_size = pool_size;
  config.log_level = *parse_log_level(log_level);
  return config;
}

}  // namespace users
