#pragma once
// The service's configuration: flags, each with an environment variable behind it, checked before
// anything starts so that a mistake costs one clear line and a non-zero exit.

#include <spindle/net/socket_address.hpp>

#include <cstddef>
#include <string>
#include <string_view>

#include "log.hpp"
#include "spindle/result.hpp"

namespace users {

/// Where the users live, from DATABASE_URL.
struct DatabaseUrl {
  enum class Kind { sqlite, postgres };
  Kind kind = Kind::sqlite;
  /// SQLite: the file ("sqlite://users.db" is ./users.db, "sqlite:///var/lib/users.db" is absolute).
  std::string sqlite_path;
  /// PostgreSQL: the URL as given, for libpq.
  std::string postgres_url;
  /// The URL without its password, for logs.
  std::string display;
};

/// Parses sqlite://PATH or postgres[ql]://...; an error says what is wrong with it.
spindle::Result<DatabaseUrl, std::string> parse_database_url(std::string_view url);

struct Config {
  spindle::SocketAddr listen;
  unsigned workers = 1;
  DatabaseUrl database;
  std::size_t pool_size = 16;
  LogLevel log_level = LogLevel::info;
};

/// The configuration from the command line and the environment. Prints the help and exits 0 for
/// --help; prints one line and exits 2 for anything wrong.
Config parse_config(int argc, char** argv);

}  // namespace users
