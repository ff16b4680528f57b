// Faults under load, against real server processes: SIGTERM while requests are in flight (none of those
// the server took may be lost), handlers that throw or hang (only their own requests fail), and the
// database stopped under the users service (fast 503s, /readyz says so, back within 2 s of PostgreSQL).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "hostile/hostile_support.hpp"
#include "support/example_server.hpp"
#include "support/postgres_server.hpp"
#include "support/ws_raw.hpp"

namespace {

using namespace std::chrono_literals;
using namespace spindle_test;
using namespace spindle_test::hostile;
using Clock = std::chrono::steady_clock;

long answered_by_server(const std::string& log) {
  const auto at = log.rfind("answered ");
  return at == std::string::npos ? -1 : std::stol(log.substr(at + 9));
}

// 32 clients keep requests in flight, each on a keep-alive connection, half on /delay (50 ms) and half on
// /plaintext, and a WebSocket is open, when SIGTERM comes. Every response a handler produced must reach its client
// whole; requests the server never read (sent on a connection it was closing, or after it stopped accepting) are the
// clients' to retry, and are counted, not lost. The WebSocket is closed with 1001, and the exit status is 0.
TEST(Faults, SigtermUnderLoadDeliversEveryResponseTheServerProduced) {
  HostileServer server({"--workers", "2"});
  ASSERT_GT(server.port, 0);
  RawWebSocket socket(server.port, "/ws");
  await_receiving(socket);

  std::atomic<bool> signalled{false};
  // Unanswered requests: the first on a new connection (one the server may never have accepted: the
  // listener closes with connections still in its backlog), or a later one on a keep-alive connection.
  std::atomic<long> complete{0}, unanswered_new{0}, unanswered_reused{0}, refused{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i) {
    const std::string request =
        std::string{"GET "} + (i % 2 == 0 ? "/delay" : "/plaintext") + " HTTP/1.1\r\nHost: t\r\n\r\n";
    clients.emplace_back([&, request] {
      const auto give_up = Clock::now() + 15s;
      while (Clock::now() < give_up) {
        std::unique_ptr<RawConnection> connection;
        try {
          connection = std::make_unique<RawConnection>(server.port);
        } catch (const std::exception&) {
          refused.fetch_add(1);  // the listener is closed: the server is going away
          if (signalled.load()) return;
          continue;
        }
        for (bool first = true;; first = false) {
          std::optional<RawResponse> response;
          try {
            connection->send(request);
            response = connection->read_response();
          } catch (const std::exception&) {
          }
          if (!response) {
            (first ? unanswered_new : unanswered_reused).fetch_add(1);
            break;
          }
          EXPECT_EQ(response->status, 200);
          complete.fetch_add(1);
          if (response->header("connection") == "close") break;
        }
      }
    });
  }
  std::this_thread::sleep_for(1s);
  const long before_signal = complete.load();
  server.process.signal(SIGTERM);
  signalled = true;
  for (auto& client : clients) client.join();

  auto close = socket.read_data_or_close();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, spindle::ws::Opcode::close);
  EXPECT_EQ(close->close_code(), 1001);
  EXPECT_EQ(server.process.wait(15s), 0);
  const std::string log = server.process.drain_stderr();
  const long produced = answered_by_server(log);
  ASSERT_GE(produced, 0) << log;
  // The WebSocket's 101 went through the counting layer too.
  EXPECT_EQ(complete.load() + 1, produced) << "responses read whole by the clients vs produced by handlers";
  EXPECT_GT(before_signal, 100);
  record_outcome("every response a handler produced reaches its client whole; the WebSocket gets 1001; exit 0",
                 grouped(produced - 1) + " responses produced, " + grouped(complete.load()) +
                     " read whole by the clients (" + grouped(before_signal) + " before the signal); " +
                     grouped(unanswered_new.load()) + " sent on new connections the server had not accepted and " +
                     grouped(unanswered_reused.load()) + " on keep-alive connections it was closing, not taken; " +
                     "WebSocket close " + std::to_string(close->close_code()) + "; exit 0");
}

// A handler that throws answers 500 and one that hangs is cut by its timeout layer (504); requests to the
// other routes, at the same time on the same server, all succeed.
TEST(Faults, AHandlerThatThrowsOrHangsFailsOnlyItsOwnRequests) {
  HostileServer server;
  ASSERT_GT(server.port, 0);
  std::atomic<bool> running{true};
  std::atomic<long> normal_ok{0}, normal_failed{0}, thrown{0}, cut{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      RawConnection connection(server.port);
      while (running.load()) {
        connection.send("GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        auto response = connection.read_response();
        (response && response->status == 200 ? normal_ok : normal_failed).fetch_add(1);
        if (!response) return;
      }
    });
  }
  for (const auto& [path, status] : {std::pair{"/throw", 500}, std::pair{"/stuck", 504}}) {
    threads.emplace_back([&, path, status] {
      RawConnection connection(server.port);
      while (running.load()) {
        connection.send("GET " + std::string{path} + " HTTP/1.1\r\nHost: t\r\n\r\n");
        auto response = connection.read_response();
        if (!response) {
          other.fetch_add(1);
          return;
        }
        (response->status == status ? (status == 500 ? thrown : cut) : other).fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(3s);
  running = false;
  for (auto& thread : threads) thread.join();
  EXPECT_GT(normal_ok.load(), 1000);
  EXPECT_EQ(normal_failed.load(), 0);
  EXPECT_GT(thrown.load(), 10);
  EXPECT_GE(cut.load(), 2);
  EXPECT_EQ(other.load(), 0);
  record_outcome("/throw answers 500 and /stuck 504 (its 1 s timeout) while /plaintext, at the same time, all 200",
                 grouped(normal_ok.load()) + " /plaintext 200 and " + grouped(normal_failed.load()) + " failed; " +
                     grouped(thrown.load()) + " /throw 500; " + grouped(cut.load()) + " /stuck 504; " +
                     grouped(other.load()) + " other answers");
  expect_normal_answer(server.port, "handlers that threw and hung");
  const std::string log = server.stop();
  EXPECT_NE(log.find("a handler bug"), std::string::npos) << "the thrown exception is logged";
}

struct Sample {
  Clock::time_point sent;
  std::chrono::milliseconds latency;
  int status;  // 0: no response within the client's 5 s
};

// PostgreSQL stops (fast shutdown) while four clients read users, and starts again two seconds later.
TEST(Faults, PostgresStoppedUnderLoadFailsFastAndTheServiceRecoversWithinTwoSeconds) {
  auto database = spindle::test::PostgresServer::start();
  // --log-level warn: an access-log line per request would fill the stderr pipe no one reads meanwhile.
  ExampleServer service(SPINDLE_USERS_SERVER_BINARY,
                        {"--workers", "1", "--database-url", database.url(), "--log-level", "warn"});
  ASSERT_GT(service.port, 0);
  const std::string body = R"({"name":"Ada","email":"ada@example.test"})";
  auto created = spindle_test::exchange(service.port,
                                        "POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                        "Content-Length: " +
                                            std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 201) << created->body;
  const auto id_at = created->body.find("\"id\":");
  ASSERT_NE(id_at, std::string::npos) << created->body;
  const std::string read_user =
      "GET /users/" + std::to_string(std::stol(created->body.substr(id_at + 5))) + " HTTP/1.1\r\nHost: t\r\n\r\n";

  std::atomic<bool> running{true};
  std::mutex samples_lock;
  std::vector<Sample> samples;
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) {
    clients.emplace_back([&] {
      auto connection = std::make_unique<RawConnection>(service.port);
      while (running.load()) {
        const auto sent = Clock::now();
        std::optional<RawResponse> response;
        try {
          connection->send(read_user);
          response = connection->read_response();
        } catch (const std::exception&) {
        }
        const auto latency = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - sent);
        {
          std::lock_guard lock{samples_lock};
          samples.push_back({sent, latency, response ? response->status : 0});
        }
        if (!response) connection = std::make_unique<RawConnection>(service.port);
        std::this_thread::sleep_for(2ms);
      }
    });
  }
  std::this_thread::sleep_for(1s);
  const auto stopping = Clock::now();
  database.stop();
  const auto stopped = Clock::now();
  std::this_thread::sleep_for(1s);
  const auto ready = spindle_test::exchange(service.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
  const int ready_status = ready ? ready->status : 0;
  std::this_thread::sleep_for(1s);
  const auto restarting = Clock::now();
  database.start_again();
  const auto restarted = Clock::now();
  std::this_thread::sleep_for(4s);
  running = false;
  for (auto& client : clients) client.join();
  EXPECT_EQ(ready_status, 503) << "/readyz during the outage";

  long before = 0, outage = 0, outage_503 = 0, recovery_failures = 0, hangs = 0;
  std::chrono::milliseconds slowest_outage{0};
  std::optional<Clock::time_point> first_success;
  for (const Sample& s : samples) {
    if (s.status == 0) ++hangs;
    if (s.sent < stopping) {
      ++before;
      EXPECT_EQ(s.status, 200);
    } else if (s.sent > stopped && s.sent < restarting) {
      ++outage;
      outage_503 += s.status == 503;
      slowest_outage = std::max(slowest_outage, s.latency);
    } else if (s.sent > restarted) {
      if (s.status == 200 && !first_success) first_success = s.sent;
      if (s.sent > restarted + 2s && s.status != 200) ++recovery_failures;
    }
  }
  EXPECT_EQ(hangs, 0) << "requests without an answer within 5 s";
  EXPECT_GT(before, 50);
  EXPECT_GT(outage, 20);
  EXPECT_EQ(outage_503, outage) << "every request during the outage gets 503";
  EXPECT_LT(slowest_outage, 1s) << "failing fast: the slowest answer during the outage";
  ASSERT_TRUE(first_success) << "no success after PostgreSQL came back";
  const auto recovered = std::chrono::duration_cast<std::chrono::milliseconds>(*first_success - restarted);
  EXPECT_LT(recovered, 2s) << "from PostgreSQL ready to the first 200";
  EXPECT_EQ(recovery_failures, 0) << "failures more than 2 s after PostgreSQL came back";
  record_outcome(
      "during the outage every request 503 within 1 s, /readyz 503; the first 200 within 2 s of "
      "PostgreSQL being ready, and no failure after that; no request without an answer",
      grouped(before) + " requests 200 before; " + grouped(outage_503) + " of " + grouped(outage) +
          " during the outage 503, the slowest in " + std::to_string(slowest_outage.count()) + " ms; /readyz " +
          std::to_string(ready_status) + "; first 200 " + std::to_string(recovered.count()) +
          " ms after PostgreSQL was ready; " + grouped(recovery_failures) + " failures after that; " + grouped(hangs) +
          " unanswered");
  auto again = spindle_test::exchange(service.port, "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200);
  service.stop();
}

}  // namespace
