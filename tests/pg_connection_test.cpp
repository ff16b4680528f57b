// spindle::pg against a real PostgreSQL 15 that the test starts (tests/support/postgres_server.hpp):
// connecting, typed parameters and rows, errors, pipelining, prepared statements, transactions,
// cancellation by a timeout, scripts, LISTEN/NOTIFY, migrations.

#include <gtest/gtest.h>

#include <boost/describe/class.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "spindle/pg.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/runtime/when.hpp"
#include "support/co_assert.hpp"
#include "support/postgres_server.hpp"

namespace {

using namespace spindle;
using namespace std::chrono_literals;
using Kind = db::Error::Kind;

enum class Role { admin, member };
BOOST_DESCRIBE_ENUM(Role, admin, member)

struct Everything {
  std::int64_t id;
  bool flag;
  std::int16_t small;
  std::int32_t medium;
  std::int64_t large;
  float single;
  double wide;
  std::string text;
  std::string document;  // a jsonb column
  db::Bytes blob;
  db::Timestamp at;
  db::Uuid uuid;
  Role role;
  std::optional<std::string> note;
};
BOOST_DESCRIBE_STRUCT(Everything, (),
                      (id, flag, small, medium, large, single, wide, text, document, blob, at, uuid, role, note))

struct Named {
  std::string name;
  std::optional<std::int64_t> absent;  // no such column: stays empty
};
BOOST_DESCRIBE_STRUCT(Named, (), (name, absent))

static_assert(db::Database<pg::Pool>);

pg::PoolConfig pool_config(std::string url, std::size_t size) {
  pg::PoolConfig config;
  config.url = std::move(url);
  config.max_size = size;
  return config;
}
static_assert(db::Transaction<pg::Transaction>);

class PgConnectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test::PostgresServer(test::PostgresServer::start()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static pg::Config config() { return pg::Config{server_->url(), 5s}; }

  /// Runs `body` with a fresh connection on a runtime of two worker threads.
  template <class F>
  void with_connection(F body) {
    Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
    runtime.block_on([](pg::Config config, F body) -> Task<void> {
      Result<pg::Connection, db::Error> connection = co_await pg::Connection::connect(config);
      if (!connection) {
        ADD_FAILURE() << connection.error().to_string();
        co_return;
      }
      co_await body(*connection);
    }(config(), std::move(body)));
  }

  static test::PostgresServer* server_;
};
test::PostgresServer* PgConnectionTest::server_ = nullptr;

TEST_F(PgConnectionTest, ConnectsAndReportsTheServerVersion) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    EXPECT_GE(connection.server_version(), 150000);
    EXPECT_TRUE(connection.is_usable());
    Result<std::string, db::Error> version = co_await connection.query_one<std::string>("SELECT version()");
    CO_ASSERT(version.has_value());
    EXPECT_NE(version->find("PostgreSQL 15"), std::string::npos) << *version;
  });
}

TEST_F(PgConnectionTest, ConnectingFailsClearlyAndFast) {
  Runtime runtime;
  runtime.block_on([](int port) -> Task<void> {
    // Configurations are built in named locals: GCC 12 miscompiles braced lists inside co_await.
    const pg::Config bad{"postgres://[::1", 2s};
    Result<pg::Connection, db::Error> bad_url = co_await pg::Connection::connect(bad);
    CO_ASSERT(!bad_url);
    EXPECT_EQ(bad_url.error().kind, Kind::connection);
    EXPECT_NE(bad_url.error().message.find("invalid database URL"), std::string::npos) << bad_url.error().message;

    // Nothing listens one port below the server (the harness picks ports below the ephemeral range).
    const Instant started = now();
    const pg::Config closed{"postgres://postgres@127.0.0.1:" + std::to_string(port - 1) + "/postgres", 2s};
    Result<pg::Connection, db::Error> refused = co_await pg::Connection::connect(closed);
    CO_ASSERT(!refused);
    EXPECT_EQ(refused.error().kind, Kind::connection);
    EXPECT_LT(now() - started, 1s);

    const pg::Config missing{"postgres://postgres@127.0.0.1:" + std::to_string(port) + "/nope", 2s};
    Result<pg::Connection, db::Error> unknown_database = co_await pg::Connection::connect(missing);
    CO_ASSERT(!unknown_database);
    EXPECT_NE(unknown_database.error().message.find("does not exist"), std::string::npos)
        << unknown_database.error().message;

    // A host name goes through Spindle's resolver (libpq would block on it).
    const pg::Config named{"postgres://postgres@localhost:" + std::to_string(port) + "/postgres", 2s};
    Result<pg::Connection, db::Error> by_name = co_await pg::Connection::connect(named);
    EXPECT_TRUE(by_name.has_value()) << (by_name ? "" : by_name.error().to_string());
  }(server_->port()));
}

TEST_F(PgConnectionTest, EveryTypeRoundTrips) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created = co_await connection.batch_execute(R"(
      DROP TABLE IF EXISTS everything;
      CREATE TABLE everything (id BIGSERIAL PRIMARY KEY, flag BOOL, small INT2, medium INT4, large INT8,
        single FLOAT4, wide FLOAT8, text TEXT, document JSONB, blob BYTEA, at TIMESTAMPTZ, uuid UUID,
        role TEXT, note TEXT))");
    CO_ASSERT(created.has_value());

    const db::Timestamp at{std::chrono::microseconds{1'795'000'000'123'456}};
    const db::Uuid uuid = *db::Uuid::parse("123e4567-e89b-12d3-a456-426614174000");
    const db::Bytes blob{std::byte{0}, std::byte{0xff}, std::byte{'\''}, std::byte{'\\'}};
    const std::string text = "naïve \"quoted\" 'text' \\ with unicode: 日本";
    Result<std::int64_t, db::Error> id = co_await connection.query_one<std::int64_t>(
        "INSERT INTO everything (flag, small, medium, large, single, wide, text, document, blob, at, uuid, role, note) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        true, std::int16_t{-12345}, std::int32_t{2'000'000'000}, std::int64_t{-9'000'000'000'000'000'000}, 1.5f,
        -2.25e300, text, std::string{R"({"a": [1, 2]})"}, blob, at, uuid, Role::member, std::nullopt);
    CO_ASSERT(id.has_value());

    Result<Everything, db::Error> row =
        co_await connection.query_one<Everything>("SELECT * FROM everything WHERE id = $1", *id);
    CO_ASSERT(row.has_value());
    EXPECT_EQ(row->id, *id);
    EXPECT_TRUE(row->flag);
    EXPECT_EQ(row->small, -12345);
    EXPECT_EQ(row->medium, 2'000'000'000);
    EXPECT_EQ(row->large, -9'000'000'000'000'000'000);
    EXPECT_EQ(row->single, 1.5f);
    EXPECT_EQ(row->wide, -2.25e300);
    EXPECT_EQ(row->text, text);
    EXPECT_EQ(row->document, R"({"a": [1, 2]})");
    EXPECT_EQ(row->blob, blob);
    EXPECT_EQ(row->at, at);
    EXPECT_EQ(row->uuid, uuid);
    EXPECT_EQ(row->role, Role::member);
    EXPECT_FALSE(row->note.has_value());

    // A tuple reads by position, a scalar the first column; optional parameters carry NULL.
    using Pair = std::tuple<std::string, std::optional<std::string>>;
    Result<Pair, db::Error> pair = co_await connection.query_one<Pair>("SELECT $1::text, $2::text", std::string{"x"},
                                                                       std::optional<std::string>{});
    CO_ASSERT(pair.has_value());
    EXPECT_EQ(std::get<0>(*pair), "x");
    EXPECT_FALSE(std::get<1>(*pair).has_value());
    Result<std::string, db::Error> uuid_text =
        co_await connection.query_one<std::string>("SELECT uuid FROM everything");
    CO_ASSERT(uuid_text.has_value());
    EXPECT_EQ(*uuid_text, "123e4567-e89b-12d3-a456-426614174000");

    const char* nothing = nullptr;  // a null C string is NULL, as on SQLite
    Result<std::optional<std::string>, db::Error> null =
        co_await connection.query_one<std::optional<std::string>>("SELECT $1::text", nothing);
    CO_ASSERT(null.has_value());
    EXPECT_FALSE(null->has_value());

    // Members without a column stay empty when optional.
    Result<Named, db::Error> named = co_await connection.query_one<Named>("SELECT 'n' AS name");
    CO_ASSERT(named.has_value());
    EXPECT_EQ(named->name, "n");
    EXPECT_FALSE(named->absent.has_value());
  });
}

TEST_F(PgConnectionTest, DecodingErrorsNameTheColumn) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<std::int32_t, db::Error> too_big =
        co_await connection.query_one<std::int32_t>("SELECT 5000000000::int8 AS n");
    CO_ASSERT(!too_big);
    EXPECT_EQ(too_big.error().kind, Kind::decode);
    EXPECT_NE(too_big.error().message.find("\"n\""), std::string::npos) << too_big.error().message;

    Result<std::string, db::Error> null = co_await connection.query_one<std::string>("SELECT NULL::text AS t");
    CO_ASSERT(!null);
    EXPECT_EQ(null.error().kind, Kind::decode);
    EXPECT_NE(null.error().message.find("NULL"), std::string::npos);

    Result<std::int64_t, db::Error> wrong_type = co_await connection.query_one<std::int64_t>("SELECT 'x'::text AS t");
    CO_ASSERT(!wrong_type);
    EXPECT_EQ(wrong_type.error().kind, Kind::decode);

    Result<Everything, db::Error> missing = co_await connection.query_one<Everything>("SELECT 1 AS id");
    CO_ASSERT(!missing);
    EXPECT_EQ(missing.error().kind, Kind::decode);
    EXPECT_NE(missing.error().message.find("\"flag\""), std::string::npos) << missing.error().message;

    Result<db::Timestamp, db::Error> infinite =
        co_await connection.query_one<db::Timestamp>("SELECT 'infinity'::timestamptz AS at");
    CO_ASSERT(!infinite);
    EXPECT_EQ(infinite.error().kind, Kind::decode);

    Result<std::int64_t, db::Error> none = co_await connection.query_one<std::int64_t>("SELECT 1 WHERE false");
    CO_ASSERT(!none);
    EXPECT_EQ(none.error().kind, Kind::not_found);
    Result<std::optional<std::int64_t>, db::Error> maybe =
        co_await connection.query_opt<std::int64_t>("SELECT 1 WHERE false");
    CO_ASSERT(maybe.has_value());
    EXPECT_FALSE(maybe->has_value());

    Result<std::int64_t, db::Error> nul =
        co_await connection.query_one<std::int64_t>("SELECT length($1)", std::string("a\0b", 3));
    CO_ASSERT(!nul);
    EXPECT_NE(nul.error().message.find("NUL"), std::string::npos);

    // The connection is fine after all of these.
    Result<std::int64_t, db::Error> after = co_await connection.query_one<std::int64_t>("SELECT 7::int8");
    CO_ASSERT(after.has_value());
    EXPECT_EQ(*after, 7);
  });
}

TEST_F(PgConnectionTest, ServerErrorsAreTyped) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created = co_await connection.batch_execute(R"(
      DROP TABLE IF EXISTS posts; DROP TABLE IF EXISTS authors;
      CREATE TABLE authors (id INT PRIMARY KEY, email TEXT NOT NULL CONSTRAINT authors_email_key UNIQUE);
      CREATE TABLE posts (id INT PRIMARY KEY, author INT NOT NULL REFERENCES authors(id),
                          words INT CHECK (words >= 0));
      INSERT INTO authors VALUES (1, 'a@example.com'))");
    CO_ASSERT(created.has_value());

    Result<std::uint64_t, db::Error> duplicate =
        co_await connection.execute("INSERT INTO authors VALUES ($1, $2)", 2, "a@example.com");
    CO_ASSERT(!duplicate);
    EXPECT_EQ(duplicate.error().kind, Kind::unique_violation);
    EXPECT_EQ(duplicate.error().sqlstate, "23505");
    EXPECT_EQ(duplicate.error().constraint, "authors_email_key");

    Result<std::uint64_t, db::Error> orphan = co_await connection.execute("INSERT INTO posts VALUES (1, 99, 1)");
    CO_ASSERT(!orphan);
    EXPECT_EQ(orphan.error().kind, Kind::foreign_key_violation);
    Result<std::uint64_t, db::Error> null = co_await connection.execute("INSERT INTO authors VALUES (3, NULL)");
    CO_ASSERT(!null);
    EXPECT_EQ(null.error().kind, Kind::not_null_violation);
    Result<std::uint64_t, db::Error> negative = co_await connection.execute("INSERT INTO posts VALUES (1, 1, -1)");
    CO_ASSERT(!negative);
    EXPECT_EQ(negative.error().kind, Kind::check_violation);
    Result<std::uint64_t, db::Error> syntax = co_await connection.execute("SELEC 1");
    CO_ASSERT(!syntax);
    EXPECT_EQ(syntax.error().kind, Kind::query);
    EXPECT_EQ(syntax.error().sqlstate, "42601");

    Result<std::uint64_t, db::Error> inserted = co_await connection.execute(
        "INSERT INTO authors SELECT g, 'x' || g || '@example.com' FROM generate_series(10, 14) g");
    CO_ASSERT(inserted.has_value());
    EXPECT_EQ(*inserted, 5u);
  });
}

TEST_F(PgConnectionTest, ConcurrentQueriesPipelineOnOneConnectionAndFailAlone) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    std::vector<Task<Result<std::int64_t, db::Error>>> queries;
    for (std::int64_t i = 0; i < 200; ++i) {
      // Every seventh query fails (division by zero): only that one.
      if (i % 7 == 3)
        queries.push_back(connection.query_one<std::int64_t>("SELECT $1::int8 / 0", i));
      else
        queries.push_back(connection.query_one<std::int64_t>("SELECT $1::int8 * 2", i));
    }
    std::vector<Result<std::int64_t, db::Error>> results = co_await when_all(std::move(queries));
    for (std::int64_t i = 0; i < 200; ++i) {
      const auto& result = results[static_cast<std::size_t>(i)];
      if (i % 7 == 3) {
        EXPECT_FALSE(result.has_value()) << i;
        if (!result) {
          EXPECT_EQ(result.error().sqlstate, "22012") << i;
        }
      } else {
        EXPECT_TRUE(result.has_value()) << i;
        if (result) {
          EXPECT_EQ(*result, 2 * i);
        }
      }
    }
    // Two statements, prepared once each on this connection however many times they ran.
    Result<std::int64_t, db::Error> prepared = co_await connection.query_one<std::int64_t>(
        "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int8 %'");
    CO_ASSERT(prepared.has_value());
    EXPECT_EQ(*prepared, 2);
  });
}

TEST_F(PgConnectionTest, LargeParametersGoOutWhileTheSocketIsFull) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    // 64 MiB of parameters on one connection: far more than the socket buffers, so sending waits for
    // the server to read, while results come back at the same time.
    std::vector<Task<Result<std::int64_t, db::Error>>> queries;
    for (int i = 0; i < 128; ++i)
      queries.push_back(connection.query_one<std::int64_t>("SELECT length($1)::int8 + $2",
                                                           std::string(512 * 1024, 'a' + i % 26), std::int64_t{i}));
    std::vector<Result<std::int64_t, db::Error>> results = co_await when_all(std::move(queries));
    for (int i = 0; i < 128; ++i) {
      CO_ASSERT(results[static_cast<std::size_t>(i)].has_value());
      EXPECT_EQ(*results[static_cast<std::size_t>(i)], 512 * 1024 + i);
    }
  });
}

TEST_F(PgConnectionTest, AnErrorAtTheImplicitCommitFailsTheCall) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    // A deferred constraint is checked at the commit, which for a call outside a transaction happens at
    // its Sync, after the statement itself succeeded.
    Result<void, db::Error> created = co_await connection.batch_execute(R"(
      DROP TABLE IF EXISTS deferred;
      CREATE TABLE deferred (id INT, CONSTRAINT deferred_id UNIQUE (id) DEFERRABLE INITIALLY DEFERRED);
      INSERT INTO deferred VALUES (1))");
    CO_ASSERT(created.has_value());
    Result<std::uint64_t, db::Error> duplicate = co_await connection.execute("INSERT INTO deferred VALUES (1)");
    CO_ASSERT(!duplicate);
    EXPECT_EQ(duplicate.error().kind, Kind::unique_violation);
    Result<std::int64_t, db::Error> count =
        co_await connection.query_one<std::int64_t>("SELECT count(*) FROM deferred");
    CO_ASSERT(count.has_value());
    EXPECT_EQ(*count, 1);
  });
}

TEST_F(PgConnectionTest, CopyIsRefusedAndTheConnectionCarriesOn) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created =
        co_await connection.batch_execute("DROP TABLE IF EXISTS copied; CREATE TABLE copied (x INT)");
    CO_ASSERT(created.has_value());
    Result<std::uint64_t, db::Error> copy_in = co_await connection.execute("COPY copied FROM STDIN");
    CO_ASSERT(!copy_in);
    EXPECT_NE(copy_in.error().message.find("COPY"), std::string::npos) << copy_in.error().message;
    Result<void, db::Error> script = co_await connection.batch_execute("COPY copied FROM STDIN");
    EXPECT_FALSE(script.has_value());
    Result<std::int64_t, db::Error> after = co_await connection.query_one<std::int64_t>("SELECT 5::int8");
    CO_ASSERT(after.has_value());
    EXPECT_EQ(*after, 5);
  });
}

TEST_F(PgConnectionTest, TimestampColumnsWithoutZoneHoldUtc) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    const db::Timestamp at = *db::parse_timestamp("2026-06-01T12:00:00Z");
    using Pair = std::tuple<db::Timestamp, std::string>;
    Result<Pair, db::Error> read =
        co_await connection.query_one<Pair>("SELECT $1::timestamp, ($1::timestamp)::text", at);
    CO_ASSERT(read.has_value());
    EXPECT_EQ(std::get<0>(*read), at);
    EXPECT_EQ(std::get<1>(*read), "2026-06-01 12:00:00");
  });
}

TEST_F(PgConnectionTest, AStatementWhoseTableChangedIsPreparedAgain) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created = co_await connection.batch_execute(
        "DROP TABLE IF EXISTS altered; CREATE TABLE altered (a INT); INSERT INTO altered VALUES (1)");
    CO_ASSERT(created.has_value());
    Result<std::vector<std::tuple<std::int32_t>>, db::Error> before =
        co_await connection.query<std::tuple<std::int32_t>>("SELECT * FROM altered");
    CO_ASSERT(before.has_value());
    Result<void, db::Error> altered =
        co_await connection.batch_execute("ALTER TABLE altered ADD COLUMN b INT DEFAULT 2");
    CO_ASSERT(altered.has_value());
    // The statement prepared before the change fails once (PostgreSQL refuses a changed result type)...
    Result<std::vector<std::tuple<std::int32_t, std::int32_t>>, db::Error> stale =
        co_await connection.query<std::tuple<std::int32_t, std::int32_t>>("SELECT * FROM altered");
    CO_ASSERT(!stale);
    EXPECT_EQ(stale.error().sqlstate, "0A000");
    // ...and is prepared again for the next call.
    Result<std::vector<std::tuple<std::int32_t, std::int32_t>>, db::Error> fresh =
        co_await connection.query<std::tuple<std::int32_t, std::int32_t>>("SELECT * FROM altered");
    CO_ASSERT(fresh.has_value());
    EXPECT_EQ(std::get<1>(fresh->front()), 2);
  });
}

TEST_F(PgConnectionTest, PreparedStatementsPerConnectionAreBounded) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    std::vector<Task<Result<std::int64_t, db::Error>>> queries;
    for (int i = 0; i < 1100; ++i)
      queries.push_back(connection.query_one<std::int64_t>("SELECT " + std::to_string(i) + "::int8"));
    std::vector<Result<std::int64_t, db::Error>> results = co_await when_all(std::move(queries));
    for (int i = 0; i < 1100; ++i) {
      CO_ASSERT(results[static_cast<std::size_t>(i)].has_value());
      EXPECT_EQ(*results[static_cast<std::size_t>(i)], i);
    }
    Result<std::int64_t, db::Error> prepared =
        co_await connection.query_one<std::int64_t>("SELECT count(*) FROM pg_prepared_statements");
    CO_ASSERT(prepared.has_value());
    EXPECT_EQ(*prepared, 1024);  // the rest ran as unnamed statements
  });
}

TEST_F(PgConnectionTest, ABatchRunsInOneRoundTripAndIsAtomic) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created = co_await connection.batch_execute(
        "DROP TABLE IF EXISTS counters; CREATE TABLE counters (name TEXT PRIMARY KEY, n INT)");
    CO_ASSERT(created.has_value());
    pg::Batch batch;
    batch.add("INSERT INTO counters VALUES ($1, $2)", "a", 1)
        .add("INSERT INTO counters VALUES ($1, $2)", "b", 2)
        .add("SELECT name, n FROM counters ORDER BY name")
        .add("SELECT $1::int8 + 1", std::int64_t{41});
    Result<pg::BatchResults, db::Error> results = co_await connection.run(std::move(batch));
    CO_ASSERT(results.has_value());
    CO_ASSERT(results->size() == 4);
    EXPECT_EQ(results->affected(0), 1u);
    using Counter = std::tuple<std::string, std::int32_t>;
    Result<std::vector<Counter>, db::Error> counters = results->rows<Counter>(2);
    CO_ASSERT(counters.has_value());
    EXPECT_EQ(*counters, (std::vector<Counter>{{"a", 1}, {"b", 2}}));
    Result<std::int64_t, db::Error> answer = results->one<std::int64_t>(3);
    CO_ASSERT(answer.has_value());
    EXPECT_EQ(*answer, 42);

    // One statement fails: the statements before it are undone with it, those after never run.
    pg::Batch failing;
    failing.add("INSERT INTO counters VALUES ($1, $2)", "c", 3)
        .add("INSERT INTO counters VALUES ($1, $2)", "a", 9)
        .add("INSERT INTO counters VALUES ($1, $2)", "d", 4);
    Result<pg::BatchResults, db::Error> failed = co_await connection.run(std::move(failing));
    CO_ASSERT(!failed);
    EXPECT_EQ(failed.error().kind, Kind::unique_violation);
    EXPECT_NE(failed.error().message.find("statement 2"), std::string::npos) << failed.error().message;
    Result<std::int64_t, db::Error> count =
        co_await connection.query_one<std::int64_t>("SELECT count(*) FROM counters");
    CO_ASSERT(count.has_value());
    EXPECT_EQ(*count, 2);
  });
}

TEST_F(PgConnectionTest, TransactionsCommitRollBackAndRollBackWhenDropped) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    Result<void, db::Error> created =
        co_await connection.batch_execute("DROP TABLE IF EXISTS ledger; CREATE TABLE ledger (entry TEXT PRIMARY KEY)");
    CO_ASSERT(created.has_value());

    {
      Result<pg::Transaction, db::Error> tx = co_await connection.begin();
      CO_ASSERT(tx.has_value());
      Result<std::uint64_t, db::Error> a = co_await tx->execute("INSERT INTO ledger VALUES ('committed')");
      CO_ASSERT(a.has_value());
      Result<void, db::Error> committed = co_await tx->commit();
      EXPECT_TRUE(committed.has_value());
    }
    {
      Result<pg::Transaction, db::Error> tx = co_await connection.begin();
      CO_ASSERT(tx.has_value());
      Result<std::uint64_t, db::Error> b = co_await tx->execute("INSERT INTO ledger VALUES ('rolled back')");
      CO_ASSERT(b.has_value());
      Result<void, db::Error> rolled_back = co_await tx->rollback();
      EXPECT_TRUE(rolled_back.has_value());
    }
    {
      // Dropped without commit, as when an exception leaves the scope.
      auto throwing = [](pg::Connection& c) -> Task<void> {
        Result<pg::Transaction, db::Error> tx = co_await c.begin();
        if (!tx) co_return;
        Result<std::uint64_t, db::Error> inserted = co_await tx->execute("INSERT INTO ledger VALUES ('thrown')");
        if (inserted) throw std::runtime_error("handler failed");
      };
      bool caught = false;
      try {
        co_await throwing(connection);
      } catch (const std::runtime_error&) {
        caught = true;
      }
      EXPECT_TRUE(caught);
    }
    {
      // A savepoint rolled back keeps the outer transaction's work.
      Result<pg::Transaction, db::Error> tx = co_await connection.begin();
      CO_ASSERT(tx.has_value());
      Result<std::uint64_t, db::Error> outer = co_await tx->execute("INSERT INTO ledger VALUES ('outer')");
      CO_ASSERT(outer.has_value());
      {
        Result<pg::Transaction, db::Error> savepoint = co_await tx->begin();
        CO_ASSERT(savepoint.has_value());
        Result<std::uint64_t, db::Error> inner = co_await savepoint->execute("INSERT INTO ledger VALUES ('inner')");
        CO_ASSERT(inner.has_value());
        Result<std::uint64_t, db::Error> clash = co_await savepoint->execute("INSERT INTO ledger VALUES ('outer')");
        EXPECT_FALSE(clash.has_value());
        Result<void, db::Error> undone = co_await savepoint->rollback();
        EXPECT_TRUE(undone.has_value()) << (undone ? "" : undone.error().to_string());
      }
      {
        Result<pg::Transaction, db::Error> savepoint = co_await tx->begin();
        CO_ASSERT(savepoint.has_value());
        Result<std::uint64_t, db::Error> kept = co_await savepoint->execute("INSERT INTO ledger VALUES ('released')");
        CO_ASSERT(kept.has_value());
        Result<void, db::Error> released = co_await savepoint->commit();
        EXPECT_TRUE(released.has_value());
      }
      Result<void, db::Error> committed = co_await tx->commit();
      EXPECT_TRUE(committed.has_value()) << (committed ? "" : committed.error().to_string());
    }
    {
      // A failed statement fails the transaction: commit() says so instead of passing for success.
      Result<pg::Transaction, db::Error> tx = co_await connection.begin();
      CO_ASSERT(tx.has_value());
      Result<std::uint64_t, db::Error> fresh = co_await tx->execute("INSERT INTO ledger VALUES ('lost')");
      CO_ASSERT(fresh.has_value());
      Result<std::uint64_t, db::Error> clash = co_await tx->execute("INSERT INTO ledger VALUES ('committed')");
      EXPECT_EQ(clash.error().kind, Kind::unique_violation);
      Result<void, db::Error> committed = co_await tx->commit();
      EXPECT_FALSE(committed.has_value());
    }
    Result<std::vector<std::string>, db::Error> entries =
        co_await connection.query<std::string>("SELECT entry FROM ledger ORDER BY entry");
    CO_ASSERT(entries.has_value());
    EXPECT_EQ(*entries, (std::vector<std::string>{"committed", "outer", "released"}));
  });
}

TEST_F(PgConnectionTest, ATransactionCancelledWhileBeginningLeavesNoTransactionOpen) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    // A slow query ahead keeps the BEGIN in flight when the caller gives up on it.
    JoinHandle<Result<std::uint64_t, db::Error>> slow = spawn(connection.execute("SELECT pg_sleep(0.3)"));
    co_await sleep(20ms);  // sent
    Task<Result<pg::Transaction, db::Error>> beginning = connection.begin();
    Result<Result<pg::Transaction, db::Error>, TimedOut> begun = co_await timeout(50ms, std::move(beginning));
    EXPECT_FALSE(begun.has_value());  // timed out
    auto slept = co_await std::move(slow);
    EXPECT_TRUE(slept.has_value());
    // The BEGIN ran, and was rolled back: the connection is outside any transaction, where a
    // SAVEPOINT is refused (25P01, no_active_sql_transaction).
    Result<std::uint64_t, db::Error> probe = co_await connection.execute("SAVEPOINT probe");
    CO_ASSERT(!probe);
    EXPECT_EQ(probe.error().sqlstate, "25P01");
  });
}

TEST_F(PgConnectionTest, ATimeoutCancelsTheQueryOnTheServer) {
  with_connection([](pg::Connection& connection) -> Task<void> {
    const Instant started = now();
    Task<Result<std::uint64_t, db::Error>> sleeping = connection.execute("SELECT pg_sleep(30)");
    Result<Result<std::uint64_t, db::Error>, TimedOut> outcome = co_await timeout(200ms, std::move(sleeping));
    EXPECT_FALSE(outcome.has_value());
    EXPECT_LT(now() - started, 2s);
    // The connection answers again at once: the server cancelled the sleep instead of finishing it.
    Result<std::int64_t, db::Error> next = co_await connection.query_one<std::int64_t>("SELECT 1::int8");
    CO_ASSERT(next.has_value());
    EXPECT_LT(now() - started, 5s);
    Result<std::int64_t, db::Error> sleepers = co_await connection.query_one<std::int64_t>(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'");
    CO_ASSERT(sleepers.has_value());
    EXPECT_EQ(*sleepers, 0);
  });
}

TEST_F(PgConnectionTest, ListenDeliversNotificationsInOrder) {
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  runtime.block_on([](std::string url) -> Task<void> {
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(pool_config(url, 4));
    CO_ASSERT(pool.has_value());
    Result<pg::Listener, db::Error> listener = co_await pool->listen("user events");
    CO_ASSERT(listener.has_value());
    for (int i = 0; i < 3; ++i) {
      Result<std::uint64_t, db::Error> sent =
          co_await pool->execute("SELECT pg_notify($1, $2)", "user events", "payload " + std::to_string(i));
      CO_ASSERT(sent.has_value());
    }
    for (int i = 0; i < 3; ++i) {
      Result<Result<pg::Notification, db::Error>, TimedOut> note = co_await timeout(5s, listener->recv());
      CO_ASSERT(note.has_value() && note->has_value());
      EXPECT_EQ((*note)->channel, "user events");
      EXPECT_EQ((*note)->payload, "payload " + std::to_string(i));
      EXPECT_GT((*note)->process_id, 0);
    }
  }(server_->url()));
}

constexpr db::Migration kMigrations[] = {
    {1, "create notes", "CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)"},
    {2, "add author", "ALTER TABLE notes ADD COLUMN author TEXT; CREATE INDEX notes_author ON notes (author)"},
};

TEST_F(PgConnectionTest, MigrationsApplyOnceAndRefuseANewerDatabase) {
  server_->create_database("migrations");
  Runtime runtime;
  runtime.block_on([](std::string url) -> Task<void> {
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(pool_config(url, 2));
    CO_ASSERT(pool.has_value());
    Result<db::MigrationReport, db::Error> first = co_await db::migrate(*pool, kMigrations);
    CO_ASSERT(first.has_value());
    EXPECT_EQ(first->from_version, 0);
    EXPECT_EQ(first->to_version, 2);
    EXPECT_EQ(first->applied, 2);
    Result<db::MigrationReport, db::Error> again = co_await db::migrate(*pool, kMigrations);
    CO_ASSERT(again.has_value());
    EXPECT_EQ(again->applied, 0);
    Result<std::uint64_t, db::Error> used =
        co_await pool->execute("INSERT INTO notes (body, author) VALUES ('b', 'a')");
    EXPECT_TRUE(used.has_value());

    // A binary that knows only version 1 refuses a database at version 2.
    Result<db::MigrationReport, db::Error> older = co_await db::migrate(*pool, std::span{kMigrations}.first(1));
    CO_ASSERT(!older);
    EXPECT_EQ(older.error().kind, Kind::migration);

    // A migration that fails leaves nothing behind.
    constexpr db::Migration kBroken[] = {
        kMigrations[0], kMigrations[1], {3, "broken", "CREATE TABLE half (x INT); SELECT no_such_function()"}};
    Result<db::MigrationReport, db::Error> broken = co_await db::migrate(*pool, kBroken);
    CO_ASSERT(!broken);
    EXPECT_EQ(broken.error().kind, Kind::migration);
    Result<std::optional<std::string>, db::Error> half =
        co_await pool->query_one<std::optional<std::string>>("SELECT to_regclass('half')::text");
    CO_ASSERT(half.has_value());
    EXPECT_FALSE(half->has_value());
  }(server_->url().substr(0, server_->url().rfind('/')) + "/migrations"));
}

}  // namespace
