// pg::Pool against a real PostgreSQL 15: sharing and growth, exclusive mode and its acquire timeout, the
// query timeout, transactions apart from shared queries, and a server restart in the middle of a load.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
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

class PgPoolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new test::PostgresServer(test::PostgresServer::start()); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static pg::PoolConfig config(std::size_t size, bool pipeline) {
    pg::PoolConfig config;
    config.url = server_->url();
    config.max_size = size;
    config.pipeline = pipeline;
    return config;
  }
  static test::PostgresServer* server_;
};
test::PostgresServer* PgPoolTest::server_ = nullptr;

Runtime two_workers() { return Runtime::multi_thread().worker_threads(2).build(); }

TEST_F(PgPoolTest, PipelineModeSharesAFewConnections) {
  two_workers().block_on([](pg::PoolConfig config) -> Task<void> {
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(config);
    CO_ASSERT(pool.has_value());
    std::vector<Task<Result<std::int64_t, db::Error>>> calls;
    for (std::int64_t i = 0; i < 300; ++i)
      calls.push_back(pool->query_one<std::int64_t>("SELECT $1::int8 FROM pg_sleep(0.005)", i));
    std::vector<Result<std::int64_t, db::Error>> results = co_await when_all(std::move(calls));
    for (std::size_t i = 0; i < results.size(); ++i) {
      EXPECT_TRUE(results[i].has_value()) << i;
      if (results[i]) {
        EXPECT_EQ(*results[i], static_cast<std::int64_t>(i));
      }
    }
    const pg::PoolStats stats = pool->stats();
    EXPECT_LE(stats.connections, 4u);
    EXPECT_GE(stats.connections, 2u);  // it grew while the first connection was busy
    EXPECT_EQ(stats.in_flight, 0u);
    EXPECT_EQ(stats.leased, 0u);
  }(config(4, true)));
}

TEST_F(PgPoolTest, ExclusiveModeTimesOutWaitingForAConnection) {
  two_workers().block_on([](pg::PoolConfig config) -> Task<void> {
    config.acquire_timeout = 300ms;
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(config);
    CO_ASSERT(pool.has_value());
    Result<pg::Transaction, db::Error> held = co_await pool->begin();
    CO_ASSERT(held.has_value());
    EXPECT_EQ(pool->stats().leased, 1u);

    const Instant started = now();
    Result<std::int64_t, db::Error> starved = co_await pool->query_one<std::int64_t>("SELECT 1::int8");
    CO_ASSERT(!starved);
    EXPECT_EQ(starved.error().kind, Kind::pool_timeout);
    EXPECT_GE(now() - started, 250ms);
    EXPECT_LT(now() - started, 2s);

    Result<void, db::Error> committed = co_await held->commit();
    CO_ASSERT(committed.has_value());
    { pg::Transaction released = std::move(*held); }  // the lease goes back with the transaction
    Result<std::int64_t, db::Error> served = co_await pool->query_one<std::int64_t>("SELECT 2::int8");
    CO_ASSERT(served.has_value());
    EXPECT_EQ(*served, 2);
  }(config(1, false)));
}

TEST_F(PgPoolTest, AQueryTimeoutFailsTheCallAndCancelsTheQuery) {
  two_workers().block_on([](pg::PoolConfig config) -> Task<void> {
    config.query_timeout = 200ms;
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(config);
    CO_ASSERT(pool.has_value());
    const Instant started = now();
    Result<std::uint64_t, db::Error> slow = co_await pool->execute("SELECT pg_sleep(20)");
    CO_ASSERT(!slow);
    EXPECT_EQ(slow.error().kind, Kind::timeout);
    EXPECT_LT(now() - started, 2s);
    // The only connection answers at once: the server stopped the sleep.
    Result<std::int64_t, db::Error> next = co_await pool->query_one<std::int64_t>("SELECT 3::int8");
    CO_ASSERT(next.has_value());
    EXPECT_EQ(*next, 3);
    EXPECT_LT(now() - started, 4s);
  }(config(1, false)));
}

TEST_F(PgPoolTest, ATransactionHasItsConnectionToItself) {
  two_workers().block_on([](pg::PoolConfig config) -> Task<void> {
    Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(config);
    CO_ASSERT(pool.has_value());
    Result<void, db::Error> created =
        co_await pool->batch_execute("DROP TABLE IF EXISTS orders; CREATE TABLE orders (id INT PRIMARY KEY)");
    CO_ASSERT(created.has_value());
    Result<pg::Transaction, db::Error> tx = co_await pool->begin();
    CO_ASSERT(tx.has_value());
    Result<std::uint64_t, db::Error> inserted = co_await tx->execute("INSERT INTO orders VALUES (1)");
    CO_ASSERT(inserted.has_value());
    // Shared queries meanwhile run outside it: they do not see the uncommitted row.
    for (int i = 0; i < 20; ++i) {
      Result<std::int64_t, db::Error> outside = co_await pool->query_one<std::int64_t>("SELECT count(*) FROM orders");
      CO_ASSERT(outside.has_value());
      EXPECT_EQ(*outside, 0);
    }
    Result<void, db::Error> committed = co_await tx->commit();
    CO_ASSERT(committed.has_value());
    Result<std::int64_t, db::Error> after = co_await pool->query_one<std::int64_t>("SELECT count(*) FROM orders");
    CO_ASSERT(after.has_value());
    EXPECT_EQ(*after, 1);
  }(config(3, true)));
}

// A call's outcome during the restart test.
struct Sample {
  Instant at;  // when the call ended
  Duration took;
  bool ok;
  Kind kind;
};

Task<void> load_loop(pg::Pool pool, Instant until, std::mutex& mutex, std::vector<Sample>& samples) {
  while (now() < until) {
    const Instant started = now();
    Result<std::int64_t, db::Error> answer = co_await pool.query_one<std::int64_t>("SELECT 1::int8");
    const Instant ended = now();
    {
      std::lock_guard lock(mutex);
      samples.push_back(Sample{ended, ended - started, answer.has_value(), answer ? Kind::query : answer.error().kind});
    }
    co_await sleep(5ms);
  }
}

TEST_F(PgPoolTest, ServerRestartUnderLoadFailsFastAndRecovers) {
  test::PostgresServer server = test::PostgresServer::start();
  std::mutex mutex;
  std::vector<Sample> samples;
  std::atomic<std::int64_t> stopped_at{0}, restarted_at{0};
  const auto ticks = [] { return now().time_since_epoch().count(); };

  // The server is stopped 1 s into the load and started again 1.5 s later, from another thread.
  std::thread operator_thread([&] {
    std::this_thread::sleep_for(1s);
    stopped_at = ticks();  // connections break as soon as the stop begins
    server.stop();
    std::this_thread::sleep_for(1500ms);
    server.start_again();
    restarted_at = ticks();
  });

  std::size_t connects = 0;
  two_workers().block_on(
      [](std::string url, std::mutex& mutex, std::vector<Sample>& samples, std::size_t& connects) -> Task<void> {
        pg::PoolConfig config;
        config.url = std::move(url);
        config.max_size = 4;
        config.connect_timeout = 1s;
        Result<pg::Pool, db::Error> pool = co_await pg::Pool::connect(config);
        CO_ASSERT(pool.has_value());
        const Instant until = now() + 6s;
        std::vector<Task<void>> loops;
        for (int i = 0; i < 8; ++i) loops.push_back(load_loop(*pool, until, mutex, samples));
        co_await when_all(std::move(loops));
        connects = pool->stats().connects;
      }(server.url(), mutex, samples, connects));
  operator_thread.join();

  const Instant stop{Duration{stopped_at.load()}};
  const Instant back{Duration{restarted_at.load()}};
  std::size_t failures = 0, successes_after = 0;
  std::optional<Instant> first_success_after;
  Duration slowest{0};
  for (const Sample& sample : samples) {
    slowest = std::max(slowest, sample.took);
    if (!sample.ok) {
      ++failures;
      EXPECT_EQ(sample.kind, Kind::connection);
      EXPECT_GT(sample.at, stop);  // nothing failed before the outage
    }
    if (sample.ok && sample.at > back) {
      ++successes_after;
      if (!first_success_after) first_success_after = sample.at;
    }
  }
  EXPECT_GT(failures, 0u) << "the outage went unnoticed";
  EXPECT_LT(slowest, 1500ms) << "a call hung during the outage";
  ASSERT_TRUE(first_success_after.has_value()) << "the pool never recovered";
  EXPECT_LT(*first_success_after - back, 2s);
  EXPECT_GT(successes_after, 100u);
  // After recovery every call succeeds again.
  for (const Sample& sample : samples) {
    if (sample.at > *first_success_after + 100ms) {
      EXPECT_TRUE(sample.ok);
    }
  }
  EXPECT_GT(connects, 1u);  // it reconnected
}

}  // namespace
