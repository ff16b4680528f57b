// The client's side of the WebSocket handshake (RFC 6455 4.1).

#include "spindle/ws/client.hpp"

#include <openssl/evp.h>

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/ws/upgrade.hpp"

namespace spindle::ws {
namespace {

using http::ClientError;
using Kind = http::ClientError::Kind;
using http::detail::iequals;
using http::detail::trim_ows;

/// 16 random bytes in base64: a nonce that proves the server read this handshake.
std::string make_key() {
  unsigned char bytes[16];
  detail::fill_random(std::as_writable_bytes(std::span{bytes}));
  unsigned char encoded[25];
  const int size = EVP_EncodeBlock(encoded, bytes, sizeof bytes);
  return std::string{reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(size)};
}

Err<ClientError> refused(std::string why) {
  return Err{ClientError{Kind::protocol, "WebSocket handshake: " + why, {}}};
}

Task<Result<WebSocket, ClientError>> open(std::string url, ConnectOptions options) {
  http::ClientRequest request;
  request.headers = std::move(options.headers);
  const std::string key = make_key();
  request.headers.set_static("connection", "upgrade");
  request.headers.set_static("upgrade", "websocket");
  request.headers.set_static("sec-websocket-version", "13");
  request.headers.set("sec-websocket-key", key);
  if (!options.protocols.empty()) {
    std::string offered;
    for (const std::string& protocol : options.protocols) offered += (offered.empty() ? "" : ", ") + protocol;
    request.headers.set("sec-websocket-protocol", offered);
  }
  if (options.config.compression)
    request.headers.set("sec-websocket-extensions", detail::deflate_offer(*options.config.compression));

  http::Client client{options.http};
  auto upgrading = client.upgrade(url, std::move(request));
  Result<http::UpgradedStream, ClientError> upgraded = co_await std::move(upgrading);
  if (!upgraded) co_return Err{std::move(upgraded).error()};
  const http::HeaderMap& answer = upgraded->headers;

  const auto upgrade = answer.get("upgrade");
  if (!upgrade || !iequals(trim_ows(*upgrade), "websocket")) co_return refused("the answer's Upgrade is not websocket");
  const auto connection = answer.get("connection");
  if (!connection || !http::detail::list_contains(*connection, "upgrade"))
    co_return refused("the answer's Connection does not include upgrade");
  const auto accept = answer.get("sec-websocket-accept");
  if (!accept || trim_ows(*accept) != accept_key(key)) co_return refused("wrong Sec-WebSocket-Accept");

  auto handshake = std::make_shared<detail::Handshake>();
  handshake->role = detail::Role::client;
  if (const auto protocol = answer.get("sec-websocket-protocol")) {
    const std::string_view agreed = trim_ows(*protocol);
    bool offered = false;
    for (const std::string& ours : options.protocols) offered = offered || ours == agreed;
    if (!offered) co_return refused("the server chose a subprotocol that was not offered: " + std::string{agreed});
    handshake->protocol = std::string{agreed};
  }
  if (const auto extensions = answer.get("sec-websocket-extensions")) {
    if (!options.config.compression) co_return refused("the server chose an extension that was not offered");
    Result<DeflateParams, std::string> agreed = detail::accept_deflate_answer(*extensions, *options.config.compression);
    if (!agreed) co_return refused(agreed.error());
    handshake->deflate = *agreed;
  }
  handshake->config = std::make_shared<const Config>(std::move(options.config));
  co_return WebSocket{std::move(upgraded->stream), std::move(upgraded->leftover), std::move(handshake)};
}

}  // namespace

Task<Result<WebSocket, ClientError>> connect(std::string_view url, ConnectOptions options) {
  std::string http_url;
  if (url.starts_with("ws://")) {
    http_url = "http://" + std::string{url.substr(5)};
  } else if (url.starts_with("wss://")) {
    return [](std::string text) -> Task<Result<WebSocket, ClientError>> {
      co_return Err{ClientError{Kind::invalid_url, "wss:// is not supported: \"" + text + "\"", {}}};
    }(std::string{url});
  } else {
    http_url = std::string{url};
  }
  return open(std::move(http_url), std::move(options));
}

}  // namespace spindle::ws
