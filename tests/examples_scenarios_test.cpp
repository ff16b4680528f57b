// The scenario examples as users run them: each binary started as a child process, exercised over real
// sockets, and stopped with SIGTERM (exit status 0). examples/testing is a test suite of its own.

#include <gtest/gtest.h>

#include <csignal>
#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/example_server.hpp"
#include "support/http_harness.hpp"
#include "support/ws_raw.hpp"

using namespace std::chrono_literals;
using spindle_test::ChildProcess;
using spindle_test::RawConnection;

namespace {

struct Example : spindle_test::ExampleServer {
  explicit Example(std::string binary) : ExampleServer(std::move(binary)) {}
  ~Example() {
    if (!stopped) stop();
  }
  std::optional<spindle_test::RawResponse> send(const std::string& request) {
    return spindle_test::exchange(port, request);
  }
};

std::string get(const std::string& target, const std::string& headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n";
}
std::string post_json(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

}  // namespace

TEST(ExamplesScenarios, JsonApi) {
  Example example{SPINDLE_JSON_API_BINARY};
  auto created = example.send(post_json("/todos", R"({"title":"ship it"})"));
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201);
  EXPECT_EQ(created->header("location"), "/todos/1");
  EXPECT_EQ(created->body, R"({"id":1,"title":"ship it","done":false})");
  auto listed = example.send(get("/todos"));
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->body, R"({"todos":[{"id":1,"title":"ship it","done":false}],"total":1})");
  auto invalid = example.send(post_json("/todos", R"({"title":""})"));
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->status, 422);
  EXPECT_EQ(invalid->body, R"({"error":"must not be empty","field":"title"})");
  auto missing = example.send(get("/todos/9"));
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST(ExamplesScenarios, Middleware) {
  Example example{SPINDLE_MIDDLEWARE_BINARY};
  auto report = example.send(get("/report", "Accept-Encoding: gzip\r\nX-Request-Id: trace-1\r\n"));
  ASSERT_TRUE(report);
  EXPECT_EQ(report->status, 200);
  EXPECT_EQ(report->header("content-encoding"), "gzip");
  EXPECT_EQ(report->header("x-request-id"), "trace-1");
  auto refused = example.send(get("/admin/stats"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 401);
  auto allowed = example.send(get("/admin/stats", "X-Api-Key: let-me-in\r\n"));
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->body, "stats for operator\n");
  auto unknown = example.send(get("/admin/nothing"));
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);  // route_layer: no key needed to learn a path does not exist
  auto panicked = example.send(get("/panic"));
  ASSERT_TRUE(panicked);
  EXPECT_EQ(panicked->status, 500);
  EXPECT_EQ(panicked->body.find("a bug"), std::string::npos);
  auto timed_out = example.send(get("/slow?ms=5000"));
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->status, 504);
  // The access log: one JSON line per request on stderr, with the request id.
  const std::string log = example.stop();
  EXPECT_NE(log.find(R"("request_id":"trace-1","method":"GET","path":"/report")"), std::string::npos) << log;
}

TEST(ExamplesScenarios, StaticFiles) {
  Example example{SPINDLE_STATIC_FILES_BINARY};
  auto index = example.send(get("/"));
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->body.find("Served by Spindle"), std::string::npos);
  auto css = example.send(get("/assets/app.css"));
  ASSERT_TRUE(css);
  EXPECT_EQ(css->header("content-type"), "text/css; charset=utf-8");
  const std::string etag = css->header("etag").value_or("");
  EXPECT_FALSE(etag.empty());
  auto cached = example.send(get("/assets/app.css", "If-None-Match: " + etag + "\r\n"));
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 304);
  auto escape = example.send(get("/../../etc/passwd"));
  ASSERT_TRUE(escape);
  EXPECT_EQ(escape->status, 404);
}

TEST(ExamplesScenarios, CustomRejection) {
  Example example{SPINDLE_CUSTOM_REJECTION_BINARY};
  auto refused = example.send(post_json("/items", R"({"name":5,"price":1})"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 422);
  EXPECT_EQ(refused->header("content-type"), "application/problem+json");
  EXPECT_EQ(refused->body,
            R"({"type":"about:blank","title":"Unprocessable Content","status":422,"detail":"must be a string",)"
            R"("pointer":"name"})");
  auto draft = example.send(post_json("/drafts", R"({"name":5})"));
  ASSERT_TRUE(draft);
  EXPECT_EQ(draft->status, 200);
  EXPECT_EQ(draft->body, "kept as a draft (must be a string)");
  auto bad_id = example.send(get("/items/x"));
  ASSERT_TRUE(bad_id);
  EXPECT_EQ(bad_id->status, 400);
  EXPECT_EQ(bad_id->header("content-type"), "application/problem+json");
}

TEST(ExamplesScenarios, GracefulShutdownFinishesTheRequestInFlight) {
  Example example{SPINDLE_GRACEFUL_SHUTDOWN_BINARY};
  RawConnection busy(example.port);
  busy.send(get("/work?ms=700"));
  std::this_thread::sleep_for(150ms);  // the request is in its handler
  example.process.signal(SIGTERM);
  auto response = busy.read_response();
  ASSERT_TRUE(response) << "the request in flight was cut";
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "worked 700 ms\n");
  EXPECT_EQ(response->header("connection"), "close");
}

TEST(ExamplesScenarios, ChatBroadcastsToEverySocketAndTheEventFeed) {
  Example example{SPINDLE_CHAT_BINARY};
  auto page = example.send(get("/"));
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("new WebSocket"), std::string::npos);

  // An SSE reader, raw: the head, then events as they come.
  RawConnection feed{example.port};
  feed.send(get("/events"));
  spindle_test::RawWebSocket alice{example.port, "/ws"};
  spindle_test::RawWebSocket bob{example.port, "/ws"};
  std::this_thread::sleep_for(200ms);  // every subscriber is in before the message
  alice.send_frame(spindle::ws::Opcode::text, "hello, room");
  for (spindle_test::RawWebSocket* socket : {&alice, &bob}) {
    auto message = socket->read_data_or_close();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->opcode, spindle::ws::Opcode::text);
    EXPECT_EQ(message->payload, "hello, room");  // the sender gets it too
  }
  std::string received;
  char chunk[4096];
  while (received.find("data: hello, room\n\n") == std::string::npos) {
    const ssize_t n = ::recv(feed.fd(), chunk, sizeof chunk, 0);
    ASSERT_GT(n, 0) << received;
    received.append(chunk, static_cast<std::size_t>(n));
  }
  EXPECT_NE(received.find("content-type: text/event-stream"), std::string::npos);

  // SIGTERM: the sockets are told the server is going away, and it exits 0.
  example.stop();
  auto goodbye = alice.read_data_or_close();
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->opcode, spindle::ws::Opcode::close);
  EXPECT_EQ(goodbye->close_code(), 1001);
}
