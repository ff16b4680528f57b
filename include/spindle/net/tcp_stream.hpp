#pragma once

#include "spindle/net/detail/stream_socket.hpp"
#include "spindle/net/socket_address.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// A TCP connection.
///
///   auto stream = co_await TcpStream::connect(*SocketAddr::parse("127.0.0.1:8080"));
///   if (!stream) co_return;                       // stream.error() says why
///   co_await stream->write_all("ping\n");
///   std::array<std::byte, 512> buffer;
///   auto n = co_await stream->read(buffer);       // IoResult<std::size_t>; 0 = closed by the peer
class TcpStream : public detail::StreamSocket {
 public:
  TcpStream() noexcept = default;
  /// Adopts a connected, non-blocking socket.
  explicit TcpStream(detail::AsyncFd fd) noexcept : StreamSocket(std::move(fd)) {}

  static Task<IoResult<TcpStream>> connect(SocketAddr address);
  /// From a given local address (port 0: any), e.g. 127.0.0.2 to open more connections to one server than
  /// one source address has ephemeral ports.
  static Task<IoResult<TcpStream>> connect(SocketAddr address, SocketAddr local);

  /// Disables Nagle's algorithm: small writes leave at once (request/response protocols want this).
  IoResult<void> set_nodelay(bool enabled) noexcept;
  IoResult<SocketAddr> local_addr() const noexcept;
  IoResult<SocketAddr> peer_addr() const noexcept;
};

}  // namespace spindle
