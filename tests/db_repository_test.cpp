// One repository, written once as a template over db::Database, run by the same tests on SQLite and on
// a real PostgreSQL 15: what an application gets from the Database concept.

#include <gtest/gtest.h>

#include <boost/describe/class.hpp>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/pg.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/when.hpp"
#include "spindle/sqlite.hpp"
#include "support/co_assert.hpp"
#include "support/postgres_server.hpp"

namespace {

using namespace spindle;
using namespace std::chrono_literals;
using Kind = db::Error::Kind;

struct User {
  std::int64_t id;
  std::string name;
  std::string email;
  db::Timestamp created_at;
};
BOOST_DESCRIBE_STRUCT(User, (), (id, name, email, created_at))

// The schema in each dialect; everything else is shared.
constexpr db::Migration kPostgresSchema[] = {
    {1, "users",
     "CREATE TABLE users (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
     "created_at TIMESTAMPTZ NOT NULL DEFAULT now())"},
};
constexpr db::Migration kSqliteSchema[] = {
    {1, "users",
     "CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
     "created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))"},
};

/// The application's data access, once, for any database (the seed's `process<T: Repository>`).
template <db::Database Db>
class UserRepository {
 public:
  explicit UserRepository(Db& db) : db_(&db) {}

  Task<Result<User, db::Error>> create(std::string name, std::string email) {
    return db_->template query_one<User>(
        "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING id, name, email, created_at", name, email);
  }
  Task<Result<std::optional<User>, db::Error>> find(std::int64_t id) {
    return db_->template query_opt<User>("SELECT id, name, email, created_at FROM users WHERE id = $1", id);
  }
  Task<Result<std::vector<User>, db::Error>> list(std::int64_t limit, std::int64_t offset) {
    return db_->template query<User>("SELECT id, name, email, created_at FROM users ORDER BY id LIMIT $1 OFFSET $2",
                                     limit, offset);
  }
  Task<Result<std::uint64_t, db::Error>> rename(std::int64_t id, std::string name) {
    return db_->execute("UPDATE users SET name = $2 WHERE id = $1", id, name);
  }
  Task<Result<std::uint64_t, db::Error>> remove(std::int64_t id) {
    return db_->execute("DELETE FROM users WHERE id = $1", id);
  }
  Task<Result<std::int64_t, db::Error>> count() {
    return db_->template query_one<std::int64_t>("SELECT count(*) FROM users");
  }
  /// Two users at once, or neither: a transaction, rolled back if anything fails or throws.
  Task<Result<void, db::Error>> create_pair(std::string first, std::string second, bool throw_midway) {
    return create_pair_in(db_, std::move(first), std::move(second), throw_midway);
  }

 private:
  static Task<Result<void, db::Error>> create_pair_in(Db* db, std::string first, std::string second,
                                                      bool throw_midway) {
    Result<typename Db::Transaction, db::Error> tx = co_await db->begin();
    if (!tx) co_return Err{std::move(tx).error()};
    const std::string first_email = first + "@example.com";
    Result<std::uint64_t, db::Error> a =
        co_await tx->execute("INSERT INTO users (name, email) VALUES ($1, $2)", first, first_email);
    if (!a) co_return Err{std::move(a).error()};
    if (throw_midway) throw std::runtime_error("failed between the two inserts");
    const std::string second_email = second + "@example.com";
    Result<std::uint64_t, db::Error> b =
        co_await tx->execute("INSERT INTO users (name, email) VALUES ($1, $2)", second, second_email);
    if (!b) co_return Err{std::move(b).error()};
    Result<void, db::Error> committed = co_await tx->commit();
    co_return committed;
  }

  Db* db_;
};

// The two backends, each giving a fresh, migrated database.
struct Postgres {
  using Db = pg::Pool;
  static Task<Result<pg::Pool, db::Error>> open(std::string target) {
    pg::PoolConfig config;
    config.url = std::move(target);
    config.max_size = 4;
    return pg::Pool::connect(config);
  }
  static std::span<const db::Migration> schema() { return kPostgresSchema; }
};
struct Sqlite {
  using Db = sqlite::Database;
  static Task<Result<sqlite::Database, db::Error>> open(std::string target) {
    sqlite::Config config;
    config.path = std::move(target);
    return sqlite::Database::open(config);
  }
  static std::span<const db::Migration> schema() { return kSqliteSchema; }
};

template <class Backend>
class RepositoryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if constexpr (std::is_same_v<Backend, Postgres>) server_ = new test::PostgresServer(test::PostgresServer::start());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    static int databases = 0;
    const std::string name = "repository_" + std::to_string(++databases);
    if constexpr (std::is_same_v<Backend, Postgres>) {
      server_->create_database(name);
      target_ = "postgres://postgres@127.0.0.1:" + std::to_string(server_->port()) + "/" + name;
    } else {
      char pattern[] = "/tmp/spindle-repository-XXXXXX";
      directory_ = ::mkdtemp(pattern);
      target_ = directory_ + "/" + name + ".db";
    }
  }
  void TearDown() override {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  /// Runs `body` with a fresh, migrated database, on two worker threads.
  template <class F>
  void with_database(F body) {
    Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
    runtime.block_on([](std::string target, F body) -> Task<void> {
      Result<typename Backend::Db, db::Error> database = co_await Backend::open(target);
      if (!database) {
        ADD_FAILURE() << database.error().to_string();
        co_return;
      }
      Result<db::MigrationReport, db::Error> migrated = co_await db::migrate(*database, Backend::schema());
      if (!migrated) {
        ADD_FAILURE() << migrated.error().to_string();
        co_return;
      }
      co_await body(*database);
    }(target_, std::move(body)));
  }
  /// The same, with the repository on it.
  template <class F>
  void with_repository(F body) {
    // A capture is safe here: with_database keeps this lambda in its coroutine frame while it runs.
    with_database([body](auto& db) -> Task<void> {
      UserRepository<std::remove_cvref_t<decltype(db)>> users{db};
      co_await body(users);
    });
  }

  static test::PostgresServer* server_;
  std::string target_;
  std::string directory_;
};
template <class Backend>
test::PostgresServer* RepositoryTest<Backend>::server_ = nullptr;

using Backends = ::testing::Types<Sqlite, Postgres>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Postgres> ? "Postgres" : "Sqlite";
  }
};
TYPED_TEST_SUITE(RepositoryTest, Backends, BackendNames);

TYPED_TEST(RepositoryTest, CreatesFindsListsUpdatesAndDeletes) {
  this->with_repository([](auto& users) -> Task<void> {
    const db::Timestamp before =
        std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    Result<User, db::Error> ada = co_await users.create("Ada", "ada@example.com");
    CO_ASSERT(ada.has_value());
    EXPECT_GT(ada->id, 0);
    EXPECT_EQ(ada->name, "Ada");
    // created_at comes from the database's clock, as a real instant on both.
    EXPECT_LT(std::chrono::abs(ada->created_at - before), std::chrono::seconds{5});
    Result<User, db::Error> alan = co_await users.create("Alan", "alan@example.com");
    CO_ASSERT(alan.has_value());
    EXPECT_GT(alan->id, ada->id);

    Result<std::optional<User>, db::Error> found = co_await users.find(ada->id);
    CO_ASSERT(found.has_value() && found->has_value());
    EXPECT_EQ((*found)->email, "ada@example.com");
    EXPECT_EQ((*found)->created_at, ada->created_at);
    Result<std::optional<User>, db::Error> missing = co_await users.find(ada->id + 1000);
    CO_ASSERT(missing.has_value());
    EXPECT_FALSE(missing->has_value());

    Result<std::vector<User>, db::Error> page = co_await users.list(1, 1);
    CO_ASSERT(page.has_value());
    CO_ASSERT(page->size() == 1);
    EXPECT_EQ(page->front().name, "Alan");

    Result<std::uint64_t, db::Error> renamed = co_await users.rename(alan->id, "Alan T.");
    CO_ASSERT(renamed.has_value());
    EXPECT_EQ(*renamed, 1u);
    Result<std::uint64_t, db::Error> removed = co_await users.remove(ada->id);
    CO_ASSERT(removed.has_value());
    EXPECT_EQ(*removed, 1u);
    Result<std::uint64_t, db::Error> removed_again = co_await users.remove(ada->id);
    CO_ASSERT(removed_again.has_value());
    EXPECT_EQ(*removed_again, 0u);
    Result<std::int64_t, db::Error> left = co_await users.count();
    CO_ASSERT(left.has_value());
    EXPECT_EQ(*left, 1);
  });
}

TYPED_TEST(RepositoryTest, ADuplicateEmailIsAUniqueViolation) {
  this->with_repository([](auto& users) -> Task<void> {
    Result<User, db::Error> first = co_await users.create("Ada", "ada@example.com");
    CO_ASSERT(first.has_value());
    Result<User, db::Error> second = co_await users.create("Imposter", "ada@example.com");
    CO_ASSERT(!second);
    EXPECT_EQ(second.error().kind, Kind::unique_violation) << second.error().to_string();
    Result<std::int64_t, db::Error> count = co_await users.count();
    CO_ASSERT(count.has_value());
    EXPECT_EQ(*count, 1);
  });
}

TYPED_TEST(RepositoryTest, ATransactionIsAllOrNothingEvenWhenItThrows) {
  this->with_repository([](auto& users) -> Task<void> {
    Result<void, db::Error> both = co_await users.create_pair("a", "b", false);
    EXPECT_TRUE(both.has_value());
    Result<void, db::Error> clash = co_await users.create_pair("c", "a", false);  // a@example.com exists
    CO_ASSERT(!clash);
    EXPECT_EQ(clash.error().kind, Kind::unique_violation);
    bool thrown = false;
    try {
      Result<void, db::Error> never = co_await users.create_pair("d", "e", true);
      (void)never;
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
    Result<std::vector<User>, db::Error> all = co_await users.list(10, 0);
    CO_ASSERT(all.has_value());
    std::vector<std::string> names;
    for (const User& user : *all) names.push_back(user.name);
    EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));  // neither c nor d
  });
}

// PostgreSQL's rule, on both: after a failed statement a transaction does not commit, unless the
// failure was inside a savepoint that was rolled back.
template <db::Database Db>
Task<void> failed_statements_in_transactions(Db& db) {
  Result<void, db::Error> created = co_await db.batch_execute("CREATE TABLE tags (name TEXT PRIMARY KEY)");
  CO_ASSERT(created.has_value());
  {
    Result<typename Db::Transaction, db::Error> tx = co_await db.begin();
    CO_ASSERT(tx.has_value());
    Result<std::uint64_t, db::Error> first = co_await tx->execute("INSERT INTO tags VALUES ($1)", "a");
    CO_ASSERT(first.has_value());
    Result<std::uint64_t, db::Error> clash = co_await tx->execute("INSERT INTO tags VALUES ($1)", "a");
    EXPECT_FALSE(clash.has_value());
    Result<void, db::Error> committed = co_await tx->commit();
    EXPECT_FALSE(committed.has_value());
  }
  {
    Result<typename Db::Transaction, db::Error> tx = co_await db.begin();
    CO_ASSERT(tx.has_value());
    Result<std::uint64_t, db::Error> first = co_await tx->execute("INSERT INTO tags VALUES ($1)", "b");
    CO_ASSERT(first.has_value());
    {
      Result<typename Db::Transaction, db::Error> savepoint = co_await tx->begin();
      CO_ASSERT(savepoint.has_value());
      Result<std::uint64_t, db::Error> clash = co_await savepoint->execute("INSERT INTO tags VALUES ($1)", "b");
      EXPECT_FALSE(clash.has_value());
      Result<void, db::Error> undone = co_await savepoint->rollback();
      EXPECT_TRUE(undone.has_value());
    }
    Result<void, db::Error> committed = co_await tx->commit();
    EXPECT_TRUE(committed.has_value()) << (committed ? "" : committed.error().to_string());
  }
  Result<std::vector<std::string>, db::Error> names = co_await db.template query<std::string>("SELECT name FROM tags");
  CO_ASSERT(names.has_value());
  EXPECT_EQ(*names, std::vector<std::string>{"b"});
}

TYPED_TEST(RepositoryTest, AFailedStatementKeepsTheTransactionFromCommitting) {
  this->with_database([](auto& db) -> Task<void> { co_await failed_statements_in_transactions(db); });
}

TYPED_TEST(RepositoryTest, ManyConcurrentWritersAllLand) {
  this->with_repository([](auto& users) -> Task<void> {
    std::vector<Task<Result<User, db::Error>>> creating;
    for (int i = 0; i < 200; ++i)
      creating.push_back(users.create("user " + std::to_string(i), "u" + std::to_string(i) + "@example.com"));
    std::vector<Result<User, db::Error>> created = co_await when_all(std::move(creating));
    for (const auto& user : created) {
      EXPECT_TRUE(user.has_value()) << (user ? "" : user.error().to_string());
    }
    Result<std::int64_t, db::Error> count = co_await users.count();
    CO_ASSERT(count.has_value());
    EXPECT_EQ(*count, 200);
  });
}

}  // namespace
