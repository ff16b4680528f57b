#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <optional>

#include "spindle/net/tcp_listener.hpp"
#include "spindle/net/tcp_stream.hpp"

namespace spindle {
namespace {

using AddressQuery = int (*)(int, sockaddr*, socklen_t*);

IoResult<SocketAddr> query_address(int fd, AddressQuery query) noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (query(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return last_os_error();
  return SocketAddr::from_native(reinterpret_cast<sockaddr*>(&storage), length);
}

}  // namespace

namespace {

Task<IoResult<TcpStream>> connect_stream(SocketAddr address, std::optional<SocketAddr> local) {
  IoResult<detail::AsyncFd> fd =
      co_await detail::connect_socket(address.family(), address.native(), address.native_size(),
                                      local ? local->native() : nullptr, local ? local->native_size() : 0);
  if (!fd) co_return Err{fd.error()};
  TcpStream stream{std::move(*fd)};
  if (auto nodelay = stream.set_nodelay(true); !nodelay) co_return Err{nodelay.error()};
  co_return stream;
}

}  // namespace

Task<IoResult<TcpStream>> TcpStream::connect(SocketAddr address) { return connect_stream(address, std::nullopt); }

Task<IoResult<TcpStream>> TcpStream::connect(SocketAddr address, SocketAddr local) {
  return connect_stream(address, local);
}

IoResult<void> TcpStream::set_nodelay(bool enabled) noexcept {
  const int value = enabled ? 1 : 0;
  if (::setsockopt(native_handle(), IPPROTO_TCP, TCP_NODELAY, &value, sizeof value) != 0) return last_os_error();
  return {};
}

IoResult<SocketAddr> TcpStream::local_addr() const noexcept { return query_address(native_handle(), &::getsockname); }
IoResult<SocketAddr> TcpStream::peer_addr() const noexcept { return query_address(native_handle(), &::getpeername); }

IoResult<TcpListener> TcpListener::bind(const SocketAddr& address, Options options) {
  IoResult<int> fd = detail::open_listener(address.family(), address.native(), address.native_size(), options.backlog,
                                           options.reuse_address, options.reuse_port);
  if (!fd) return Err{fd.error()};
  return TcpListener{detail::ListenerSocket{*fd, "tcp listener"}};
}

Task<IoResult<TcpListener::Accepted>> TcpListener::accept() {
  IoResult<detail::AcceptedFd> accepted = co_await socket_.accept();
  if (!accepted) co_return Err{accepted.error()};
  TcpStream stream{detail::AsyncFd{accepted->fd}};
  // Best effort: a connection reset right after accept fails here, and its first read says so.
  (void)stream.set_nodelay(true);
  co_return Accepted{std::move(stream), SocketAddr::from_native(reinterpret_cast<const sockaddr*>(&accepted->peer),
                                                                accepted->peer_length)};
}

IoResult<SocketAddr> TcpListener::local_addr() const noexcept { return query_address(native_handle(), &::getsockname); }

}  // namespace spindle
