// The database benchmark's server (bench/db/run.sh): TechEmpower's database shapes on spindle::pg.
//
//   GET /db                     one random row of `world`: {"id":3217,"randomNumber":2149}
//   GET /queries?queries=N      N random rows (N clamped to 1..500, 1 when missing or not a number), as a
//                               JSON array; N separate queries run concurrently (when_all): in pipeline
//                               mode they go out back to back on shared connections, one Sync each
//   GET /queries-batch?queries=N  the same rows through one pg::Batch: N statements, one Sync, one round trip
//   GET /updates?queries=N      N rows read as /queries does, each given a new random number, written back
//                               with ONE statement (UPDATE ... FROM unnest of two int[] parameters, which
//                               TechEmpower's rules allow), ids in ascending order so that concurrent
//                               updates take their row locks in one order (no deadlock in the runs)
//   GET /sleep                  SELECT pg_sleep(0.05), then 200 "ok": a request that waits on the database
//   a database error, a pool timeout included: 503 {"error":"<kind>: <message>"}
//
//   db_server --database-url postgres://postgres@127.0.0.1:5432/postgres --pool-size 50 --pipeline on
//   db_server --database-url ... --setup      creates and fills `world` (10,000 rows), then exits
//
// --listen, --workers and --scheduler as every example server (examples/common/server_main.hpp); it
// prints "listening on HOST:PORT" once the pool's first connection is open, and exits 0 on SIGTERM.
// --scheduler per-core is refused: a pool's connections belong to the runtime that opened them.
#include <spindle/http.hpp>
#include <spindle/json.hpp>
#include <spindle/pg.hpp>
#include <spindle/spindle.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;

namespace {

struct World {
  std::int32_t id;
  std::int32_t randomNumber;  // NOLINT(readability-identifier-naming): TechEmpower's JSON member name
};
BOOST_DESCRIBE_STRUCT(World, (), (id, randomNumber))

using Row = std::tuple<std::int32_t, std::int32_t>;  // (id, randomnumber), read by position

constexpr std::string_view kSelect = "SELECT id, randomnumber FROM world WHERE id = $1";
// Two int[] parameters given as text ('{1,2,3}'): spindle::pg sends a std::string as text of type
// "unknown", which the casts resolve. One statement whatever N is, so one prepared statement.
constexpr std::string_view kUpdate =
    "UPDATE world SET randomnumber = v.r FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS r) AS v "
    "WHERE world.id = v.id";
constexpr std::string_view kSetup =
    "SET client_min_messages = warning;"  // no NOTICE for the DROP of a missing table
    "DROP TABLE IF EXISTS world;"
    "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL DEFAULT 0);"
    "INSERT INTO world (id, randomnumber) "
    "SELECT i, 1 + floor(random() * 10000)::int FROM generate_series(1, 10000) AS i;";
// Apart: a script of several statements runs as one transaction, which VACUUM refuses.
constexpr std::string_view kAnalyze = "VACUUM ANALYZE world";

// Set once before the server starts, read by every handler (a Pool is a handle; its calls are thread-safe).
std::optional<pg::Pool> g_pool;
pg::Pool& pool() { return *g_pool; }

// 1..10000, from a per-thread xorshift generator: no lock, and cheap next to a query.
std::int32_t random_number() {
  thread_local std::uint64_t state = std::random_device{}() | 1;
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return static_cast<std::int32_t>(state % 10'000) + 1;
}

// TechEmpower's rule for ?queries=: missing or not a number gives 1; clamped to 1..500.
int query_count(std::string_view query) {
  int n = 1;
  for (std::size_t at = 0; at <= query.size();) {
    const std::size_t end = std::min(query.find('&', at), query.size());
    const std::string_view pair = query.substr(at, end - at);
    if (pair.starts_with("queries=")) {
      const std::string_view digits = pair.substr(8);
      if (std::from_chars(digits.data(), digits.data() + digits.size(), n).ec != std::errc{}) n = 1;
      break;
    }
    at = end + 1;
  }
  return std::clamp(n, 1, 500);
}

// A few errors go to stderr, so that a run that gets 503s shows why; the rest are only counted by wrk.
std::atomic<int> g_errors_logged{0};
Response unavailable(const db::Error& error) {
  if (g_errors_logged.fetch_add(1, std::memory_order_relaxed) < 5)
    std::fprintf(stderr, "database error: %s\n", error.to_string().c_str());
  return Response::error(Status::service_unavailable, error.to_string());
}

World world_of(const Row& row) { return World{std::get<0>(row), std::get<1>(row)}; }

Task<Result<Row, db::Error>> select_random() { return pool().query_one<Row>(kSelect, random_number()); }

// N single-row queries at once: spawned by when_all, so that all are sent before any answer is awaited.
Task<Result<std::vector<World>, db::Error>> select_concurrently(int n) {
  std::vector<Task<Result<Row, db::Error>>> queries;
  queries.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) queries.push_back(select_random());
  Task<std::vector<Result<Row, db::Error>>> all = when_all(std::move(queries));
  std::vector<Result<Row, db::Error>> rows = co_await std::move(all);
  std::vector<World> worlds;
  worlds.reserve(rows.size());
  for (Result<Row, db::Error>& row : rows) {
    if (!row) co_return Err{std::move(row).error()};
    worlds.push_back(world_of(*row));
  }
  co_return worlds;
}

Task<Response> single_query(Request) {
  Task<Result<Row, db::Error>> query = select_random();
  Result<Row, db::Error> row = co_await std::move(query);
  if (!row) co_return unavailable(row.error());
  co_return Response::json(json::to_string(world_of(*row)));
}

Task<Response> queries(Request request) {
  Task<Result<std::vector<World>, db::Error>> selecting = select_concurrently(query_count(request.query()));
  Result<std::vector<World>, db::Error> worlds = co_await std::move(selecting);
  if (!worlds) co_return unavailable(worlds.error());
  co_return Response::json(json::to_string(*worlds));
}

Task<Response> queries_batch(Request request) {
  const int n = query_count(request.query());
  pg::Batch batch;
  for (int i = 0; i < n; ++i) batch.add(kSelect, random_number());
  Task<Result<pg::BatchResults, db::Error>> running = pool().run(std::move(batch));
  Result<pg::BatchResults, db::Error> results = co_await std::move(running);
  if (!results) co_return unavailable(results.error());
  std::vector<World> worlds;
  worlds.reserve(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < results->size(); ++i) {
    Result<Row, db::Error> row = results->one<Row>(i);
    if (!row) co_return unavailable(row.error());
    worlds.push_back(world_of(*row));
  }
  co_return Response::json(json::to_string(worlds));
}

// '{1,2,3}': an int[] literal, for the text parameters of kUpdate.
void append_array(std::string& out, const std::vector<std::int32_t>& values) {
  out.push_back('{');
  char digits[16];
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i != 0) out.push_back(',');
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, values[i]);
    out.append(digits, end);
  }
  out.push_back('}');
}

Task<Response> updates(Request request) {
  Task<Result<std::vector<World>, db::Error>> selecting = select_concurrently(query_count(request.query()));
  Result<std::vector<World>, db::Error> read = co_await std::move(selecting);
  if (!read) co_return unavailable(read.error());
  std::vector<World>& worlds = *read;
  // New numbers; the statement takes the rows in ascending id order (one lock order for every request),
  // and a row drawn twice is written once, with the number both copies in the answer show.
  std::vector<std::size_t> order(worlds.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return worlds[a].id < worlds[b].id; });
  std::vector<std::int32_t> ids;
  std::vector<std::int32_t> numbers;
  ids.reserve(worlds.size());
  numbers.reserve(worlds.size());
  for (std::size_t i : order) {
    if (!ids.empty() && ids.back() == worlds[i].id) {
      worlds[i].randomNumber = numbers.back();
      continue;
    }
    worlds[i].randomNumber = random_number();
    ids.push_back(worlds[i].id);
    numbers.push_back(worlds[i].randomNumber);
  }
  std::string id_array;
  std::string number_array;
  append_array(id_array, ids);
  append_array(number_array, numbers);
  Task<Result<std::uint64_t, db::Error>> writing = pool().execute(kUpdate, id_array, number_array);
  Result<std::uint64_t, db::Error> written = co_await std::move(writing);
  if (!written) co_return unavailable(written.error());
  co_return Response::json(json::to_string(worlds));
}

Task<Response> sleep_in_database(Request) {
  Task<Result<std::uint64_t, db::Error>> sleeping = pool().execute("SELECT pg_sleep(0.05)");
  Result<std::uint64_t, db::Error> slept = co_await std::move(sleeping);
  if (!slept) co_return unavailable(slept.error());
  co_return Response::text("ok");
}

Task<int> setup(pg::PoolConfig config) {
  Task<Result<pg::Pool, db::Error>> connecting = pg::Pool::connect(std::move(config));
  Result<pg::Pool, db::Error> connected = co_await std::move(connecting);
  if (!connected) {
    std::fprintf(stderr, "cannot connect: %s\n", connected.error().to_string().c_str());
    co_return 1;
  }
  Task<Result<void, db::Error>> creating = connected->batch_execute(kSetup);
  Result<void, db::Error> created = co_await std::move(creating);
  if (!created) {
    std::fprintf(stderr, "setup failed: %s\n", created.error().to_string().c_str());
    co_return 1;
  }
  Task<Result<void, db::Error>> analyzing = connected->batch_execute(kAnalyze);
  Result<void, db::Error> analyzed = co_await std::move(analyzing);
  if (!analyzed) {
    std::fprintf(stderr, "setup failed: %s\n", analyzed.error().to_string().c_str());
    co_return 1;
  }
  Task<Result<std::int64_t, db::Error>> counting = connected->query_one<std::int64_t>("SELECT count(*) FROM world");
  Result<std::int64_t, db::Error> rows = co_await std::move(counting);
  if (!rows) {
    std::fprintf(stderr, "setup failed: %s\n", rows.error().to_string().c_str());
    co_return 1;
  }
  std::printf("world: %lld rows\n", static_cast<long long>(*rows));
  co_return 0;
}

Task<int> serve(TcpListener listener, SignalListener& signals, pg::PoolConfig config) {
  Task<Result<pg::Pool, db::Error>> connecting = pg::Pool::connect(std::move(config));
  Result<pg::Pool, db::Error> connected = co_await std::move(connecting);
  if (!connected) {
    std::fprintf(stderr, "cannot connect: %s\n", connected.error().to_string().c_str());
    co_return 1;
  }
  g_pool.emplace(std::move(*connected));
  Server server{Router<>{}
                    .route("/db", get(single_query))
                    .route("/queries", get(queries))
                    .route("/queries-batch", get(queries_batch))
                    .route("/updates", get(updates))
                    .route("/sleep", get(sleep_in_database))};
  // Announced only now: a client that sees the line finds the pool connected.
  std::printf("listening on %s\n", listener.local_addr()->to_string().c_str());
  std::fflush(stdout);
  Task<int> serving = examples::run_worker(
      std::move(listener), signals,
      [&server](TcpListener l, CancellationToken stop) { return server.serve(std::move(l), std::move(stop)); });
  const int status = co_await std::move(serving);
  g_pool.reset();
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  std::size_t pool_size = 50;
  std::string pipeline = "on";
  unsigned acquire_timeout_ms = 5'000;
  bool do_setup = false;
  const examples::ServerArgs args =
      examples::parse_server_args(argc, argv, "TechEmpower's database shapes on spindle::pg", [&](CLI::App& app) {
        app.add_option("--database-url", url, "postgres://user@host:port/dbname")->required();
        app.add_option("--pool-size", pool_size, "the pool's max_size")
            ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}));
        app.add_option("--pipeline", pipeline,
                       "on: queries of many requests share connections; off: a connection per query")
            ->check(CLI::IsMember({"on", "off"}));
        app.add_option("--acquire-timeout-ms", acquire_timeout_ms, "exclusive mode: longest wait for a connection");
        app.add_flag("--setup", do_setup, "create and fill the world table (10,000 rows), then exit");
      });
  if (args.per_core) {
    std::fprintf(stderr, "--scheduler per-core is not supported: one pool serves the whole process\n");
    return 2;
  }
  pg::PoolConfig config;
  config.url = url;
  config.max_size = pool_size;
  config.acquire_timeout = std::chrono::milliseconds{acquire_timeout_ms};
  config.pipeline = pipeline == "on";

  if (do_setup) {
    Runtime runtime;
    return runtime.block_on(setup(std::move(config)));
  }
  auto listener = TcpListener::bind(args.listen, {.backlog = 4096, .reuse_address = true});
  if (!listener) {
    std::fprintf(stderr, "cannot listen on %s: %s\n", args.listen.to_string().c_str(),
                 listener.error().message().c_str());
    return 1;
  }
  // Before the runtime, as examples/common/server_main.hpp does: a SIGTERM at any time stops us cleanly.
  SignalListener signals{SIGINT, SIGTERM};
  Runtime runtime = Runtime::multi_thread().worker_threads(args.workers).build();
  return runtime.block_on(serve(std::move(*listener), signals, std::move(config)));
}
