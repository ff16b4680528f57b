#pragma once
// WebSocketUpgrade: the extractor that turns a GET into a WebSocket (RFC 6455 4.2), as Axum's.
//
//   router.route("/ws", get([](ws::WebSocketUpgrade upgrade, State<App> app) {
//     return upgrade.protocols({"chat.v1"}).on_upgrade([app](ws::WebSocket socket) -> Task<void> {
//       ... co_await socket.recv() ... co_await socket.send(...) ...
//     });
//   }));
//
// The handler stays synchronous: on_upgrade() returns the 101 response at once, and the server runs the
// callback on the connection once the 101 is written. When the callback returns, the socket is closed
// properly (the close handshake if nobody did it, 1011 if the callback threw). During a graceful shutdown
// a socket waiting in recv() gets Error::Kind::going_away and the peer a Close 1001.

#include <concepts>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spindle/http/extract.hpp"
#include "spindle/http/upgrade.hpp"
#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/ws/websocket.hpp"

namespace spindle::ws {

/// A WebSocket handshake request, accepted with on_upgrade(). Rejections: 405 for a method other than
/// GET, 400 for a request that is not a valid handshake (Connection, Upgrade, Sec-WebSocket-Key), 426
/// with Sec-WebSocket-Version: 13 for another protocol version, 403 from on_upgrade() for an Origin not
/// allowed.
class WebSocketUpgrade {
 public:
  /// The subprotocols this endpoint speaks, preferred first: the first of them the client offers is
  /// agreed (none agreed when the client offers none of them: the client decides whether to go on).
  WebSocketUpgrade& protocols(std::vector<std::string> supported) &;
  WebSocketUpgrade&& protocols(std::vector<std::string> supported) && {
    return std::move(protocols(std::move(supported)));
  }
  /// Origins allowed to connect ("https://example.com", compared without regard to case). A browser always
  /// sends Origin; a request from another origin is answered 403, which stops cross-site WebSocket
  /// hijacking. A request without Origin (not from a browser) is allowed.
  WebSocketUpgrade& allowed_origins(std::vector<std::string> origins) &;
  WebSocketUpgrade&& allowed_origins(std::vector<std::string> origins) && {
    return std::move(allowed_origins(std::move(origins)));
  }
  /// The socket's limits and behaviour (ws::Config); config.compression enables permessage-deflate.
  WebSocketUpgrade& config(Config config) &;
  WebSocketUpgrade&& config(Config config) && { return std::move(this->config(std::move(config))); }

  /// The request's Origin, if it had one.
  std::optional<std::string_view> origin() const noexcept;
  /// The subprotocols the client offered, in its order.
  const std::vector<std::string>& offered_protocols() const noexcept { return offered_; }
  /// The subprotocol agreed by protocols(), if any.
  std::optional<std::string_view> selected_protocol() const noexcept;

  /// The 101 response; `callback` (a `Task<void>(ws::WebSocket)`, kept alive as long as the socket) runs
  /// on the connection once it is written. A 403 instead when the Origin is not allowed.
  template <class Callback>
  requires std::invocable<Callback&, WebSocket> && std::same_as<std::invoke_result_t<Callback&, WebSocket>, Task<void>>
      http::Response on_upgrade(Callback callback) {
    // One per socket, as long as the socket: from the frame allocator (no malloc header, no holes).
    return accept(std::allocate_shared<Runner<Callback>>(spindle::detail::FrameAllocator<Runner<Callback>>{},
                                                         std::move(callback)));
  }

 private:
  friend struct http::Extract<WebSocketUpgrade>;

  /// The part of the upgrade that does not depend on the callback's type (upgrade.cpp).
  class Session : public http::Upgrade, public std::enable_shared_from_this<Session> {
   public:
    Task<void> run(http::UpgradedConnection connection) final;
    detail::Handshake handshake;

   protected:
    virtual Task<void> start(WebSocket socket) = 0;
  };
  template <class Callback>
  class Runner final : public Session {
   public:
    explicit Runner(Callback callback) : callback_(std::move(callback)) {}

   private:
    Task<void> start(WebSocket socket) override { return callback_(std::move(socket)); }
    Callback callback_;
  };

  http::Response accept(std::shared_ptr<Session> session);

  std::string key_;
  std::optional<std::string> origin_;
  std::vector<std::string> offered_;
  std::string extensions_;  // the Sec-WebSocket-Extensions values, joined
  std::vector<std::string> supported_;
  std::vector<std::string> allowed_origins_;
  std::shared_ptr<const Config> config_ = default_config();

  static std::shared_ptr<const Config> default_config();
};

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2): base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view key);

}  // namespace spindle::ws

namespace spindle::http {
template <>
struct Extract<ws::WebSocketUpgrade> {
  static Result<ws::WebSocketUpgrade, Rejection> from_parts(Request& request);
};
}  // namespace spindle::http
