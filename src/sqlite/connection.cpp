// spindle::sqlite: one connection (connection.hpp), and the column access the public row reader uses.

#include "connection.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <optional>
#include <vector>

namespace spindle::sqlite::detail {
namespace {

// Prepared statements kept per connection. Past this many distinct SQL texts (a program building SQL
// with values in it), the cache starts over rather than grow without bound.
constexpr std::size_t kMaxCachedStatements = 512;

db::Error query_error(std::string message) { return db::Error{db::Error::Kind::query, std::move(message), {}, {}}; }

/// What follows the first statement of a text may only separate or comment: `;`, space, `--`, `/* */`.
bool only_separators(std::string_view rest) {
  std::size_t at = 0;
  while (at < rest.size()) {
    const char c = rest[at];
    if (c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++at;
    } else if (rest.substr(at, 2) == "--") {
      const std::size_t end = rest.find('\n', at);
      at = end == std::string_view::npos ? rest.size() : end + 1;
    } else if (rest.substr(at, 2) == "/*") {
      const std::size_t end = rest.find("*/", at + 2);
      at = end == std::string_view::npos ? rest.size() : end + 2;
    } else {
      return false;
    }
  }
  return true;
}

/// "$3" -> 3; anything else (`?`, `?3`, `:name`, `$name`) -> nullopt.
std::optional<std::size_t> placeholder_number(const char* name) {
  if (name == nullptr || name[0] != '$') return std::nullopt;
  const std::string_view digits{name + 1};
  std::size_t number = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
  if (ec != std::errc{} || end != digits.data() + digits.size() || number == 0) return std::nullopt;
  return number;
}

/// The part after "...constraint failed: ", e.g. "users.email" or a CHECK's name or expression.
std::string constraint_of(std::string_view message) {
  constexpr std::string_view marker = "failed: ";
  const std::size_t at = message.find(marker);
  return at == std::string_view::npos ? std::string{} : std::string{message.substr(at + marker.size())};
}

}  // namespace

Result<std::unique_ptr<Connection>, db::Error> Connection::open(const Config& config, Role role) {
  auto failure = [&](std::string_view reason) {
    return db::Error{db::Error::Kind::connection,
                     "cannot open the SQLite database \"" + config.path + "\": " + std::string{reason},
                     {},
                     {}};
  };
  sqlite3* handle = nullptr;
  const int opened = sqlite3_open_v2(config.path.c_str(), &handle,
                                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (opened != SQLITE_OK) {
    const std::string reason = handle != nullptr ? sqlite3_errmsg(handle) : sqlite3_errstr(opened);
    sqlite3_close_v2(handle);
    return Err{failure(reason)};
  }
  std::unique_ptr<Connection> connection{new Connection(handle, config.busy_timeout)};
  Result<void, db::Error> configured = connection->configure(role);
  if (!configured) return Err{failure(configured.error().message)};
  return connection;
}

Result<void, db::Error> Connection::configure(Role role) {
  sqlite3_extended_result_codes(handle_, 1);
  sqlite3_busy_timeout(handle_, static_cast<int>(std::clamp<std::int64_t>(busy_timeout_.count(), 0, INT_MAX)));
  if (role == Role::writer) {
    // The pragma answers with the mode in effect: a file system without shared memory keeps another.
    sqlite3_stmt* pragma = nullptr;
    if (sqlite3_prepare_v2(handle_, "PRAGMA journal_mode=WAL", -1, &pragma, nullptr) != SQLITE_OK) return Err{error()};
    const int stepped = sqlite3_step(pragma);
    std::string mode;
    if (stepped == SQLITE_ROW) mode = std::string{column_text(pragma, 0)};
    const std::optional<db::Error> failed = stepped == SQLITE_ROW ? std::nullopt : std::optional{error()};
    sqlite3_finalize(pragma);
    if (failed) return Err{*failed};
    if (mode != "wal") return Err{query_error("it could not switch to WAL mode (journal_mode stayed " + mode + ")")};
  }
  const char* settings = role == Role::writer
                             ? "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
                             : "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA query_only=ON;";
  if (sqlite3_exec(handle_, settings, nullptr, nullptr, nullptr) != SQLITE_OK) return Err{error()};
  // Spindle's batches and transactions are the writer's; a BEGIN or COMMIT in user SQL would end them.
  if (role == Role::writer) sqlite3_set_authorizer(handle_, &Connection::authorize, this);
  return {};
}

int Connection::authorize(void* self, int action, const char*, const char*, const char*, const char*) noexcept {
  if (action != SQLITE_TRANSACTION && action != SQLITE_SAVEPOINT) return SQLITE_OK;
  return static_cast<Connection*>(self)->control_allowed_ ? SQLITE_OK : SQLITE_DENY;
}

Connection::~Connection() {
  clear_cache();
  for (auto& [sql, prepared] : control_cache_) sqlite3_finalize(prepared);
  sqlite3_close_v2(handle_);
}

void Connection::clear_cache() noexcept {
  for (auto& [sql, prepared] : cache_) sqlite3_finalize(prepared);
  cache_.clear();
}

Result<sqlite3_stmt*, db::Error> Connection::prepare(std::string_view sql) {
  if (auto found = cache_.find(sql); found != cache_.end()) return found->second;
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) return Err{query_error("the SQL text is too long")};
  if (cache_.size() >= kMaxCachedStatements) clear_cache();
  sqlite3_stmt* prepared = nullptr;
  const char* tail = nullptr;
  if (sqlite3_prepare_v3(handle_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &prepared,
                         &tail) != SQLITE_OK)
    return Err{error(sql)};
  if (prepared == nullptr) return Err{query_error("the SQL text holds no statement")};
  if (!only_separators(sql.substr(static_cast<std::size_t>(tail - sql.data())))) {
    sqlite3_finalize(prepared);
    return Err{query_error("the SQL text holds more than one statement (use batch_execute for a script): " +
                           std::string{sql.substr(0, 200)})};
  }
  cache_.emplace(std::string{sql}, prepared);
  return prepared;
}

void Connection::forget(std::string_view sql) noexcept {
  if (auto found = cache_.find(sql); found != cache_.end()) {
    sqlite3_finalize(found->second);
    cache_.erase(found);
  }
}

Result<void, db::Error> Connection::bind(sqlite3_stmt* prepared, const std::vector<Param>& params) {
  const int count = sqlite3_bind_parameter_count(prepared);
  std::vector<bool> used(params.size(), false);
  for (int index = 1; index <= count; ++index) {
    // SQLite numbers distinct names in order of appearance; the name says which argument it is.
    const char* name = sqlite3_bind_parameter_name(prepared, index);
    const std::optional<std::size_t> number = placeholder_number(name);
    if (!number)
      return Err{query_error(std::string{"placeholder "} + (name != nullptr ? name : "?") +
                             ": write placeholders as $1, $2, ...")};
    if (*number > params.size())
      return Err{query_error("the statement uses $" + std::to_string(*number) + ", but " +
                             std::to_string(params.size()) + " argument(s) were given")};
    used[*number - 1] = true;
    const Param& param = params[*number - 1];
    int bound = SQLITE_OK;
    if (std::holds_alternative<std::monostate>(param)) {
      bound = sqlite3_bind_null(prepared, index);
    } else if (const auto* integer = std::get_if<std::int64_t>(&param)) {
      bound = sqlite3_bind_int64(prepared, index, *integer);
    } else if (const auto* real = std::get_if<double>(&param)) {
      bound = sqlite3_bind_double(prepared, index, *real);
    } else if (const auto* text = std::get_if<std::string>(&param)) {
      // SQLITE_STATIC: the Statement owns the text until the statement is reset.
      bound = sqlite3_bind_text64(prepared, index, text->data(), text->size(), SQLITE_STATIC, SQLITE_UTF8);
    } else if (const auto* blob = std::get_if<db::Bytes>(&param)) {
      // An empty blob bound from a null pointer would be NULL.
      bound = blob->empty() ? sqlite3_bind_zeroblob(prepared, index, 0)
                            : sqlite3_bind_blob64(prepared, index, blob->data(), blob->size(), SQLITE_STATIC);
    }
    if (bound != SQLITE_OK) return Err{error()};
  }
  for (std::size_t i = 0; i < used.size(); ++i)
    if (!used[i])
      return Err{query_error(std::to_string(params.size()) + " argument(s) were given, but the statement has no $" +
                             std::to_string(i + 1))};
  return {};
}

Result<std::uint64_t, db::Error> Connection::run(sqlite3_stmt* prepared, Statement& statement) {
  struct ResetOnExit {
    sqlite3_stmt* prepared;
    ~ResetOnExit() {
      sqlite3_reset(prepared);
      sqlite3_clear_bindings(prepared);  // the bound text belongs to a Statement about to go
    }
  } reset{prepared};
  Result<void, db::Error> bound = bind(prepared, statement.params);
  if (!bound) return Err{bound.error()};
  Result<void, db::Error> started = statement.start(Columns{prepared});
  if (!started) return Err{started.error()};
  const bool read_only = sqlite3_stmt_readonly(prepared) != 0;
  const sqlite3_int64 changes_before = sqlite3_total_changes64(handle_);
  std::optional<db::Error> undecodable;
  for (;;) {
    const int stepped = sqlite3_step(prepared);
    if (stepped == SQLITE_DONE) break;
    if (stepped != SQLITE_ROW) return Err{error()};
    if (!undecodable && statement.wants_row()) {
      RowReader reader{prepared};
      Result<void, db::Error> added = statement.row(reader);
      if (!added) undecodable = added.error();
    }
    // A read may stop early; a write runs to the end so that it has done everything it says.
    if (read_only && (undecodable || !statement.wants_row())) break;
  }
  if (undecodable) return Err{std::move(*undecodable)};
  // sqlite3_changes64 keeps the count of the last INSERT, UPDATE or DELETE: after anything else it is stale.
  if (sqlite3_total_changes64(handle_) == changes_before) return std::uint64_t{0};
  return static_cast<std::uint64_t>(sqlite3_changes64(handle_));
}

Result<void, db::Error> Connection::control(std::string_view sql) {
  struct AllowControl {
    bool& allowed;
    explicit AllowControl(bool& flag) : allowed(flag) { allowed = true; }
    ~AllowControl() { allowed = false; }
  } allow{control_allowed_};
  // Kept apart from the user statements' cache, whose eviction could otherwise finalize a user
  // statement prepared just before its SAVEPOINT. The set is small: a few names per nesting depth.
  sqlite3_stmt* prepared = nullptr;
  if (auto found = control_cache_.find(sql); found != control_cache_.end()) {
    prepared = found->second;
  } else {
    if (sqlite3_prepare_v3(handle_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &prepared,
                           nullptr) != SQLITE_OK)
      return Err{error(sql)};
    control_cache_.emplace(std::string{sql}, prepared);
  }
  const int stepped = sqlite3_step(prepared);
  std::optional<db::Error> failed;
  if (stepped != SQLITE_DONE && stepped != SQLITE_ROW) failed = error();
  sqlite3_reset(prepared);
  if (failed) return Err{std::move(*failed)};
  return {};
}

Result<void, db::Error> Connection::exec_script(const std::string& script) {
  if (sqlite3_exec(handle_, script.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) return Err{error()};
  return {};
}

db::Error Connection::error(std::string_view context) const {
  const int code = sqlite3_extended_errcode(handle_);
  db::Error error{db::Error::Kind::query, sqlite3_errmsg(handle_), {}, {}};
  switch (code) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      error.kind = db::Error::Kind::unique_violation;
      error.constraint = constraint_of(error.message);
      break;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      error.kind = db::Error::Kind::foreign_key_violation;
      break;
    case SQLITE_CONSTRAINT_NOTNULL:
      error.kind = db::Error::Kind::not_null_violation;
      error.constraint = constraint_of(error.message);
      break;
    case SQLITE_CONSTRAINT_CHECK:
      error.kind = db::Error::Kind::check_violation;
      error.constraint = constraint_of(error.message);
      break;
    case SQLITE_AUTH:
      // Only the writer's authorizer denies anything, and only transaction control.
      error.message +=
          ": transaction control (BEGIN, COMMIT, SAVEPOINT...) belongs to Spindle; use begin(), "
          "commit() and rollback()";
      break;
    default:
      if ((code & 0xff) == SQLITE_BUSY || (code & 0xff) == SQLITE_LOCKED) {
        error.kind = db::Error::Kind::busy;
        error.message += " (still locked after the busy timeout of " + std::to_string(busy_timeout_.count()) + " ms)";
      }
      break;
  }
  if (!context.empty()) {
    error.message += " in: ";
    error.message += context.substr(0, 200);
  }
  return error;
}

bool is_plain_read(sqlite3_stmt* prepared) noexcept {
  return sqlite3_stmt_readonly(prepared) != 0 && sqlite3_column_count(prepared) > 0;
}

// The public row reader's access to the current row (spindle/sqlite/database.hpp).

int column_count(sqlite3_stmt* statement) noexcept { return sqlite3_column_count(statement); }

std::string_view column_name(sqlite3_stmt* statement, int column) noexcept {
  const char* name = sqlite3_column_name(statement, column);
  return name != nullptr ? std::string_view{name} : std::string_view{};
}

ColumnType column_type(sqlite3_stmt* statement, int column) noexcept {
  switch (sqlite3_column_type(statement, column)) {
    case SQLITE_INTEGER:
      return ColumnType::integer;
    case SQLITE_FLOAT:
      return ColumnType::real;
    case SQLITE_TEXT:
      return ColumnType::text;
    case SQLITE_BLOB:
      return ColumnType::blob;
    default:
      return ColumnType::null;
  }
}

std::int64_t column_integer(sqlite3_stmt* statement, int column) noexcept {
  return sqlite3_column_int64(statement, column);
}

double column_real(sqlite3_stmt* statement, int column) noexcept { return sqlite3_column_double(statement, column); }

std::string_view column_text(sqlite3_stmt* statement, int column) noexcept {
  const unsigned char* text = sqlite3_column_text(statement, column);
  const int size = sqlite3_column_bytes(statement, column);  // after the text: the conversion may change it
  if (text == nullptr) return {};
  return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(size)};
}

std::span<const std::byte> column_blob(sqlite3_stmt* statement, int column) noexcept {
  const void* blob = sqlite3_column_blob(statement, column);
  const int size = sqlite3_column_bytes(statement, column);
  if (blob == nullptr) return {};
  return {static_cast<const std::byte*>(blob), static_cast<std::size_t>(size)};
}

db::Error column_error(sqlite3_stmt* statement, int column, std::string_view problem) {
  std::string message = "column \"";
  message += column_name(statement, column);
  message += "\": ";
  message += problem;
  return db::Error{db::Error::Kind::decode, std::move(message), {}, {}};
}

db::Error type_mismatch(sqlite3_stmt* statement, int column, std::string_view wanted) {
  std::string problem;
  switch (column_type(statement, column)) {
    case ColumnType::null:
      return column_error(statement, column,
                          "NULL cannot be read as " + std::string{wanted} + " (read it into a std::optional)");
    case ColumnType::integer:
      problem = "INTEGER";
      break;
    case ColumnType::real:
      problem = "REAL";
      break;
    case ColumnType::text:
      problem = "TEXT";
      break;
    case ColumnType::blob:
      problem = "BLOB";
      break;
  }
  problem += " cannot be read as ";
  problem += wanted;
  return column_error(statement, column, problem);
}

}  // namespace spindle::sqlite::detail
