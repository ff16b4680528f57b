#pragma once

#include <string>

#include "spindle/net/detail/listener_socket.hpp"
#include "spindle/net/socket_address.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// A listening TCP socket.
///
///   auto listener = TcpListener::bind(*SocketAddr::parse("127.0.0.1:0"));
///   for (;;) {
///     auto accepted = co_await listener->accept();
///     if (accepted) spawn(serve(std::move(accepted->stream))).detach();
///   }
///
/// accept() survives running out of file descriptors (EMFILE/ENFILE): it logs once, backs off (10 ms
/// doubling to 1 s) and retries, so the pending connections wait in the backlog instead of the process
/// spinning on a listener that is always readable.
class TcpListener {
 public:
  struct Options {
    int backlog = 1024;
    bool reuse_address = true;  ///< SO_REUSEADDR: rebind at once after a restart
    bool reuse_port = false;    ///< SO_REUSEPORT: several listeners (one per thread) share the port
  };
  struct Accepted {
    TcpStream stream;
    SocketAddr peer;
  };

  static IoResult<TcpListener> bind(const SocketAddr& address, Options options);
  static IoResult<TcpListener> bind(const SocketAddr& address) { return bind(address, Options{}); }

  /// The next connection (with TCP_NODELAY already set).
  Task<IoResult<Accepted>> accept();
  IoResult<SocketAddr> local_addr() const noexcept;
  int native_handle() const noexcept { return socket_.native_handle(); }

 private:
  explicit TcpListener(detail::ListenerSocket socket) noexcept : socket_(std::move(socket)) {}
  detail::ListenerSocket socket_;
};

}  // namespace spindle
