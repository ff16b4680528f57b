// WebSocket server and client, Spindle against Spindle and against a raw socket that breaks the rules:
// the handshake and its refusals, echo of every message kind and size, fragmentation with control frames
// in between, close codes for each protocol error, the close handshake, graceful shutdown (1001),
// keep-alive, the send queue's two policies, split halves, and permessage-deflate.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "spindle/spindle.hpp"
#include "spindle/ws/broadcast.hpp"
#include "spindle/ws/client.hpp"
#include "spindle/ws/upgrade.hpp"
#include "support/http_harness.hpp"
#include "support/ws_raw.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Task;
using spindle::http::Router;
using spindle::ws::Message;
using spindle::ws::Opcode;
using spindle_test::RawWebSocket;
using spindle_test::TestServer;

/// Echoes text and binary messages until the socket closes.
Task<void> echo(spindle::ws::WebSocket socket) {
  for (;;) {
    auto message = co_await socket.recv();
    if (!message || message->is_close()) co_return;
    if (!message->is_text() && !message->is_binary()) continue;
    auto sending = socket.send(std::move(*message));
    auto sent = co_await std::move(sending);
    if (!sent) co_return;
  }
}

Router<> echo_router(spindle::ws::Config config = {}) {
  Router<> router;
  router.route("/echo", spindle::http::get([config](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.protocols({"chat", "superchat"})
                     .config(config)
                     .on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> { co_await echo(std::move(socket)); });
               }));
  router.route("/guarded", spindle::http::get([](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.allowed_origins({"http://good.example"})
                     .on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> { co_await echo(std::move(socket)); });
               }));
  router.route("/throws", spindle::http::get([](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> {
                   auto message = co_await socket.recv();
                   (void)message;
                   throw std::runtime_error("handler failed");
                 });
               }));
  return router;
}

std::string url(const TestServer& server, std::string_view path) {
  return "ws://127.0.0.1:" + std::to_string(server.port()) + std::string{path};
}

/// Runs a client coroutine on its own runtime.
template <class Body>
void client(Body body) {
  spindle::Runtime runtime;
  runtime.block_on(body());
}

TEST(WsServer, SpindleClientEchoesEveryKindAndSize) {
  TestServer server{echo_router()};
  client([&]() -> Task<void> {
    spindle::ws::ConnectOptions options;
    options.protocols = {"superchat", "chat"};
    auto connecting = spindle::ws::connect(url(server, "/echo"), std::move(options));
    auto socket = co_await std::move(connecting);
    EXPECT_TRUE(socket) << (socket ? "" : socket.error().message);
    if (!socket) co_return;
    EXPECT_EQ(socket->protocol(), "chat");  // the server's preference among those offered
    for (std::size_t size : {0u, 1u, 125u, 126u, 65535u, 65536u, 500000u}) {
      std::string text(size, 'a');
      for (std::size_t i = 0; i < size; ++i) text[i] = static_cast<char>('a' + i % 26);
      auto sending = socket->send(Message::text(text));
      auto sent = co_await std::move(sending);
      EXPECT_TRUE(sent);
      auto reply = co_await socket->recv();
      EXPECT_TRUE(reply && reply->is_text()) << size;
      if (reply) {
        EXPECT_EQ(reply->data(), text) << size;
      }
    }
    std::string bytes(1000, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i);
    auto sending = socket->send(Message::binary(bytes));
    (void)co_await std::move(sending);
    auto reply = co_await socket->recv();
    EXPECT_TRUE(reply && reply->is_binary() && reply->data() == bytes);

    auto pinging = socket->send(Message::ping("are you there"));
    (void)co_await std::move(pinging);
    auto pong = co_await socket->recv();
    EXPECT_TRUE(pong && pong->is_pong() && pong->data() == "are you there");

    auto closing = socket->close(4000, "done");
    auto closed = co_await std::move(closing);
    EXPECT_TRUE(closed);
    auto after = co_await socket->recv();
    EXPECT_FALSE(after);
    if (!after) {
      EXPECT_EQ(after.error().kind, spindle::ws::Error::Kind::closed);
    }
  });
}

TEST(WsServer, HandshakeRefusals) {
  TestServer server{echo_router()};
  const std::string valid =
      "Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  auto response =
      spindle_test::exchange(server.port(), "GET /echo HTTP/1.1\r\n" + valid + "Sec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 101);
  // RFC 6455 4.2.2's own example of the accept key.
  EXPECT_EQ(response->header("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(response->header("upgrade"), "websocket");

  response =
      spindle_test::exchange(server.port(), "GET /echo HTTP/1.1\r\n" + valid + "Sec-WebSocket-Version: 8\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 426);
  EXPECT_EQ(response->header("sec-websocket-version"), "13");

  response = spindle_test::exchange(server.port(),
                                    "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                    "Sec-WebSocket-Version: 13\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);  // no key

  response = spindle_test::exchange(server.port(),
                                    "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n"
                                    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);  // Connection without upgrade

  response =
      spindle_test::exchange(server.port(), "GET /guarded HTTP/1.1\r\n" + valid +
                                                "Sec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 403);
  response =
      spindle_test::exchange(server.port(), "GET /guarded HTTP/1.1\r\n" + valid +
                                                "Sec-WebSocket-Version: 13\r\nOrigin: http://GOOD.example\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 101);

  // POST to a GET route: the router's 405.
  response = spindle_test::exchange(
      server.port(), "POST /echo HTTP/1.1\r\n" + valid + "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 405);
}

TEST(WsServer, FragmentedMessageWithControlFramesInBetween) {
  TestServer server{echo_router()};
  RawWebSocket socket{server.port(), "/echo"};
  socket.send_frame(Opcode::text, "Hel", false);
  socket.send_frame(Opcode::ping, "p1");
  socket.send_frame(Opcode::continuation, "lo, ", false);
  socket.send_frame(Opcode::pong, "unsolicited");
  socket.send_frame(Opcode::continuation, "w\xC3", false);  // a character cut between two frames
  socket.send_frame(Opcode::continuation, "\xB6rld");
  std::optional<spindle_test::RawFrame> pong = socket.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, Opcode::pong);
  EXPECT_EQ(pong->payload, "p1");
  std::optional<spindle_test::RawFrame> echoed = socket.read_frame();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->opcode, Opcode::text);
  EXPECT_EQ(echoed->payload, "Hello, w\xC3\xB6rld");
}

struct BrokenCase {
  std::string wire;
  std::uint16_t code;
  const char* what;
};

TEST(WsServer, ProtocolErrorsCloseWithTheirCode) {
  spindle::ws::Config config;
  config.max_message_size = 1000;
  TestServer server{echo_router(config)};
  const std::vector<BrokenCase> cases = {
      {spindle_test::client_frame(Opcode::text, "hi", true, false), 1002, "unmasked"},
      {spindle_test::client_frame(Opcode::text, "bad \xC0\xAF utf-8"), 1007, "overlong UTF-8"},
      {spindle_test::client_frame(Opcode::text, "cut \xE2\x82"), 1007, "UTF-8 cut at the end"},
      {spindle_test::client_frame(Opcode::text, std::string(1001, 'x')), 1009, "message over the limit"},
      {spindle_test::client_frame(Opcode::text, std::string(600, 'x'), false) +
           spindle_test::client_frame(Opcode::continuation, std::string(600, 'x')),
       1009, "fragments over the limit"},
      {spindle_test::client_frame(Opcode::continuation, "x"), 1002, "continuation of nothing"},
      {spindle_test::client_frame(Opcode::text, "a", false) + spindle_test::client_frame(Opcode::text, "b"), 1002,
       "new message inside a fragmented one"},
      {spindle_test::client_frame(Opcode::close, "\x03\xE8\xFF"), 1007, "close reason not UTF-8"},
      {spindle_test::client_frame(Opcode::close, "\x03"), 1002, "one-byte close payload"},
      {spindle_test::client_frame(Opcode::close, "\x03\xED"), 1002, "close code 1005 sent"},
      {spindle_test::client_frame(Opcode::text, "x", true, true, true), 1002, "RSV1 without deflate"},
  };
  for (const BrokenCase& c : cases) {
    RawWebSocket socket{server.port(), "/echo"};
    socket.send(c.wire);
    std::optional<spindle_test::RawFrame> frame = socket.read_data_or_close();
    ASSERT_TRUE(frame) << c.what;
    EXPECT_EQ(frame->opcode, Opcode::close) << c.what;
    EXPECT_EQ(frame->close_code(), c.code) << c.what;
    EXPECT_TRUE(socket.closed_by_server()) << c.what;
  }
  // The server still serves after all that.
  RawWebSocket fine{server.port(), "/echo"};
  fine.send_frame(Opcode::text, "still here");
  auto echoed = fine.read_frame();
  ASSERT_TRUE(echoed);
  EXPECT_EQ(echoed->payload, "still here");
}

TEST(WsServer, CloseHandshakeFromTheClientEchoesTheCode) {
  TestServer server{echo_router()};
  RawWebSocket socket{server.port(), "/echo"};
  socket.send_frame(Opcode::close, std::string{"\x0F\xA0"} + "bye");  // 4000
  auto reply = socket.read_frame();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode, Opcode::close);
  EXPECT_EQ(reply->close_code(), 4000);
  EXPECT_TRUE(socket.closed_by_server());  // the server closes the TCP connection first
}

TEST(WsServer, HandlerThatThrowsClosesWith1011) {
  TestServer server{echo_router()};
  RawWebSocket socket{server.port(), "/throws"};
  socket.send_frame(Opcode::text, "go");
  auto reply = socket.read_data_or_close();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode, Opcode::close);
  EXPECT_EQ(reply->close_code(), 1011);
}

TEST(WsServer, GracefulShutdownSays1001) {
  auto server = std::make_unique<TestServer>(echo_router());
  RawWebSocket socket{server->port(), "/echo"};
  socket.send_frame(Opcode::text, "hello");
  ASSERT_TRUE(socket.read_frame());
  std::thread stopping([&] { server->stop(5s); });
  auto reply = socket.read_data_or_close();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->opcode, Opcode::close);
  EXPECT_EQ(reply->close_code(), 1001);
  stopping.join();  // well before the 5 s grace: the socket ended with its handler
}

TEST(WsServer, KeepAlivePingsAndGivesUp) {
  spindle::ws::Config config;
  config.ping_interval = 100ms;
  config.ping_timeout = 200ms;
  TestServer server{echo_router(config)};
  RawWebSocket socket{server.port(), "/echo"};
  auto ping = socket.read_frame();
  ASSERT_TRUE(ping);
  EXPECT_EQ(ping->opcode, Opcode::ping);
  socket.send_frame(Opcode::pong, ping->payload);  // alive: another Ping comes later
  auto again = socket.read_frame();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->opcode, Opcode::ping);
  auto close = socket.read_frame();  // no answer this time
  ASSERT_TRUE(close);
  EXPECT_EQ(close->opcode, Opcode::close);
  EXPECT_EQ(close->close_code(), 1011);
}

// More than the kernel's socket buffers on loopback can absorb (several MiB each way).
constexpr int kFloodMessages = 1000;

/// Sends kFloodMessages messages of 64 KiB as fast as it can; records how the sends went.
struct Flood {
  std::atomic<int> sent{0};
  std::atomic<int> failed_kind{-1};
  std::atomic<std::size_t> most_queued{0};
};

Router<> flood_router(spindle::ws::Config config, Flood& flood) {
  Router<> router;
  router.route("/flood", spindle::http::get([config, &flood](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.config(config).on_upgrade([&flood](spindle::ws::WebSocket socket) -> Task<void> {
                   const std::string chunk(64 * 1024, 'f');
                   for (int i = 0; i < kFloodMessages; ++i) {
                     auto sending = socket.send(Message::binary(chunk));
                     auto sent = co_await std::move(sending);
                     flood.most_queued = std::max(flood.most_queued.load(), socket.queued_bytes());
                     if (!sent) {
                       flood.failed_kind = static_cast<int>(sent.error().kind);
                       co_return;
                     }
                     ++flood.sent;
                   }
                 });
               }));
  return router;
}

TEST(WsServer, SlowConsumerIsClosedWith1008UnderTheClosePolicy) {
  spindle::ws::Config config;
  config.max_send_queue = 256 * 1024;
  config.slow_consumer = spindle::ws::SlowConsumer::close;
  Flood flood;
  TestServer server{flood_router(config, flood)};
  RawWebSocket socket{server.port(), "/flood"};  // and never reads
  for (int i = 0; i < 100 && flood.failed_kind < 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(flood.failed_kind, static_cast<int>(spindle::ws::Error::Kind::too_slow));
  EXPECT_LT(flood.sent, kFloodMessages);
  EXPECT_LE(flood.most_queued, config.max_send_queue + 64 * 1024 + 16);
  // Reading now: what was written before the overflow, then the Close 1008.
  std::optional<spindle_test::RawFrame> frame;
  do frame = socket.read_frame();
  while (frame && frame->opcode != Opcode::close);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->close_code(), 1008);
}

TEST(WsServer, SlowConsumerSlowsTheSenderUnderTheWaitPolicy) {
  spindle::ws::Config config;
  config.max_send_queue = 256 * 1024;
  Flood flood;
  TestServer server{flood_router(config, flood)};
  RawWebSocket socket{server.port(), "/flood"};
  std::this_thread::sleep_for(300ms);
  const int before = flood.sent;
  EXPECT_LT(before, kFloodMessages);  // stuck behind the full queue, not buffering 62.5 MiB
  EXPECT_LE(flood.most_queued, config.max_send_queue + 64 * 1024 + 16);
  int received = 0;
  while (received < kFloodMessages) {
    auto frame = socket.read_frame();
    ASSERT_TRUE(frame);
    if (frame->opcode == Opcode::binary) {
      EXPECT_EQ(frame->payload.size(), 64u * 1024);
      ++received;
    }
  }
  // The sender counts a message once its send() returns, which can be just after the peer read it
  // (seen under valgrind): give it a moment.
  for (int i = 0; i < 250 && flood.sent < kFloodMessages; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(flood.sent, kFloodMessages);
  EXPECT_EQ(flood.failed_kind, -1);
}

TEST(WsServer, SplitHalvesWorkFromDifferentTasks) {
  Router<> router;
  router.route("/ticker", spindle::http::get([](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> {
                   auto [sender, receiver] = std::move(socket).split();
                   // The sender ticks from its own task until the receiver sees the client's Close.
                   auto ticking = spindle::spawn([](spindle::ws::Sender out) -> Task<void> {
                     for (int i = 0;; ++i) {
                       auto sending = out.send(Message::text("tick " + std::to_string(i)));
                       auto sent = co_await std::move(sending);
                       if (!sent) co_return;
                       co_await spindle::sleep(5ms);
                     }
                   }(sender));
                   for (;;) {
                     auto message = co_await receiver.recv();
                     if (!message || message->is_close()) break;
                   }
                   ticking.abort();
                 });
               }));
  TestServer server{std::move(router)};
  client([&]() -> Task<void> {
    auto connecting = spindle::ws::connect(url(server, "/ticker"));
    auto socket = co_await std::move(connecting);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    for (int i = 0; i < 5; ++i) {
      auto tick = co_await socket->recv();
      EXPECT_TRUE(tick && tick->data() == "tick " + std::to_string(i));
    }
    auto closing = socket->close();
    auto closed = co_await std::move(closing);
    EXPECT_TRUE(closed);
  });
}

TEST(WsServer, PermessageDeflateBetweenSpindleClientAndServer) {
  spindle::ws::Config config;
  config.compression = spindle::ws::DeflateConfig{};
  TestServer server{echo_router(config)};
  client([&]() -> Task<void> {
    spindle::ws::ConnectOptions options;
    options.config.compression = spindle::ws::DeflateConfig{};
    auto connecting = spindle::ws::connect(url(server, "/echo"), std::move(options));
    auto socket = co_await std::move(connecting);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    EXPECT_TRUE(socket->compressed());
    for (std::size_t size : {10u, 64u, 1000u, 200000u}) {
      std::string text;
      while (text.size() < size) text += "the quick brown fox jumps over the lazy dog ";
      text.resize(size);
      auto sending = socket->send(Message::text(text));
      (void)co_await std::move(sending);
      auto reply = co_await socket->recv();
      EXPECT_TRUE(reply && reply->data() == text) << size;
    }
    auto closing = socket->close();
    (void)co_await std::move(closing);
  });
}

TEST(WsServer, ClientReportsARefusedHandshake) {
  TestServer server{echo_router()};
  client([&]() -> Task<void> {
    auto connecting = spindle::ws::connect(url(server, "/nowhere"));
    auto socket = co_await std::move(connecting);
    EXPECT_FALSE(socket);
    if (socket) co_return;
    EXPECT_EQ(socket.error().kind, spindle::http::ClientError::Kind::not_upgraded);
    EXPECT_EQ(socket.error().status, spindle::http::Status::not_found);
  });
}

}  // namespace

namespace {

/// A room with a small ring (4 messages), joined with either lag policy or forwarded to by a task. A
/// text "burst N" sends N messages to the room at once, faster than any socket can take them.
Router<> room_router(spindle::ws::Broadcast& room) {
  Router<> router;
  const auto joined = [&room](spindle::ws::Lagging lagging) {
    return [&room, lagging](spindle::ws::WebSocketUpgrade upgrade) {
      return upgrade.on_upgrade([&room, lagging](spindle::ws::WebSocket socket) -> Task<void> {
        socket.join(room, lagging);
        for (;;) {
          auto message = co_await socket.recv();
          if (!message || message->is_close()) co_return;
          const std::string_view text = message->data();
          if (text.starts_with("burst ")) {
            const int count = std::stoi(std::string{text.substr(6)});
            for (int i = 0; i < count; ++i) room.send(Message::text("m " + std::to_string(i)));
          } else {
            room.send(std::move(*message));
          }
        }
      });
    };
  };
  router.route("/room", spindle::http::get(joined(spindle::ws::Lagging::close)));
  router.route("/room-skip", spindle::http::get(joined(spindle::ws::Lagging::skip)));
  router.route("/room-deflate", spindle::http::get([&room](spindle::ws::WebSocketUpgrade upgrade) {
                 spindle::ws::Config config;
                 config.compression = spindle::ws::DeflateConfig{};
                 return upgrade.config(config).on_upgrade([&room](spindle::ws::WebSocket socket) -> Task<void> {
                   socket.join(room);
                   for (;;) {
                     auto message = co_await socket.recv();
                     if (!message || message->is_close()) co_return;
                     room.send(std::move(*message));
                   }
                 });
               }));
  router.route("/forwarded", spindle::http::get([&room](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.on_upgrade([&room](spindle::ws::WebSocket socket) -> Task<void> {
                   auto [sender, receiver] = std::move(socket).split();
                   auto forwarding = spindle::spawn(room.forward_to(sender));
                   for (;;) {
                     auto message = co_await receiver.recv();
                     if (!message || message->is_close()) break;
                   }
                   forwarding.abort();
                 });
               }));
  return router;
}

TEST(WsServer, BroadcastReachesJoinedAndForwardedSocketsTheSenderToo) {
  spindle::ws::Broadcast room{4};
  TestServer server{room_router(room)};
  RawWebSocket alice{server.port(), "/room"};
  RawWebSocket bob{server.port(), "/room-skip"};
  RawWebSocket carol{server.port(), "/forwarded"};
  std::this_thread::sleep_for(100ms);  // every socket has subscribed
  alice.send_frame(Opcode::text, "hello, room");
  for (RawWebSocket* socket : {&alice, &bob, &carol}) {
    auto message = socket->read_data_or_close();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->opcode, Opcode::text);
    EXPECT_EQ(message->payload, "hello, room");
  }
}

TEST(WsServer, ASocketThatFallsBehindTheRoomIsClosedOrSkipsAhead) {
  spindle::ws::Broadcast room{4};
  TestServer server{room_router(room), {}, 1};  // one worker: the burst runs before any socket's task
  RawWebSocket strict{server.port(), "/room"};
  RawWebSocket lenient{server.port(), "/room-skip"};
  std::this_thread::sleep_for(100ms);
  lenient.send_frame(Opcode::text, "burst 100");
  auto closed = strict.read_data_or_close();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->opcode, Opcode::close);
  EXPECT_EQ(closed->close_code(), 1008);
  for (int i = 96; i < 100; ++i) {  // only what the ring still held
    auto message = lenient.read_data_or_close();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->payload, "m " + std::to_string(i));
  }
}

TEST(WsServer, ABroadcastIsCompressedOnceForTheSocketsThatAgreedToDeflate) {
  spindle::ws::Broadcast room{4};
  TestServer server{room_router(room)};
  RawWebSocket plain{server.port(), "/room"};
  RawWebSocket deflating{server.port(), "/room-deflate", "Sec-WebSocket-Extensions: permessage-deflate\r\n"};
  std::this_thread::sleep_for(100ms);
  std::string text;
  while (text.size() < 4000) text += "the same words again and again ";
  plain.send_frame(Opcode::text, text);
  auto as_is = plain.read_data_or_close();
  ASSERT_TRUE(as_is);
  EXPECT_FALSE(as_is->rsv1);
  EXPECT_EQ(as_is->payload, text);
  auto compressed = deflating.read_data_or_close();
  ASSERT_TRUE(compressed);
  EXPECT_TRUE(compressed->rsv1);
  EXPECT_LT(compressed->payload.size(), text.size() / 10);
  spindle::ws::detail::MessageInflater inflater{15, true};
  std::string inflated;
  EXPECT_EQ(inflater.inflate(compressed->payload, inflated, 1 << 20), spindle::ws::detail::MessageInflater::Status::ok);
  EXPECT_EQ(inflater.finish(inflated, 1 << 20), spindle::ws::detail::MessageInflater::Status::ok);
  EXPECT_EQ(inflated, text);
}

}  // namespace

namespace {

struct Tally {
  std::atomic<int> binaries{0};
  std::atomic<int> close_code{0};
};

/// /backlog queues 300 frames of 64 KiB (19 MiB, more than loopback's socket buffers take), then waits
/// for the peer's Close;
/// /count counts the binary messages it receives and records the Close.
Router<> backlog_router(Tally& tally) {
  spindle::ws::Config config;
  config.max_send_queue = 32 * 1024 * 1024;  // all the frames queue at once: the handler gets to recv()
  Router<> router;
  router.route("/backlog", spindle::http::get([config](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.config(config).on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> {
                   const std::string chunk(64 * 1024, 'q');
                   for (int i = 0; i < 300; ++i) {
                     auto sending = socket.send(Message::binary(chunk));
                     auto sent = co_await std::move(sending);
                     if (!sent) co_return;
                   }
                   auto close = co_await socket.recv();  // the peer's Close: answered behind the queued frames
                   (void)close;
                 });
               }));
  router.route("/count", spindle::http::get([&tally](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.on_upgrade([&tally](spindle::ws::WebSocket socket) -> Task<void> {
                   for (;;) {
                     auto message = co_await socket.recv();
                     if (!message) co_return;
                     if (message->is_binary()) ++tally.binaries;
                     if (message->is_close()) {
                       tally.close_code = message->code();
                       co_return;
                     }
                   }
                 });
               }));
  return router;
}

TEST(WsServer, TheCloseAnswerGoesOutBehindEveryQueuedFrame) {
  Tally tally;
  TestServer server{backlog_router(tally)};
  RawWebSocket socket{server.port(), "/backlog"};
  std::this_thread::sleep_for(300ms);  // the server has queued what the kernel did not take
  socket.send_frame(Opcode::close, "\x03\xE8");
  int binaries = 0;
  std::optional<spindle_test::RawFrame> frame;
  for (;;) {
    frame = socket.read_frame();
    if (!frame || frame->opcode != Opcode::binary) break;
    ++binaries;
  }
  EXPECT_EQ(binaries, 300);
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->opcode, Opcode::close);
  EXPECT_EQ(frame->close_code(), 1000);
}

TEST(WsServer, ARoomMessageDuringTheCloseHandshakeLosesNothing) {
  Tally tally;
  TestServer server{backlog_router(tally)};
  spindle::ws::Broadcast room{4};
  client([&]() -> Task<void> {
    auto connecting = spindle::ws::connect(url(server, "/count"));
    auto socket = co_await std::move(connecting);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    socket->join(room);
    const std::string chunk(64 * 1024, 'c');
    for (int i = 0; i < 200; ++i) {
      auto sending = socket->send(Message::binary(chunk));
      (void)co_await std::move(sending);
    }
    room.send(Message::text("arrives while closing"));
    auto closing = socket->close();
    auto closed = co_await std::move(closing);
    EXPECT_TRUE(closed);
  });
  for (int i = 0; i < 100 && tally.close_code == 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(tally.binaries, 200);
  EXPECT_EQ(tally.close_code, 1000);
}

}  // namespace
