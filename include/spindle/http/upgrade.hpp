#pragma once
// Protocol upgrades (RFC 9110 7.8): a handler answers 101 Switching Protocols and names what takes the
// connection over (Response::upgrade). The server writes the 101, leaves HTTP, and runs the Upgrade on
// the connection's own task: the connection stays in the server's registry (counted, and told when a
// graceful shutdown begins), but no HTTP timeout applies to it any more. WebSocketUpgrade (ws/upgrade.hpp)
// is built on it.

#include <atomic>
#include <memory>
#include <string>

#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// The connection an Upgrade takes over.
struct UpgradedConnection {
  TcpStream stream;
  std::string leftover;  ///< bytes already read past the request, which belong to the new protocol
  /// The server's "shutting down" flag (null outside a server). When a graceful shutdown begins the server
  /// sets it and shuts the socket's reading side, so a task waiting to read wakes up with end-of-stream
  /// and can say goodbye (WebSocket: Close 1001) with the writing side still open.
  const std::atomic<bool>* draining = nullptr;
  /// An Upgrade that moves `stream` into an object that may die before run() returns, or after, stores a
  /// reference to that object here: the server keeps it until the connection has left its registry,
  /// which addresses the socket by descriptor number and must never see the number reused meanwhile.
  std::shared_ptr<void>* anchor = nullptr;

  bool server_draining() const noexcept { return draining != nullptr && draining->load(std::memory_order_acquire); }
};

/// What runs on a connection after its 101 response. The task's end is the connection's end.
///
///   struct Echo final : Upgrade {
///     Task<void> run(UpgradedConnection connection) override { ... read and write connection.stream ... }
///   };
///   Response response = Response::empty(Status::switching_protocols);
///   response.headers.set("upgrade", "echo");
///   response.upgrade = std::make_shared<Echo>();
class Upgrade {
 public:
  virtual ~Upgrade() = default;
  virtual Task<void> run(UpgradedConnection connection) = 0;
};

}  // namespace spindle::http
