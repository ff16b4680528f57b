// The server's side of the WebSocket handshake (RFC 6455 4.2): checking the request, negotiating the
// subprotocol and permessage-deflate, the 101, and running the application's callback on the socket.

#include "spindle/ws/upgrade.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <exception>

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/http/detail/handler.hpp"
#include "spindle/runtime/detail/log.hpp"

namespace spindle::ws {
namespace {

using http::Rejection;
using http::Status;
using http::detail::iequals;

/// Calls `each` with every element of the comma-separated lists of every field named `name`.
template <class Each>
void for_each_element(const http::Request& request, std::string_view name, Each each) {
  for (const http::HeaderField& field : request.headers())
    if (iequals(field.name, name)) http::detail::for_each_element(field.value, each);
}

bool list_contains(const http::Request& request, std::string_view name, std::string_view token) {
  for (const http::HeaderField& field : request.headers())
    if (iequals(field.name, name) && http::detail::list_contains(field.value, token)) return true;
  return false;
}

/// A Sec-WebSocket-Key is the base64 of 16 bytes: 22 characters and "==".
bool is_websocket_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
  });
}

Err<Rejection> bad_handshake(std::string message) {
  return Err{Rejection{Status::bad_request, std::move(message), ""}};
}

}  // namespace

std::string accept_key(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input{key};
  input += kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("ws: SHA-1 failed (OpenSSL)");
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int size = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
  return std::string{reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(size)};
}

std::shared_ptr<const Config> WebSocketUpgrade::default_config() {
  static const std::shared_ptr<const Config> shared = std::make_shared<const Config>();
  return shared;
}

WebSocketUpgrade& WebSocketUpgrade::protocols(std::vector<std::string> supported) & {
  supported_ = std::move(supported);
  return *this;
}

WebSocketUpgrade& WebSocketUpgrade::allowed_origins(std::vector<std::string> origins) & {
  allowed_origins_ = std::move(origins);
  return *this;
}

WebSocketUpgrade& WebSocketUpgrade::config(Config config) & {
  config_ = std::make_shared<const Config>(std::move(config));
  return *this;
}

std::optional<std::string_view> WebSocketUpgrade::origin() const noexcept {
  if (!origin_) return std::nullopt;
  return std::string_view{*origin_};
}

std::optional<std::string_view> WebSocketUpgrade::selected_protocol() const noexcept {
  for (const std::string& ours : supported_)
    for (const std::string& theirs : offered_)
      if (ours == theirs) return std::string_view{ours};
  return std::nullopt;
}

http::Response WebSocketUpgrade::accept(std::shared_ptr<Session> session) {
  if (origin_ && !allowed_origins_.empty()) {
    const bool allowed = std::any_of(allowed_origins_.begin(), allowed_origins_.end(),
                                     [&](const std::string& origin) { return iequals(origin, *origin_); });
    if (!allowed) return http::Response::error(Status::forbidden, "origin not allowed: " + *origin_);
  }
  http::Response response = http::Response::empty(Status::switching_protocols);
  response.headers.set_static("upgrade", "websocket");
  response.headers.set("sec-websocket-accept", accept_key(key_));
  session->handshake.role = detail::Role::server;
  session->handshake.config = config_;
  if (std::optional<std::string_view> protocol = selected_protocol()) {
    response.headers.set("sec-websocket-protocol", *protocol);
    session->handshake.protocol = std::string{*protocol};
  }
  if (config_->compression && !extensions_.empty()) {
    if (auto agreed = detail::negotiate_deflate(extensions_, *config_->compression)) {
      response.headers.set("sec-websocket-extensions", agreed->response);
      session->handshake.deflate = agreed->params;
    }
  }
  response.upgrade = std::move(session);
  return response;
}

namespace {
/// Logged outside the coroutine below: its frame lives as long as the socket, so it holds no string.
void log_handler_failure(std::exception_ptr failure) {
  const std::string what = http::detail::describe_exception(failure);
  spindle::detail::log_warning("ws: a WebSocket handler threw: %s", what.c_str());
}
}  // namespace

Task<void> WebSocketUpgrade::Session::run(http::UpgradedConnection connection) {
  handshake.draining = connection.draining;
  // The socket shares this upgrade's handshake (its config, subprotocol, parameters): no copy per socket.
  WebSocket socket{std::move(connection.stream), std::move(connection.leftover),
                   std::shared_ptr<const detail::Handshake>{shared_from_this(), &handshake}};
  std::shared_ptr<detail::Core> core = detail::core_of(socket);
  if (connection.anchor != nullptr) *connection.anchor = core;  // the socket outlives the server's entry
  std::uint16_t code = close_code::normal;
  try {
    Task<void> handler = start(std::move(socket));
    co_await std::move(handler);
  } catch (...) {
    log_handler_failure(std::current_exception());
    code = close_code::internal_error;
  }
  Task<void> finishing = detail::finish(std::move(core), code);
  co_await std::move(finishing);
}

}  // namespace spindle::ws

namespace spindle::http {

Result<ws::WebSocketUpgrade, Rejection> Extract<ws::WebSocketUpgrade>::from_parts(Request& request) {
  using ws::bad_handshake;
  if (request.method() != Method::get) {
    Rejection rejection{Status::method_not_allowed, "a WebSocket handshake is a GET", ""};
    rejection.headers.set_static("allow", "GET");
    return Err{std::move(rejection)};
  }
  if (request.version_minor() < 1) return bad_handshake("a WebSocket handshake needs HTTP/1.1");
  if (!ws::list_contains(request, "connection", "upgrade"))
    return bad_handshake("the Connection header does not include \"upgrade\"");
  if (!ws::list_contains(request, "upgrade", "websocket"))
    return bad_handshake("the Upgrade header does not include \"websocket\"");
  const std::optional<std::string_view> version = request.header("sec-websocket-version");
  if (!version || detail::trim_ows(*version) != "13") {
    Rejection rejection{Status::upgrade_required, "unsupported WebSocket version: this server speaks 13", ""};
    rejection.headers.set_static("sec-websocket-version", "13");
    return Err{std::move(rejection)};
  }
  ws::WebSocketUpgrade upgrade;
  std::size_t keys = 0;
  for (const HeaderField& field : request.headers()) {
    if (!detail::iequals(field.name, "sec-websocket-key")) continue;
    ++keys;
    upgrade.key_ = std::string{detail::trim_ows(field.value)};
  }
  if (keys != 1 || !ws::is_websocket_key(upgrade.key_))
    return bad_handshake("Sec-WebSocket-Key is missing or is not the base64 of 16 bytes");
  if (const std::optional<std::string_view> origin = request.header("origin")) upgrade.origin_ = std::string{*origin};
  ws::for_each_element(request, "sec-websocket-protocol",
                       [&](std::string_view protocol) { upgrade.offered_.emplace_back(protocol); });
  for (const HeaderField& field : request.headers()) {
    if (!detail::iequals(field.name, "sec-websocket-extensions")) continue;
    if (!upgrade.extensions_.empty()) upgrade.extensions_ += ", ";
    upgrade.extensions_ += field.value;
  }
  return upgrade;
}

}  // namespace spindle::http
