// spindle::sqlite against real database files, one fresh directory per test. Coroutines throw
// std::runtime_error when a call that must succeed fails (block_on rethrows it, and the test fails with
// the database's message); expected failures are checked with EXPECT_*.

#include "spindle/sqlite/database.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <array>
#include <atomic>
#include <boost/describe.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "spindle/db/migrate.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "support/co_assert.hpp"

static_assert(spindle::db::Database<spindle::sqlite::Database>);
static_assert(spindle::db::Transaction<spindle::sqlite::Transaction>);

namespace {

namespace db = spindle::db;
namespace sqlite = spindle::sqlite;
using namespace std::chrono_literals;
using spindle::Result;
using spindle::Runtime;
using spindle::Task;
using Kind = db::Error::Kind;

enum class Role { admin, member };
BOOST_DESCRIBE_ENUM(Role, admin, member)

struct Everything {
  bool flag;
  std::int8_t tiny;
  std::int16_t small;
  std::int32_t medium;
  std::int64_t big;
  std::uint8_t ubyte;
  std::uint16_t ushort;
  std::uint32_t uint;
  std::uint64_t ubig;
  float single;
  double real;
  std::string text;
  std::string view;
  std::string cstr;
  db::Bytes blob;
  db::Bytes empty_blob;
  db::Timestamp at;
  db::Uuid id;
  Role role;
  std::optional<std::string> note;
  std::optional<std::int64_t> maybe;
  std::optional<std::string> absent;
};
BOOST_DESCRIBE_STRUCT(Everything, (),
                      (flag, tiny, small, medium, big, ubyte, ushort, uint, ubig, single, real, text, view, cstr, blob,
                       empty_blob, at, id, role, note, maybe, absent))

struct Named {
  std::int64_t id;
  std::string name;
};
BOOST_DESCRIBE_STRUCT(Named, (), (id, name))

struct MaybeNicknamed {
  std::int64_t id;
  std::optional<std::string> nickname;
};
BOOST_DESCRIBE_STRUCT(MaybeNicknamed, (), (id, nickname))

/// A fresh directory, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "spindle-sqlite-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  sqlite::Config config(std::string_view file = "test.db") const {
    sqlite::Config config;
    config.path = (path_ / file).string();
    return config;
  }

 private:
  std::filesystem::path path_;
};

template <class T>
T must(Result<T, db::Error> result, std::string_view what) {
  if (!result) throw std::runtime_error(std::string{what} + ": " + result.error().to_string());
  return std::move(*result);
}

// The calls' results, awaited into named locals as docs/architecture.md asks of GCC 12 code: `ok` gives
// the value or throws, `expect_error` checks a failure's kind and the parts its message must contain.
template <class T>
Task<T> ok(Task<Result<T, db::Error>> task, std::string_view what) {
  Result<T, db::Error> result = co_await std::move(task);
  co_return must(std::move(result), what);
}
Task<void> ok(Task<Result<void, db::Error>> task, std::string_view what) {
  Result<void, db::Error> result = co_await std::move(task);
  if (!result) throw std::runtime_error(std::string{what} + ": " + result.error().to_string());
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

template <class T, class... Parts>
Task<void> expect_error(Task<Result<T, db::Error>> task, Kind kind, Parts... parts) {
  Result<T, db::Error> result = co_await std::move(task);
  EXPECT_FALSE(result.has_value()) << "expected " << db::to_string(kind);
  if (result) co_return;
  EXPECT_EQ(db::to_string(result.error().kind), db::to_string(kind)) << result.error().message;
  const std::array<std::string_view, sizeof...(Parts)> wanted{std::string_view{parts}...};
  for (std::string_view part : wanted) EXPECT_TRUE(contains(result.error().message, part)) << result.error().message;
}

Task<sqlite::Database> open(sqlite::Config config) {
  auto opening = sqlite::Database::open(std::move(config));
  Result<sqlite::Database, db::Error> opened = co_await std::move(opening);
  co_return must(std::move(opened), "open");
}

Task<std::int64_t> count_rows(sqlite::Database& db, std::string_view table) {
  auto counting = db.query_one<std::int64_t>("SELECT count(*) FROM " + std::string{table});
  Result<std::int64_t, db::Error> counted = co_await std::move(counting);
  co_return must(std::move(counted), "count");
}

// 1. Every parameter type into a table, and back as a described struct, a tuple and scalars.
TEST(SqliteDatabase, EveryParameterTypeRoundTrips) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute(
                    "CREATE TABLE everything (flag INTEGER, tiny INTEGER, small INTEGER, medium INTEGER, big INTEGER, "
                    "ubyte INTEGER, ushort INTEGER, uint INTEGER, ubig INTEGER, single REAL, real REAL, text TEXT, "
                    "view TEXT, cstr TEXT, blob BLOB, empty_blob BLOB, at TEXT, id TEXT, role TEXT, note TEXT, "
                    "maybe INTEGER, absent TEXT)"),
                "create");

    const db::Timestamp at =
        db::Timestamp{std::chrono::sys_days{std::chrono::year{2026} / 11 / 24}} + 21h + 56min + 48s + 123456us;
    const db::Uuid id = *db::Uuid::parse("123e4567-e89b-12d3-a456-426614174000");
    const db::Bytes blob{std::byte{0}, std::byte{1}, std::byte{0xff}};
    const std::string text = "h\xc3\xa9llo, 'quoted' \"text\"";
    const std::string_view view = "a view";
    const char* cstr = "a C string";
    const std::optional<std::string> note = "a note";
    const std::optional<std::int64_t> maybe;
    auto inserting = db.execute(
        "INSERT INTO everything VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
        "$18, $19, $20, $21, $22)",
        true, std::int8_t{-128}, std::int16_t{-32768}, std::numeric_limits<std::int32_t>::min(),
        std::numeric_limits<std::int64_t>::min(), std::uint8_t{255}, std::uint16_t{65535},
        std::numeric_limits<std::uint32_t>::max(), std::uint64_t{std::numeric_limits<std::int64_t>::max()}, 1.5f, -2.25,
        text, view, cstr, blob, db::Bytes{}, at, id, Role::member, note, maybe, std::nullopt);
    const std::uint64_t inserted = co_await ok(std::move(inserting), "insert");
    EXPECT_EQ(inserted, 1u);

    auto selecting = db.query_one<Everything>("SELECT * FROM everything");
    const Everything row = co_await ok(std::move(selecting), "select struct");
    EXPECT_TRUE(row.flag);
    EXPECT_EQ(row.tiny, -128);
    EXPECT_EQ(row.small, -32768);
    EXPECT_EQ(row.medium, std::numeric_limits<std::int32_t>::min());
    EXPECT_EQ(row.big, std::numeric_limits<std::int64_t>::min());
    EXPECT_EQ(row.ubyte, 255);
    EXPECT_EQ(row.ushort, 65535);
    EXPECT_EQ(row.uint, std::numeric_limits<std::uint32_t>::max());
    EXPECT_EQ(row.ubig, static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()));
    EXPECT_EQ(row.single, 1.5f);
    EXPECT_EQ(row.real, -2.25);
    EXPECT_EQ(row.text, text);
    EXPECT_EQ(row.view, view);
    EXPECT_EQ(row.cstr, cstr);
    EXPECT_EQ(row.blob, blob);
    EXPECT_TRUE(row.empty_blob.empty());
    EXPECT_EQ(row.at, at);
    EXPECT_EQ(row.id, id);
    EXPECT_EQ(row.role, Role::member);
    EXPECT_EQ(row.note, note);
    EXPECT_EQ(row.maybe, std::nullopt);
    EXPECT_EQ(row.absent, std::nullopt);

    // What SQLite stored: the storage classes and the text forms.
    using Stored = std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
    auto storing = db.query_one<Stored>(
        "SELECT typeof(flag), typeof(blob), typeof(empty_blob), typeof(absent), at, role FROM everything");
    const Stored stored = co_await ok(std::move(storing), "typeof");
    EXPECT_EQ(stored, Stored("integer", "blob", "blob", "null", "2026-11-24T21:56:48.123456Z", "member"));

    using Some = std::tuple<bool, std::int8_t, std::string, db::Bytes, std::optional<std::int64_t>, db::Uuid>;
    auto tupling = db.query_one<Some>("SELECT flag, tiny, text, blob, maybe, id FROM everything");
    const Some some = co_await ok(std::move(tupling), "select tuple");
    EXPECT_EQ(some, Some(true, -128, text, blob, std::nullopt, id));

    auto timing = db.query_one<db::Timestamp>("SELECT at FROM everything");
    const db::Timestamp scalar_time = co_await ok(std::move(timing), "timestamp");
    EXPECT_EQ(scalar_time, at);
    auto roling = db.query_one<Role>("SELECT role FROM everything");
    const Role scalar_role = co_await ok(std::move(roling), "enum");
    EXPECT_EQ(scalar_role, Role::member);
    auto texting = db.query<std::string>("SELECT text FROM everything UNION ALL SELECT view FROM everything");
    const std::vector<std::string> texts = co_await ok(std::move(texting), "strings");
    EXPECT_EQ(texts, (std::vector<std::string>{text, std::string{view}}));
    auto nulling = db.query_one<std::optional<std::string>>("SELECT absent FROM everything");
    const std::optional<std::string> null_text = co_await ok(std::move(nulling), "null");
    EXPECT_EQ(null_text, std::nullopt);
    auto widening = db.query_one<double>("SELECT big FROM everything");  // INTEGER into double
    const double widened = co_await ok(std::move(widening), "double");
    EXPECT_EQ(widened, static_cast<double>(std::numeric_limits<std::int64_t>::min()));

    // A uint64 beyond INT64_MAX is refused before anything runs.
    auto overflowing =
        db.execute("INSERT INTO everything (ubig) VALUES ($1)", std::numeric_limits<std::uint64_t>::max());
    co_await expect_error(std::move(overflowing), Kind::query, "$1", "18446744073709551615");
    const std::int64_t rows = co_await count_rows(db, "everything");
    EXPECT_EQ(rows, 1);
  }(dir.config()));
}

// 1. Decoding is strict and names the column.
TEST(SqliteDatabase, DecodeErrorsNameTheColumnAndTheTypes) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    auto too_big = db.query_one<std::int8_t>("SELECT 300 AS n");
    co_await expect_error(std::move(too_big), Kind::decode, "\"n\"", "300", "int8");
    auto negative = db.query_one<std::uint32_t>("SELECT -1 AS n");
    co_await expect_error(std::move(negative), Kind::decode, "\"n\"", "-1", "uint32");
    auto null_string = db.query_one<std::string>("SELECT NULL AS name");
    co_await expect_error(std::move(null_string), Kind::decode, "\"name\"", "NULL", "std::optional");
    auto text_for_integer = db.query_one<std::int64_t>("SELECT 'seven' AS n");
    co_await expect_error(std::move(text_for_integer), Kind::decode, "\"n\"", "TEXT", "int64");
    auto integer_for_text = db.query_one<std::string>("SELECT 7 AS s");
    co_await expect_error(std::move(integer_for_text), Kind::decode, "\"s\"", "INTEGER", "std::string");
    auto not_a_bool = db.query_one<bool>("SELECT 2 AS b");
    co_await expect_error(std::move(not_a_bool), Kind::decode, "\"b\"", "bool");
    auto not_a_time = db.query_one<db::Timestamp>("SELECT 'yesterday' AS t");
    co_await expect_error(std::move(not_a_time), Kind::decode, "\"t\"", "yesterday", "RFC 3339");
    auto not_a_role = db.query_one<Role>("SELECT 'owner' AS r");
    co_await expect_error(std::move(not_a_role), Kind::decode, "\"r\"", "owner", "admin, member");
    auto null_in_struct = db.query_one<Named>("SELECT 1 AS id, NULL AS name");
    co_await expect_error(std::move(null_in_struct), Kind::decode, "\"name\"", "NULL");

    // A member without its column: an error, unless the member is optional.
    auto missing = db.query_one<Named>("SELECT 1 AS id");
    co_await expect_error(std::move(missing), Kind::decode, "\"name\"");
    auto absent_optional = db.query_one<MaybeNicknamed>("SELECT 5 AS id");
    const MaybeNicknamed nicknamed = co_await ok(std::move(absent_optional), "optional member");
    EXPECT_EQ(nicknamed.id, 5);
    EXPECT_EQ(nicknamed.nickname, std::nullopt);
    auto columns_by_name = db.query_one<Named>("SELECT 'ada' AS name, 9 AS id");  // order does not matter
    const Named named = co_await ok(std::move(columns_by_name), "by name");
    EXPECT_EQ(named.id, 9);
    EXPECT_EQ(named.name, "ada");
  }(dir.config()));
}

// 2. query_one, query_opt, execute's count, placeholders.
TEST(SqliteDatabase, QueryOneQueryOptExecuteAndPlaceholders) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    auto creating = db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)");
    const std::uint64_t created = co_await ok(std::move(creating), "create");
    EXPECT_EQ(created, 0u);  // DDL changes no rows

    auto nothing = db.query_one<Named>("SELECT id, name FROM t WHERE id = $1", 1);
    co_await expect_error(std::move(nothing), Kind::not_found);
    auto optional = db.query_opt<Named>("SELECT id, name FROM t WHERE id = $1", 1);
    const std::optional<Named> absent = co_await ok(std::move(optional), "query_opt");
    EXPECT_FALSE(absent.has_value());

    for (int i = 1; i <= 3; ++i) {
      auto inserting = db.execute("INSERT INTO t (id, name) VALUES ($1, $2)", i, "n" + std::to_string(i));
      const std::uint64_t inserted = co_await ok(std::move(inserting), "insert");
      EXPECT_EQ(inserted, 1u);
    }
    auto found = db.query_opt<Named>("SELECT id, name FROM t WHERE id = $1", 2);
    const std::optional<Named> two = co_await ok(std::move(found), "query_opt");
    EXPECT_TRUE(two && two->name == "n2");
    auto firsting = db.query_one<std::int64_t>("SELECT id FROM t ORDER BY id");  // the first of several
    const std::int64_t first = co_await ok(std::move(firsting), "first");
    EXPECT_EQ(first, 1);
    auto updating = db.execute("UPDATE t SET name = $1", "same");
    const std::uint64_t updated = co_await ok(std::move(updating), "update");
    EXPECT_EQ(updated, 3u);
    auto deleting = db.execute("DELETE FROM t WHERE id > $1", 1);
    const std::uint64_t deleted = co_await ok(std::move(deleting), "delete");
    EXPECT_EQ(deleted, 2u);
    auto selecting = db.execute("SELECT * FROM t");  // a read through execute changes nothing
    const std::uint64_t selected = co_await ok(std::move(selecting), "select via execute");
    EXPECT_EQ(selected, 0u);

    auto reversing = db.query_one<std::string>("SELECT $2 || '-' || $1", "a", "b");
    const std::string reversed = co_await ok(std::move(reversing), "$2 $1");
    EXPECT_EQ(reversed, "b-a");
    auto doubling = db.query_one<std::int64_t>("SELECT $1 + $1", 21);
    const std::int64_t doubled = co_await ok(std::move(doubling), "$1 twice");
    EXPECT_EQ(doubled, 42);

    // The SQL and the arguments are copied when the call is made: the temporaries are gone by the await.
    std::string sql = "SELECT $1 || $2";
    auto copying = db.query_one<std::string>(sql, std::string("tem"), std::string_view{std::string("porary")});
    sql = "garbage";
    const std::string copied = co_await ok(std::move(copying), "copied");
    EXPECT_EQ(copied, "temporary");

    auto too_few = db.query<std::int64_t>("SELECT $1 + $2", 1);
    co_await expect_error(std::move(too_few), Kind::query, "$2");
    auto too_many = db.query<std::int64_t>("SELECT $1 + $2", 1, 2, 3);
    co_await expect_error(std::move(too_many), Kind::query, "$3");
    auto question_mark = db.query<std::int64_t>("SELECT ?", 1);
    co_await expect_error(std::move(question_mark), Kind::query, "$1, $2");
    auto two_statements = db.execute("INSERT INTO t (id) VALUES (10); INSERT INTO t (id) VALUES (11)");
    co_await expect_error(std::move(two_statements), Kind::query, "batch_execute");
    auto syntax = db.query<std::int64_t>("SELEC 1");
    co_await expect_error(std::move(syntax), Kind::query, "syntax error");
    auto transaction_control = db.execute("BEGIN");
    co_await expect_error(std::move(transaction_control), Kind::query, "begin()");
    auto script_control = db.batch_execute("INSERT INTO t (id) VALUES (12); COMMIT");
    co_await expect_error(std::move(script_control), Kind::query, "begin()");
    const std::int64_t rows = co_await count_rows(db, "t");
    EXPECT_EQ(rows, 1);  // nothing of the refused calls was kept
  }(dir.config()));
}

// 3. Constraint violations are typed, and the database carries on.
Task<void> expect_violation(Task<Result<std::uint64_t, db::Error>> task, Kind kind, std::string_view constraint) {
  Result<std::uint64_t, db::Error> result = co_await std::move(task);
  EXPECT_FALSE(result.has_value());
  if (result) co_return;
  EXPECT_EQ(db::to_string(result.error().kind), db::to_string(kind)) << result.error().message;
  EXPECT_EQ(result.error().constraint, constraint) << result.error().message;
  EXPECT_TRUE(contains(result.error().message, "constraint failed")) << result.error().message;
}

TEST(SqliteDatabase, ConstraintViolationsAreTyped) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute(
                    "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, age INTEGER CHECK (age >= "
                    "0)); CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users (id))"),
                "schema");
    auto first = db.execute("INSERT INTO users (id, email, age) VALUES ($1, $2, $3)", 1, "ada@example.com", 36);
    co_await ok(std::move(first), "first insert");

    auto same_email = db.execute("INSERT INTO users (id, email) VALUES ($1, $2)", 2, "ada@example.com");
    co_await expect_violation(std::move(same_email), Kind::unique_violation, "users.email");
    auto same_id = db.execute("INSERT INTO users (id, email) VALUES ($1, $2)", 1, "bob@example.com");
    co_await expect_violation(std::move(same_id), Kind::unique_violation, "users.id");
    auto no_email = db.execute("INSERT INTO users (id, email) VALUES ($1, $2)", 3, std::nullopt);
    co_await expect_violation(std::move(no_email), Kind::not_null_violation, "users.email");
    auto negative_age = db.execute("INSERT INTO users (id, email, age) VALUES ($1, $2, $3)", 4, "c@example.com", -1);
    co_await expect_violation(std::move(negative_age), Kind::check_violation, "age >= 0");
    auto orphan = db.execute("INSERT INTO posts (id, user_id) VALUES ($1, $2)", 1, 999);
    co_await expect_violation(std::move(orphan), Kind::foreign_key_violation, "");

    // Still working: a valid insert into each table.
    auto second = db.execute("INSERT INTO users (id, email) VALUES ($1, $2)", 2, "bob@example.com");
    const std::uint64_t users = co_await ok(std::move(second), "after the violations");
    EXPECT_EQ(users, 1u);
    auto post = db.execute("INSERT INTO posts (id, user_id) VALUES ($1, $2)", 1, 2);
    const std::uint64_t posts = co_await ok(std::move(post), "post");
    EXPECT_EQ(posts, 1u);
    const std::int64_t rows = co_await count_rows(db, "users");
    EXPECT_EQ(rows, 2);
  }(dir.config()));
}

// 4. Many tasks on two workers writing at once: all succeed, and they are committed in batches.
TEST(SqliteDatabase, ConcurrentWritesFromManyTasksAreBatched) {
  TempDir dir;
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT NOT NULL)"), "create");
    const sqlite::Stats before = db.stats();

    constexpr int kTasks = 200;
    std::vector<spindle::JoinHandle<Result<std::uint64_t, db::Error>>> handles;
    for (int i = 0; i < kTasks; ++i)
      handles.push_back(
          spindle::spawn(db.execute("INSERT INTO items (id, label) VALUES ($1, $2)", i, "item " + std::to_string(i))));
    int succeeded = 0;
    for (auto& handle : handles) {
      auto joined = co_await std::move(handle);
      CO_ASSERT(joined.has_value());
      if (*joined)
        ++succeeded;
      else
        ADD_FAILURE() << joined->error().to_string();
    }
    EXPECT_EQ(succeeded, kTasks);
    const std::int64_t rows = co_await count_rows(db, "items");
    EXPECT_EQ(rows, kTasks);
    const sqlite::Stats after = db.stats();
    EXPECT_EQ(after.writes - before.writes, static_cast<std::uint64_t>(kTasks));
    EXPECT_LT(after.write_batches - before.write_batches, after.writes - before.writes);
  }(dir.config()));
}

// 4. A batch in which one write fails: the others commit. A transaction holds the writer while the writes
// queue up, so they are certain to share one batch.
TEST(SqliteDatabase, OneFailingWriteInABatchLosesNothingElse) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE items (label TEXT PRIMARY KEY)"), "create");
    constexpr std::string_view insert = "INSERT INTO items (label) VALUES ($1)";
    co_await ok(db.execute(insert, "taken"), "first");  // also teaches the database that this SQL writes

    sqlite::Transaction tx = co_await ok(db.begin(), "begin");
    std::vector<spindle::JoinHandle<Result<std::uint64_t, db::Error>>> handles;
    for (int i = 0; i < 10; ++i) {
      handles.push_back(spindle::spawn(db.execute(insert, "label " + std::to_string(i))));
      if (i == 4) handles.push_back(spindle::spawn(db.execute(insert, "taken")));  // the duplicate, mid-batch
    }
    co_await spindle::sleep(50ms);  // every task runs and queues its write behind the transaction
    for (auto& handle : handles) EXPECT_FALSE(handle.is_finished());
    const sqlite::Stats before = db.stats();
    co_await ok(tx.commit(), "commit");

    int succeeded = 0;
    int duplicates = 0;
    for (auto& handle : handles) {
      auto joined = co_await std::move(handle);
      CO_ASSERT(joined.has_value());
      if (*joined)
        ++succeeded;
      else if (joined->error().kind == Kind::unique_violation)
        ++duplicates;
      else
        ADD_FAILURE() << joined->error().to_string();
    }
    EXPECT_EQ(succeeded, 10);
    EXPECT_EQ(duplicates, 1);
    const std::int64_t rows = co_await count_rows(db, "items");
    EXPECT_EQ(rows, 11);
    const sqlite::Stats after = db.stats();
    EXPECT_EQ(after.writes - before.writes, 11u);
    EXPECT_EQ(after.write_batches - before.write_batches, 1u);
  }(dir.config()));
}

// 5. Transactions: commit, rollback, dropped, thrown through, savepoints, other writers waiting.
TEST(SqliteDatabase, TransactionCommitIsVisibleAndRollbackDiscards) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");

    sqlite::Transaction committing = co_await ok(db.begin(), "begin");
    co_await ok(committing.execute("INSERT INTO t (v) VALUES ($1)", 1), "insert in tx");
    auto inside = committing.query_one<std::int64_t>("SELECT count(*) FROM t");
    const std::int64_t seen_inside = co_await ok(std::move(inside), "count in tx");
    EXPECT_EQ(seen_inside, 1);  // the transaction sees its own write
    const std::int64_t seen_outside = co_await count_rows(db, "t");
    EXPECT_EQ(seen_outside, 0);  // the others do not, yet
    co_await ok(committing.commit(), "commit");
    const std::int64_t committed = co_await count_rows(db, "t");
    EXPECT_EQ(committed, 1);
    co_await expect_error(committing.commit(), Kind::query, "already ended");

    sqlite::Transaction rolling = co_await ok(db.begin(), "begin");
    co_await ok(rolling.execute("INSERT INTO t (v) VALUES ($1)", 2), "insert in tx");
    co_await ok(rolling.rollback(), "rollback");
    const std::int64_t after_rollback = co_await count_rows(db, "t");
    EXPECT_EQ(after_rollback, 1);
  }(dir.config()));
}

Task<void> insert_then_throw(sqlite::Database db) {
  sqlite::Transaction tx = co_await ok(db.begin(), "begin");
  co_await ok(tx.execute("INSERT INTO t (v) VALUES ($1)", 3), "insert in tx");
  throw std::runtime_error("the handler failed");
}

TEST(SqliteDatabase, ATransactionDroppedUncommittedRollsBack) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    {
      sqlite::Transaction dropped = co_await ok(db.begin(), "begin");
      co_await ok(dropped.execute("INSERT INTO t (v) VALUES ($1)", 1), "insert in tx");
    }
    Task<void> throwing = insert_then_throw(db);
    bool thrown = false;
    try {
      co_await std::move(throwing);
    } catch (const std::runtime_error& e) {
      thrown = std::string_view{e.what()} == "the handler failed";
    }
    EXPECT_TRUE(thrown);
    // The writer got past both queued rollbacks: a plain write goes through.
    co_await ok(db.execute("INSERT INTO t (v) VALUES ($1)", 4), "insert after");
    auto reading = db.query<std::int64_t>("SELECT v FROM t");
    const std::vector<std::int64_t> values = co_await ok(std::move(reading), "values");
    EXPECT_EQ(values, std::vector<std::int64_t>{4});
  }(dir.config()));
}

TEST(SqliteDatabase, SavepointsNestInsideATransaction) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    sqlite::Transaction outer = co_await ok(db.begin(), "begin");
    co_await ok(outer.execute("INSERT INTO t (v) VALUES (1)"), "1");
    {
      sqlite::Transaction undone = co_await ok(outer.begin(), "savepoint");
      co_await ok(undone.execute("INSERT INTO t (v) VALUES (2)"), "2");
      co_await ok(undone.rollback(), "rollback to savepoint");
    }
    {
      sqlite::Transaction kept = co_await ok(outer.begin(), "savepoint");
      co_await ok(kept.execute("INSERT INTO t (v) VALUES (3)"), "3");
      sqlite::Transaction deeper = co_await ok(kept.begin(), "nested savepoint");
      co_await ok(deeper.execute("INSERT INTO t (v) VALUES (4)"), "4");
      co_await ok(deeper.commit(), "release nested");
      co_await ok(kept.commit(), "release");
    }
    {
      sqlite::Transaction dropped = co_await ok(outer.begin(), "savepoint");
      co_await ok(dropped.execute("INSERT INTO t (v) VALUES (5)"), "5");
    }  // rolled back to its savepoint
    co_await ok(outer.execute("INSERT INTO t (v) VALUES (6)"), "6");
    co_await ok(outer.commit(), "commit");
    auto reading = db.query<std::int64_t>("SELECT v FROM t ORDER BY v");
    const std::vector<std::int64_t> values = co_await ok(std::move(reading), "values");
    EXPECT_EQ(values, (std::vector<std::int64_t>{1, 3, 4, 6}));
  }(dir.config()));
}

TEST(SqliteDatabase, OtherWritersWaitForTheTransactionThenProceed) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    sqlite::Transaction tx = co_await ok(db.begin(), "begin");
    co_await ok(tx.execute("INSERT INTO t (v) VALUES (1)"), "insert in tx");
    // It counts the rows when it runs: 11 once the transaction has committed its row.
    auto waiting = spindle::spawn(db.execute("INSERT INTO t (v) SELECT count(*) + 10 FROM t"));
    co_await spindle::sleep(100ms);
    EXPECT_FALSE(waiting.is_finished());
    co_await ok(tx.commit(), "commit");
    auto joined = co_await std::move(waiting);
    CO_ASSERT(joined.has_value());
    EXPECT_EQ(must(std::move(*joined), "the waiting write"), 1u);
    auto reading = db.query<std::int64_t>("SELECT v FROM t ORDER BY v");
    const std::vector<std::int64_t> values = co_await ok(std::move(reading), "values");
    EXPECT_EQ(values, (std::vector<std::int64_t>{1, 11}));
  }(dir.config()));
}

// A Transaction that outlives its runtime and every Database handle: dropping it rolls it back, and the
// writer thread then ends (this test would hang otherwise).
TEST(SqliteDatabase, TheLastHandleGoingStopsTheWriterEvenWithATransactionOpen) {
  TempDir dir;
  std::optional<sqlite::Transaction> left_open;
  {
    Runtime runtime;
    runtime.block_on([](sqlite::Config config, std::optional<sqlite::Transaction>& out) -> Task<void> {
      sqlite::Database db = co_await open(std::move(config));
      co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
      sqlite::Transaction tx = co_await ok(db.begin(), "begin");
      co_await ok(tx.execute("INSERT INTO t (v) VALUES (1)"), "insert in tx");
      out.emplace(std::move(tx));
    }(dir.config(), left_open));
  }
  left_open.reset();  // queues the rollback; the writer finishes it and its thread is joined

  Runtime runtime;
  const std::int64_t rows = runtime.block_on([](sqlite::Config config) -> Task<std::int64_t> {
    sqlite::Database db = co_await open(std::move(config));
    const std::int64_t counted = co_await count_rows(db, "t");
    co_return counted;
  }(dir.config()));
  EXPECT_EQ(rows, 0);
}

// Cancelled calls: a write not yet run is skipped; a begin waiting in line does not leave a transaction
// nobody ends; a read cancelled while it runs gives its reader connection back.
TEST(SqliteDatabase, CancelledCallsLeaveTheDatabaseUsable) {
  TempDir dir;
  Runtime runtime;
  sqlite::Config config = dir.config();
  config.readers = 1;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    constexpr std::string_view insert = "INSERT INTO t (v) VALUES ($1)";
    co_await ok(db.execute(insert, 1), "first");

    sqlite::Transaction holding = co_await ok(db.begin(), "begin");
    auto write = spindle::spawn(db.execute(insert, 2));
    auto begin = spindle::spawn(db.begin());
    co_await spindle::sleep(20ms);  // both wait behind the transaction
    write.abort();
    begin.abort();
    co_await spindle::sleep(20ms);  // the aborted tasks are destroyed
    co_await ok(holding.commit(), "commit");
    // Would wait forever if the abandoned begin had left a transaction open.
    auto writing = db.execute(insert, 3);
    auto written = co_await spindle::timeout(5s, std::move(writing));
    CO_ASSERT(written.has_value());
    EXPECT_EQ(must(std::move(*written), "write after the cancellations"), 1u);
    auto reading = db.query<std::int64_t>("SELECT v FROM t ORDER BY v");
    const std::vector<std::int64_t> values = co_await ok(std::move(reading), "values");
    EXPECT_EQ(values, (std::vector<std::int64_t>{1, 3}));  // 2 was never written

    // A slow read (tens of milliseconds), cancelled while it runs on the only reader: SQLite finishes it
    // unobserved, and the next read gets the reader back. (The timeout only turns a hang into a failure;
    // valgrind runs the query some 20 times slower.)
    auto slow = spindle::spawn(db.query_one<std::int64_t>(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT count(*) FROM c"));
    co_await spindle::sleep(5ms);
    slow.abort();
    auto counting = db.query_one<std::int64_t>("SELECT count(*) FROM t");
    auto counted = co_await spindle::timeout(60s, std::move(counting));
    CO_ASSERT(counted.has_value());
    EXPECT_EQ(must(std::move(*counted), "read after the cancelled read"), 2);
  }(config));
}

/// Another connection (as another process would) holding the write lock for a while, from its own thread.
class WriteLockHolder {
 public:
  WriteLockHolder(std::string path, std::chrono::milliseconds hold)
      : thread_([this, path = std::move(path), hold] {
          sqlite3* raw = nullptr;
          if (sqlite3_open(path.c_str(), &raw) != SQLITE_OK ||
              sqlite3_exec(raw, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
            failed_ = true;
          } else {
            locked_ = true;
            std::this_thread::sleep_for(hold);
            releasing_ = true;
            sqlite3_exec(raw, "COMMIT", nullptr, nullptr, nullptr);
          }
          sqlite3_close(raw);
          released_ = true;
        }) {}
  ~WriteLockHolder() { thread_.join(); }

  /// Waits (in the task) until the lock is held; false if it could not be taken.
  Task<bool> wait_locked() {
    while (!locked_ && !failed_) co_await spindle::sleep(1ms);
    co_return locked_.load();
  }
  Task<void> wait_released() {
    while (!released_) co_await spindle::sleep(5ms);
  }
  /// Whether the holder has started to let go (its COMMIT): a write that got through must come after.
  bool releasing() const { return releasing_; }

 private:
  std::atomic<bool> locked_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> releasing_{false};
  std::atomic<bool> released_{false};
  std::thread thread_;
};

// 6. Another process's lock: waited for within busy_timeout, Kind::busy past it.
TEST(SqliteDatabase, AWriteWaitsForAnotherConnectionsLockWithinTheBusyTimeout) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    config.busy_timeout = 2s;
    sqlite::Database db = co_await open(config);
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    WriteLockHolder holder{config.path, 200ms};
    const bool locked = co_await holder.wait_locked();
    CO_ASSERT(locked);
    auto writing = db.execute("INSERT INTO t (v) VALUES (1)");
    const std::uint64_t written = co_await ok(std::move(writing), "insert behind the lock");
    EXPECT_EQ(written, 1u);
    EXPECT_TRUE(holder.releasing());  // it waited for the lock rather than fail at once
  }(dir.config()));
}

TEST(SqliteDatabase, ALockHeldPastTheBusyTimeoutIsKindBusy) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    config.busy_timeout = 100ms;
    sqlite::Database db = co_await open(config);
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    co_await ok(db.execute("INSERT INTO t (v) VALUES ($1)", 0), "warm up");
    {
      WriteLockHolder holder{config.path, 1s};
      const bool locked = co_await holder.wait_locked();
      CO_ASSERT(locked);
      const auto start = std::chrono::steady_clock::now();
      auto writing = db.execute("INSERT INTO t (v) VALUES ($1)", 1);
      co_await expect_error(std::move(writing), Kind::busy, "locked", "100 ms");
      EXPECT_LT(std::chrono::steady_clock::now() - start, 900ms);
      const std::int64_t during = co_await count_rows(db, "t");  // reads do not wait for the lock (WAL)
      EXPECT_EQ(during, 1);
      co_await holder.wait_released();
    }
    auto after = db.execute("INSERT INTO t (v) VALUES ($1)", 2);
    const std::uint64_t written = co_await ok(std::move(after), "insert after the lock");
    EXPECT_EQ(written, 1u);
    const std::int64_t rows = co_await count_rows(db, "t");
    EXPECT_EQ(rows, 2);
  }(dir.config()));
}

// 7. Reads run on the readers while a transaction holds the writer.
TEST(SqliteDatabase, ReadsRunWhileATransactionIsOpen) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1)"), "create");
    sqlite::Transaction tx = co_await ok(db.begin(), "begin");
    co_await ok(tx.execute("INSERT INTO t (v) VALUES (2)"), "insert in tx");
    // Were reads queued behind the transaction, this would time out: the transaction ends only after it.
    auto reading = db.query<std::int64_t>("SELECT v FROM t");
    auto read = co_await spindle::timeout(5s, std::move(reading));
    CO_ASSERT(read.has_value());
    EXPECT_EQ(must(std::move(*read), "read during the transaction"), std::vector<std::int64_t>{1});
    co_await ok(tx.commit(), "commit");
    const std::int64_t rows = co_await count_rows(db, "t");
    EXPECT_EQ(rows, 2);
  }(dir.config()));
}

// Without readers, everything runs on the writer.
TEST(SqliteDatabase, WorksWithoutReaders) {
  TempDir dir;
  Runtime runtime;
  sqlite::Config config = dir.config();
  config.readers = 0;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    co_await ok(db.batch_execute("CREATE TABLE t (v INTEGER)"), "create");
    co_await ok(db.execute("INSERT INTO t (v) VALUES ($1)", 7), "insert");
    auto reading = db.query_one<std::int64_t>("SELECT v FROM t");
    const std::int64_t value = co_await ok(std::move(reading), "read");
    EXPECT_EQ(value, 7);
  }(config));
}

// 8. db::migrate on SQLite.
constexpr db::Migration kMigrations[] = {
    {1, "create users", "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL)"},
    {2, "add name", "ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT ''"},
};

TEST(SqliteDatabase, MigrateAppliesRecordsAndRefusesANewerSchema) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    auto migrating = db::migrate(db, kMigrations);
    const db::MigrationReport first = co_await ok(std::move(migrating), "migrate");
    EXPECT_EQ(first.from_version, 0);
    EXPECT_EQ(first.to_version, 2);
    EXPECT_EQ(first.applied, 2);
    co_await ok(db.execute("INSERT INTO users (email, name) VALUES ($1, $2)", "ada@example.com", "Ada"), "use");

    auto again = db::migrate(db, kMigrations);
    const db::MigrationReport second = co_await ok(std::move(again), "migrate again");
    EXPECT_EQ(second.from_version, 2);
    EXPECT_EQ(second.to_version, 2);
    EXPECT_EQ(second.applied, 0);

    co_await ok(db.execute("INSERT INTO spindle_migrations (version, name, applied_at) VALUES (3, 'future', 'x')"),
                "record a newer version");
    auto refusing = db::migrate(db, kMigrations);
    co_await expect_error(std::move(refusing), Kind::migration, "version 3");
  }(dir.config()));
}

TEST(SqliteDatabase, AFailingMigrationRollsBackEntirely) {
  TempDir dir;
  Runtime runtime;
  runtime.block_on([](sqlite::Config config) -> Task<void> {
    sqlite::Database db = co_await open(std::move(config));
    static constexpr db::Migration broken[] = {
        {1, "create a", "CREATE TABLE a (x INTEGER)"},
        {2, "create b, then fail", "CREATE TABLE b (y INTEGER); INSERT INTO nowhere VALUES (1)"},
    };
    auto migrating = db::migrate(db, broken);
    co_await expect_error(std::move(migrating), Kind::migration, "nowhere");
    // The migration's transaction is rolled back by its handle's destructor, queued: a write first (it
    // runs after the rollback) makes the checks below independent of timing.
    co_await ok(db.execute("CREATE TABLE marker (z INTEGER)"), "a write after the rollback");
    auto listing = db.query<std::string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name");
    const std::vector<std::string> tables = co_await ok(std::move(listing), "tables");
    EXPECT_EQ(tables, (std::vector<std::string>{"marker", "spindle_migrations"}));
    auto versioning = db.query_one<std::int64_t>("SELECT COALESCE(MAX(version), 0) FROM spindle_migrations");
    const std::int64_t version = co_await ok(std::move(versioning), "version");
    EXPECT_EQ(version, 0);
  }(dir.config()));
}

// 9. A missing directory is an error naming the path, and is not created.
TEST(SqliteDatabase, OpeningInAMissingDirectoryFails) {
  TempDir dir;
  Runtime runtime;
  const std::filesystem::path missing = dir.path() / "missing";
  sqlite::Config config;
  config.path = (missing / "test.db").string();
  Result<sqlite::Database, db::Error> opened = runtime.block_on(sqlite::Database::open(config));
  ASSERT_FALSE(opened);
  EXPECT_EQ(opened.error().kind, Kind::connection);
  EXPECT_TRUE(contains(opened.error().message, config.path)) << opened.error().message;
  EXPECT_FALSE(std::filesystem::exists(missing));

  config.path = ":memory:";
  Result<sqlite::Database, db::Error> in_memory = runtime.block_on(sqlite::Database::open(config));
  ASSERT_FALSE(in_memory);
  EXPECT_EQ(in_memory.error().kind, Kind::connection);
}

// 10. The concept, checked where it counts too (the static_asserts at the top are the real check).
TEST(SqliteDatabase, SatisfiesTheDatabaseConcept) {
  EXPECT_EQ(std::string_view{sqlite::Database::dialect}, "sqlite");
  EXPECT_TRUE(db::Database<sqlite::Database>);
}

}  // namespace
