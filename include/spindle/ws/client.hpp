#pragma once
// The WebSocket client: the opening handshake over spindle::http::Client's connection code, then the same
// WebSocket as a server's (masking every frame, as a client must).

#include <string>
#include <string_view>
#include <vector>

#include "spindle/http/client.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/ws/websocket.hpp"

namespace spindle::ws {

/// How ws::connect opens a socket.
///
///   ws::ConnectOptions options;
///   options.protocols = {"chat.v1"};
///   options.headers.set("origin", "http://127.0.0.1:8080");
///   options.config.compression = ws::DeflateConfig{};   // offer permessage-deflate
struct ConnectOptions {
  Config config;
  std::vector<std::string> protocols;  ///< offered subprotocols, preferred first
  http::HeaderMap headers;             ///< more request fields (Origin, Authorization, cookies...)
  http::ClientConfig http;             ///< connect_timeout, and request_timeout for the handshake
};

/// Opens a WebSocket to "ws://HOST[:PORT]/PATH" (http:// is taken too; wss:// is not supported). A server
/// that refuses gets ClientError::Kind::not_upgraded with its status; an answer that breaks RFC 6455 4.1
/// (a wrong Sec-WebSocket-Accept, a subprotocol or extension that was not offered) Kind::protocol.
///
///   auto connecting = ws::connect("ws://127.0.0.1:8080/ws");
///   auto socket = co_await std::move(connecting);
///   if (!socket) co_return log(socket.error().message);
///   auto sending = socket->send(ws::Message::text("hello"));
///   co_await std::move(sending);
Task<Result<WebSocket, http::ClientError>> connect(std::string_view url, ConnectOptions options = {});

}  // namespace spindle::ws
