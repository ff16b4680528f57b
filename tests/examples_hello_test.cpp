// The hello example as a user runs it: a child process, its banner, its four endpoints over real
// sockets, and SIGTERM: a graceful stop that still answers the request in flight, then exit status 0.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/example_server.hpp"
#include "support/http_harness.hpp"

using namespace std::chrono_literals;
using spindle_test::ChildProcess;
using spindle_test::RawConnection;

namespace {

struct HelloServer : spindle_test::ExampleServer {
  explicit HelloServer(std::vector<std::string> extra = {}) : ExampleServer(SPINDLE_HELLO_BINARY, std::move(extra)) {}
};

std::string get(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: hello\r\n\r\n"; }

}  // namespace

TEST(HelloExample, ServesItsFourEndpoints) {
  for (const char* workers : {"1", "2"}) {
    HelloServer server({"--workers", workers});
    RawConnection connection(server.port);
    connection.send(get("/plaintext"));
    auto plaintext = connection.read_response();
    ASSERT_TRUE(plaintext);
    EXPECT_EQ(plaintext->body, "Hello, World!");
    EXPECT_EQ(plaintext->header("content-type"), "text/plain; charset=utf-8");

    connection.send(get("/json"));
    auto json = connection.read_response();
    ASSERT_TRUE(json);
    EXPECT_EQ(json->body, R"({"message":"Hello, World!"})");
    EXPECT_EQ(json->header("content-type"), "application/json");

    const auto start = std::chrono::steady_clock::now();
    connection.send(get("/delay"));
    auto delayed = connection.read_response();
    ASSERT_TRUE(delayed);
    EXPECT_EQ(delayed->status, 200);
    EXPECT_GE(std::chrono::steady_clock::now() - start, 45ms);

    connection.send(
        "POST /echo HTTP/1.1\r\nHost: hello\r\nContent-Type: text/csv\r\nContent-Length: 7\r\n\r\na,b,c\r\n");
    auto echoed = connection.read_response();
    ASSERT_TRUE(echoed);
    EXPECT_EQ(echoed->body, "a,b,c\r\n");
    EXPECT_EQ(echoed->header("content-type"), "text/csv");

    server.process.signal(SIGTERM);
    EXPECT_EQ(server.process.wait(10s), 0) << server.process.drain_stderr();
  }
}

TEST(HelloExample, SigtermFinishesTheRequestInFlight) {
  HelloServer server;
  RawConnection busy(server.port);
  busy.send(get("/delay?ms=500"));
  RawConnection idle(server.port);
  idle.send(get("/plaintext"));
  ASSERT_TRUE(idle.read_response());
  std::this_thread::sleep_for(100ms);  // the /delay request is in its handler
  server.process.signal(SIGTERM);
  auto response = busy.read_response();
  ASSERT_TRUE(response) << "the request in flight was cut";
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->header("connection"), "close");
  EXPECT_TRUE(idle.closed_by_server());
  EXPECT_EQ(server.process.wait(10s), 0) << server.process.drain_stderr();
}
