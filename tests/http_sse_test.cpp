// Server-sent events: the wire format of an event (checked against a parser that follows the WHATWG
// algorithm), refused field values, and streams served over real sockets: events in order, keep-alive
// comments while the producer is idle, and a producer that stops when its client leaves.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "spindle/http/sse.hpp"
#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;
using spindle_test::RawConnection;
using spindle_test::TestServer;

namespace {

// --- the client's side, per the WHATWG algorithm ("Interpreting an event stream")

struct ReceivedEvent {
  std::string type;
  std::string data;
  std::string last_event_id;
  friend bool operator==(const ReceivedEvent&, const ReceivedEvent&) = default;
};

/// What an EventSource dispatches for `stream`, and the last retry delay it was given.
struct Received {
  std::vector<ReceivedEvent> events;
  std::optional<long> retry;
};

Received parse_stream(std::string_view stream) {
  Received received;
  std::string data;
  std::string type;
  std::string last_event_id;
  std::size_t start = 0;
  while (start < stream.size()) {
    const std::size_t end = stream.find_first_of("\r\n", start);
    if (end == std::string_view::npos) break;  // an incomplete last line is not processed
    const std::string_view line = stream.substr(start, end - start);
    start = end + (stream[end] == '\r' && end + 1 < stream.size() && stream[end + 1] == '\n' ? 2 : 1);
    if (line.empty()) {  // dispatch
      if (!data.empty()) {
        data.pop_back();  // the last LF
        received.events.push_back({type.empty() ? "message" : type, data, last_event_id});
      }
      data.clear();
      type.clear();
      continue;
    }
    if (line.front() == ':') continue;  // a comment
    const std::size_t colon = line.find(':');
    const std::string_view name = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view{} : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "event") {
      type = value;
    } else if (name == "data") {
      data.append(value).push_back('\n');
    } else if (name == "id") {
      if (value.find('\0') == std::string_view::npos) last_event_id = value;
    } else if (name == "retry") {
      if (!value.empty() && value.find_first_not_of("0123456789") == std::string_view::npos)
        received.retry = std::stol(std::string{value});
    }
  }
  return received;
}

// --- a client reading one stream as it arrives

/// A GET of an event stream on a real socket; reads the head, then the chunked body piece by piece.
class StreamClient {
 public:
  StreamClient(int port, std::string_view path) : connection_(port) {
    connection_.send("GET " + std::string{path} + " HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n");
  }

  /// Reads until the body holds `text`; false if the stream ended or was silent for 5 s first.
  bool read_until(std::string_view text) {
    while (body_.find(text) == std::string::npos)
      if (!read_more()) return false;
    return true;
  }
  /// Reads to the end of the body; false if the connection failed or was silent for 5 s first.
  bool read_to_end() {
    while (!ended_)
      if (!read_more()) return false;
    return true;
  }

  int status() const noexcept { return status_; }
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [field, value] : headers_)
      if (spindle::http::detail::iequals(field, name)) return value;
    return std::nullopt;
  }
  const std::string& body() const noexcept { return body_; }

 private:
  /// Decodes what has arrived, or receives more; false at the end or on failure.
  bool read_more() {
    if (status_ == 0 && !raw_.empty()) {
      ResponseParser parser;
      const ResponseParser::Status parsed = parser.parse(raw_, false);
      if (parsed == ResponseParser::Status::error) throw std::runtime_error("bad response head");
      if (parsed == ResponseParser::Status::complete) {
        status_ = parser.head().status;
        for (const auto& field : parser.head().fields) headers_.emplace_back(field.name, field.value);
        raw_.erase(0, parser.head_size());
        return true;
      }
    } else if (status_ != 0 && !raw_.empty()) {
      if (ended_) return false;
      const ChunkedDecoder::Result step = decoder_.decode(raw_);
      if (step.status == ChunkedDecoder::Status::error) throw std::runtime_error("bad chunked body");
      body_.append(step.data);
      raw_.erase(0, step.consumed);
      if (step.status == ChunkedDecoder::Status::done) ended_ = true;
      if (step.consumed > 0) return true;
    }
    if (ended_) return false;
    char buffer[4096];
    const ssize_t n = ::recv(connection_.fd(), buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    raw_.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  RawConnection connection_;
  std::string raw_;  // received, not decoded yet
  int status_ = 0;
  std::vector<std::pair<std::string, std::string>> headers_;
  ChunkedDecoder decoder_;
  std::string body_;
  bool ended_ = false;
};

/// Waits up to `limit` for `condition`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// --- the server's side

/// What the producers report to the test, from the server's threads.
struct Probe {
  std::atomic<int> finished{0};
  std::atomic<bool> last_send_refused{false};
};

Task<void> send_greetings(SseSender events) {
  Event greeting = Event{}.event("greeting").id("1").data("hello");
  const bool sent_greeting = co_await events.send(std::move(greeting));
  if (!sent_greeting) co_return;
  const bool sent_lines = co_await events.send_data("line 1\nline 2\r\nline 3\rline 4");
  if (!sent_lines) co_return;
  Event last = Event{}.comment("the end").retry(3s).id("3").data("");
  co_await events.send(std::move(last));
}

Task<void> send_numbered(SseSender events, int count) {
  for (int i = 0; i < count; ++i) {
    const bool sent = co_await events.send(Event{}.id(std::to_string(i)).data("event " + std::to_string(i)));
    if (!sent) co_return;
  }
}

// One event, a pause of 300 ms (six keep-alive intervals of the route), another event, the end.
Task<void> send_with_a_pause(SseSender events) {
  const bool sent_first = co_await events.send_data("first");
  if (!sent_first) co_return;
  co_await sleep(300ms);
  co_await events.send_data("second");
}

// Ticks until the client is gone.
Task<void> tick_until_refused(SseSender events, std::shared_ptr<Probe> probe) {
  for (int n = 0;; ++n) {
    const bool sent = co_await events.send(Event{}.event("tick").data(std::to_string(n)));
    if (!sent) break;
    co_await sleep(10ms);
  }
  probe->last_send_refused = true;
  probe->finished += 1;
}

// Says hello, then has nothing to say: only the keep-alive can tell it the client left.
Task<void> hello_then_wait(SseSender events, std::shared_ptr<Probe> probe) {
  const bool said_hello = co_await events.send_data("hello");
  if (said_hello) {
    while (!events.is_closed()) co_await sleep(10ms);
  }
  const bool sent = co_await events.send_data("anyone there?");
  probe->last_send_refused = !sent;
  probe->finished += 1;
}

Router<> sse_routes(std::shared_ptr<Probe> probe) {
  return Router<>{}
      .route("/greetings", get([](Request) -> Task<Sse> {
               auto [events, sse] = Sse::channel();
               spawn(send_greetings(std::move(events))).detach();
               co_return sse.without_keep_alive();
             }))
      .route("/numbered", get([] {
               auto [events, sse] = Sse::channel(4);  // smaller than the count: the producer waits for the client
               spawn(send_numbered(std::move(events), 200)).detach();
               return sse.without_keep_alive();
             }))
      .route("/pause", get([] {
               auto [events, sse] = Sse::channel();
               spawn(send_with_a_pause(std::move(events))).detach();
               return sse.keep_alive(50ms);
             }))
      .route("/pause-ping", get([] {
               auto [events, sse] = Sse::channel();
               spawn(send_with_a_pause(std::move(events))).detach();
               return sse.keep_alive(50ms, "ping");
             }))
      .route("/pause-quiet", get([] {
               auto [events, sse] = Sse::channel();
               spawn(send_with_a_pause(std::move(events))).detach();
               return sse.without_keep_alive();
             }))
      .route("/ticks", get([probe] {
               auto [events, sse] = Sse::channel();
               spawn(tick_until_refused(std::move(events), probe)).detach();
               return sse.keep_alive(50ms);
             }))
      .route("/open", get([probe] {
               auto [events, sse] = Sse::channel();
               spawn(hello_then_wait(std::move(events), probe)).detach();
               return sse.keep_alive(10s);
             }))
      .route("/hello", get([probe]() -> Response {
               auto [events, sse] = Sse::channel();
               spawn(hello_then_wait(std::move(events), probe)).detach();
               return sse.keep_alive(50ms).into_response();
             }));
}

std::size_t count_of(std::string_view text, std::string_view part) {
  std::size_t count = 0;
  for (std::size_t at = text.find(part); at != std::string_view::npos; at = text.find(part, at + part.size())) ++count;
  return count;
}

}  // namespace

// --- the wire format

TEST(HttpSse, SerializesEachFieldAsALine) {
  EXPECT_EQ(Event{}.data("hello").serialize(), "data: hello\n\n");
  EXPECT_EQ(Event{}.event("update").id("7").data("line1\nline2").retry(3s).serialize(),
            "event: update\nid: 7\nretry: 3000\ndata: line1\ndata: line2\n\n");
  EXPECT_EQ(Event{}.retry(1500ms).serialize(), "retry: 1500\n\n");
  EXPECT_EQ(Event{}.comment("keep-alive").serialize(), ": keep-alive\n\n");
  EXPECT_EQ(Event{}.comment("").serialize(), ":\n\n");
  EXPECT_EQ(Event{}.comment("one").comment("two\nthree").data("x").serialize(), ": one\n: two\n: three\ndata: x\n\n");
  EXPECT_EQ(Event{}.id("").data("").serialize(), "id: \ndata: \n\n");  // an empty id resets Last-Event-ID
  EXPECT_EQ(Event{}.data(" leading space").serialize(), "data:  leading space\n\n");
  EXPECT_EQ(Event{}.data("first").data("second").serialize(), "data: second\n\n");
  EXPECT_EQ(Event{}.json_data(std::vector<int>{1, 2}).serialize(), "data: [1,2]\n\n");
  EXPECT_EQ(Event{}.json_data(std::string{"two\nlines"}).serialize(), "data: \"two\\nlines\"\n\n");
}

TEST(HttpSse, SplitsDataAtEveryKindOfLineBreak) {
  EXPECT_EQ(Event{}.data("a\r\nb\rc\nd").serialize(), "data: a\ndata: b\ndata: c\ndata: d\n\n");
  EXPECT_EQ(Event{}.data("a\n").serialize(), "data: a\ndata: \n\n");
  EXPECT_EQ(Event{}.data("\r\n").serialize(), "data: \ndata: \n\n");
  EXPECT_EQ(Event{}.data("\n\r").serialize(), "data: \ndata: \ndata: \n\n");  // LF then CR: two breaks
  EXPECT_EQ(Event{}.data("").serialize(), "data: \n\n");
}

TEST(HttpSse, RefusesFieldValuesThatWouldBreakTheStream) {
  EXPECT_THROW(Event{}.event("a\nb"), std::invalid_argument);
  EXPECT_THROW(Event{}.event("a\rb"), std::invalid_argument);
  EXPECT_THROW(Event{}.event("update\r\n"), std::invalid_argument);
  EXPECT_THROW(Event{}.id("7\n"), std::invalid_argument);
  EXPECT_THROW(Event{}.id("\r7"), std::invalid_argument);
  EXPECT_THROW(Event{}.id(std::string_view{"7\0"
                                           "8",
                                           3}),
               std::invalid_argument);
  EXPECT_THROW(Event{}.retry(-1ms), std::invalid_argument);
  Event event;
  event.data("kept");
  EXPECT_THROW(event.id("bad\n"), std::invalid_argument);
  EXPECT_EQ(event.serialize(), "data: kept\n\n");  // a refused value leaves the event as it was
}

// Random values with line breaks, colons, spaces and NULs in the data: what the client's algorithm reads
// back is what was sent.
TEST(HttpSse, WhatTheClientParsesIsWhatWasSent) {
  static constexpr char kAlphabet[] = {'a', 'b', ' ', ':', '\r', '\n', '\0', 'x', '\xC3', '\xA9'};
  std::mt19937 random(11);
  const auto random_text = [&](bool line_breaks) {
    std::string text(random() % 12, 'a');
    for (char& c : text) {
      do {
        c = kAlphabet[random() % sizeof kAlphabet];
      } while (!line_breaks && (c == '\r' || c == '\n' || c == '\0'));
    }
    return text;
  };
  for (int round = 0; round < 20000; ++round) {
    const std::string type = random_text(false);
    const std::string id = random_text(false);
    const std::string data = random_text(true);
    Event event;
    if (!type.empty()) event.event(type);
    event.id(id).data(data).comment(random_text(true));
    if (round % 2 == 0) event.retry(std::chrono::milliseconds(round));
    const Received received = parse_stream(event.serialize());
    ASSERT_EQ(received.events.size(), 1u) << round;
    // The client normalizes line breaks in data to LF.
    std::string expected_data;
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (data[i] == '\r') {
        expected_data.push_back('\n');
        if (i + 1 < data.size() && data[i + 1] == '\n') ++i;
      } else {
        expected_data.push_back(data[i]);
      }
    }
    EXPECT_EQ(received.events[0], (ReceivedEvent{type.empty() ? "message" : type, expected_data, id})) << round;
    if (round % 2 == 0) {
      EXPECT_EQ(received.retry, round);
    }
  }
}

// --- streams over a socket

TEST(HttpSse, StreamsEventsInOrderWithTheWireFormat) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  StreamClient client(server.port(), "/greetings");
  ASSERT_TRUE(client.read_to_end());
  EXPECT_EQ(client.status(), 200);
  EXPECT_EQ(client.header("content-type"), "text/event-stream");
  EXPECT_EQ(client.header("cache-control"), "no-cache");
  EXPECT_EQ(client.header("x-accel-buffering"), "no");
  EXPECT_EQ(client.header("transfer-encoding"), "chunked");
  EXPECT_EQ(client.body(),
            "event: greeting\nid: 1\ndata: hello\n\n"
            "data: line 1\ndata: line 2\ndata: line 3\ndata: line 4\n\n"
            ": the end\nid: 3\nretry: 3000\ndata: \n\n");
  const Received received = parse_stream(client.body());
  ASSERT_EQ(received.events.size(), 3u);
  EXPECT_EQ(received.events[0], (ReceivedEvent{"greeting", "hello", "1"}));
  EXPECT_EQ(received.events[1], (ReceivedEvent{"message", "line 1\nline 2\nline 3\nline 4", "1"}));
  EXPECT_EQ(received.events[2], (ReceivedEvent{"message", "", "3"}));
  EXPECT_EQ(received.retry, 3000);
}

TEST(HttpSse, ManyEventsArriveInOrderThroughASmallQueue) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  StreamClient client(server.port(), "/numbered");
  ASSERT_TRUE(client.read_to_end());
  std::string expected;
  for (int i = 0; i < 200; ++i) expected += "id: " + std::to_string(i) + "\ndata: event " + std::to_string(i) + "\n\n";
  EXPECT_EQ(client.body(), expected);
}

TEST(HttpSse, SendsKeepAliveCommentsWhileTheProducerIsIdle) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  for (const auto& [path, comment] : {std::pair{"/pause", ":\n\n"}, std::pair{"/pause-ping", ": ping\n\n"}}) {
    StreamClient client(server.port(), path);
    ASSERT_TRUE(client.read_to_end()) << path;
    const std::string& body = client.body();
    // The two events, and between them only keep-alive comments: about six in 300 ms at 50 ms each.
    ASSERT_TRUE(body.starts_with("data: first\n\n")) << body;
    ASSERT_TRUE(body.ends_with("data: second\n\n")) << body;
    const std::string_view between =
        std::string_view{body}.substr(13, body.size() - 13 - std::string_view{"data: second\n\n"}.size());
    const std::size_t comments = count_of(between, comment);
    EXPECT_GE(comments, 3u) << path;
    EXPECT_LE(comments, 8u) << path;
    EXPECT_EQ(between.size(), comments * std::string_view{comment}.size()) << body;
    EXPECT_EQ(parse_stream(body).events.size(), 2u);
  }
}

TEST(HttpSse, KeepAliveCanBeTurnedOff) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  StreamClient client(server.port(), "/pause-quiet");
  ASSERT_TRUE(client.read_to_end());
  EXPECT_EQ(client.body(), "data: first\n\ndata: second\n\n");
}

TEST(HttpSse, AClientThatLeavesStopsTheProducer) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  {
    StreamClient client(server.port(), "/ticks");
    ASSERT_TRUE(client.read_until("event: tick\ndata: 2\n\n"));
  }  // the client closes its socket
  const auto left = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return probe->finished == 1; }));
  EXPECT_TRUE(probe->last_send_refused);
  EXPECT_LT(std::chrono::steady_clock::now() - left, 2s);
}

// The producer sends nothing after its first event: the keep-alive comments are what fail to reach the
// client, and they alone tell the producer (is_closed(), then a refused send).
TEST(HttpSse, AnIdleProducerLearnsThatTheClientLeft) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  {
    StreamClient client(server.port(), "/hello");
    ASSERT_TRUE(client.read_until("data: hello\n\n"));
    EXPECT_EQ(client.header("content-type"), "text/event-stream");
    ASSERT_TRUE(client.read_until(":\n\n"));  // a keep-alive reached the client while it was there
  }
  const auto left = std::chrono::steady_clock::now();
  EXPECT_TRUE(eventually([&] { return probe->finished == 1; }));
  EXPECT_TRUE(probe->last_send_refused);
  EXPECT_LT(std::chrono::steady_clock::now() - left, 2s);
}

TEST(HttpSse, AGracefulShutdownEndsAStreamMeantToStayOpen) {
  auto probe = std::make_shared<Probe>();
  TestServer server(sse_routes(probe));
  StreamClient client(server.port(), "/open");
  ASSERT_TRUE(client.read_until("data: hello\n\n"));
  const auto start = std::chrono::steady_clock::now();
  server.stop(10s);  // a long grace: the stream must not need it, nor its 10 s keep-alive
  // The ended connection lingers (up to 2 s) for this client, which reads only afterwards.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  EXPECT_TRUE(client.read_to_end());  // ended with the last chunk, not cut
}
