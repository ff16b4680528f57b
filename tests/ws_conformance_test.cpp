// WebSocket conformance against peers Spindle did not write, in both directions: Python's websockets
// (python3-websockets) and Node's ws (node-ws) as clients of a Spindle server, and as servers for the
// Spindle client. The peers' side is tests/peers/ws_peer.py and ws_peer.js; each check covers
// fragmentation, control frames between fragments, close codes, invalid UTF-8, oversize messages or
// permessage-deflate.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"
#include "spindle/ws/client.hpp"
#include "spindle/ws/upgrade.hpp"
#include "support/child_process.hpp"
#include "support/http_harness.hpp"

namespace {

using namespace std::chrono_literals;
using spindle::Result;
using spindle::Task;
using spindle::ws::Message;

const std::vector<std::string> kPeerChecks = {
    "text_and_binary_echo", "fragmented_message", "ping_answered", "permessage_deflate", "close_code_echoed",
    "server_close_code",    "invalid_utf8_1007",  "oversize_1009", "deflate_bomb_1009",
};

std::vector<std::string> python(std::vector<std::string> arguments) {
  std::vector<std::string> argv = {"/usr/bin/python3", SPINDLE_WS_PEERS_DIR "/ws_peer.py"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return argv;
}

std::vector<std::string> node(std::vector<std::string> arguments) {
  std::vector<std::string> argv = {"env", "NODE_PATH=/usr/share/nodejs", "node", SPINDLE_WS_PEERS_DIR "/ws_peer.js"};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return argv;
}

/// The routes the peers' clients check: an echo (64 KiB limit, permessage-deflate) and a server Close.
spindle::http::Router<> conformance_routes() {
  spindle::ws::Config config;
  config.max_message_size = 64 * 1024;
  config.compression = spindle::ws::DeflateConfig{};
  spindle::http::Router<> router;
  router.route("/echo", spindle::http::get([config](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.config(config).on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> {
                   for (;;) {
                     auto message = co_await socket.recv();
                     if (!message || message->is_close()) co_return;
                     if (!message->is_text() && !message->is_binary()) continue;
                     auto sending = socket.send(std::move(*message));
                     auto sent = co_await std::move(sending);
                     if (!sent) co_return;
                   }
                 });
               }));
  router.route("/close", spindle::http::get([](spindle::ws::WebSocketUpgrade upgrade) {
                 return upgrade.on_upgrade([](spindle::ws::WebSocket socket) -> Task<void> {
                   auto closing = socket.close(4002, "server bye");
                   auto closed = co_await std::move(closing);
                   (void)closed;
                 });
               }));
  return router;
}

/// Runs a peer's client against a Spindle server; every check must report ok.
void peer_client_against_spindle(std::vector<std::string> argv, std::vector<std::string> checks) {
  spindle_test::TestServer server{conformance_routes()};
  argv.push_back(std::to_string(server.port()));
  spindle_test::ChildProcess peer{argv};
  std::map<std::string, std::string> results;
  for (;;) {
    std::optional<std::string> line = peer.read_line(60s);
    ASSERT_TRUE(line) << "the peer stopped early; its stderr: " << peer.drain_stderr();
    if (*line == "done") break;
    const std::size_t space = line->find(' ');
    const std::string verdict = line->substr(0, space);
    std::string rest = line->substr(space + 1);
    const std::string name = rest.substr(0, rest.find(':'));
    results[name] = verdict == "ok" ? "ok" : *line;
  }
  for (const std::string& check : checks) {
    ASSERT_TRUE(results.contains(check)) << check << " did not run";
    EXPECT_EQ(results[check], "ok") << check;
  }
}

TEST(WsConformance, PythonWebsocketsClientAgainstSpindleServer) {
  std::vector<std::string> checks = kPeerChecks;
  checks.push_back("control_frame_inside_fragments");  // raw frames: a Ping, and a character cut in two
  peer_client_against_spindle(python({"client"}), checks);
}

TEST(WsConformance, NodeWsClientAgainstSpindleServer) {
  // Node's fragmented_message has a Ping between its fragments.
  peer_client_against_spindle(node({"client"}), kPeerChecks);
}

std::string url(int port, std::string_view path) {
  return "ws://127.0.0.1:" + std::to_string(port) + std::string{path};
}

Task<Result<spindle::ws::WebSocket, spindle::http::ClientError>> open(int port, std::string_view path,
                                                                      bool compression = false) {
  spindle::ws::ConnectOptions options;
  if (compression) options.config.compression = spindle::ws::DeflateConfig{};
  auto connecting = spindle::ws::connect(url(port, path), std::move(options));
  auto socket = co_await std::move(connecting);
  co_return socket;
}

/// The Spindle client against a peer's server (the routes of ws_peer.py / ws_peer.js server).
Task<void> spindle_client_checks(int port) {
  {  // echo, both kinds, and a Ping answered by the peer
    auto opening = open(port, "/echo");
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket) << socket.error().message;
    if (!socket) co_return;
    EXPECT_FALSE(socket->compressed());
    auto sending = socket->send(Message::text("h\xC3\xA9llo"));
    (void)co_await std::move(sending);
    auto text = co_await socket->recv();
    EXPECT_TRUE(text && text->is_text() && text->data() == "h\xC3\xA9llo");
    auto sending_binary = socket->send(Message::binary(std::string{"\x00\x01\xFF", 3}));
    (void)co_await std::move(sending_binary);
    auto bytes = co_await socket->recv();
    EXPECT_TRUE(bytes && bytes->is_binary() && bytes->data() == std::string("\x00\x01\xFF", 3));
    auto pinging = socket->send(Message::ping("hi"));
    (void)co_await std::move(pinging);
    auto pong = co_await socket->recv();
    EXPECT_TRUE(pong && pong->is_pong() && pong->data() == "hi");
    auto closing = socket->close(4000, "bye");
    auto closed = co_await std::move(closing);
    EXPECT_TRUE(closed);
  }
  {  // permessage-deflate with the peer's own compressor and decompressor
    auto opening = open(port, "/echo", true);
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    EXPECT_TRUE(socket->compressed());
    for (std::size_t size : {1u, 100u, 100000u}) {
      std::string text;
      while (text.size() < size) text += "deflate me please ";
      text.resize(size);
      auto sending = socket->send(Message::text(text));
      (void)co_await std::move(sending);
      auto echoed = co_await socket->recv();
      EXPECT_TRUE(echoed && echoed->data() == text) << size;
    }
    auto closing = socket->close();
    (void)co_await std::move(closing);
  }
  {  // a fragmented message with a Ping between its fragments
    auto opening = open(port, "/fragments");
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    auto ping = co_await socket->recv();
    EXPECT_TRUE(ping && ping->is_ping() && ping->data() == "mid");
    auto whole = co_await socket->recv();
    EXPECT_TRUE(whole && whole->is_text() && whole->data() == "one two");
  }
  {  // the peer closes with its code and reason
    auto opening = open(port, "/close");
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    auto close = co_await socket->recv();
    EXPECT_TRUE(close && close->is_close() && close->code() == 4003 && close->data() == "done");
    auto after = co_await socket->recv();
    EXPECT_TRUE(!after && after.error().kind == spindle::ws::Error::Kind::closed);
  }
  {  // text that is not UTF-8: 1007
    auto opening = open(port, "/bad-utf8");
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    auto bad = co_await socket->recv();
    EXPECT_TRUE(!bad && bad.error().kind == spindle::ws::Error::Kind::protocol && bad.error().code == 1007);
  }
  {  // 2 MiB against the default 1 MiB limit: 1009
    auto opening = open(port, "/big");
    auto socket = co_await std::move(opening);
    EXPECT_TRUE(socket);
    if (!socket) co_return;
    auto big = co_await socket->recv();
    EXPECT_TRUE(!big && big.error().code == 1009);
  }
}

void spindle_client_against_peer(std::vector<std::string> argv) {
  spindle_test::ChildProcess peer{argv};
  std::optional<std::string> line = peer.read_line(30s);
  ASSERT_TRUE(line && line->starts_with("listening ")) << "the peer did not start: " << peer.drain_stderr();
  const int port = std::stoi(line->substr(10));
  spindle::Runtime runtime;
  runtime.block_on(spindle_client_checks(port));
}

TEST(WsConformance, SpindleClientAgainstPythonWebsocketsServer) { spindle_client_against_peer(python({"server"})); }

TEST(WsConformance, SpindleClientAgainstNodeWsServer) { spindle_client_against_peer(node({"server"})); }

}  // namespace
