#include "spindle/net/detail/stream_socket.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

namespace spindle::detail {

Task<IoResult<void>> StreamSocket::write_all(std::span<const std::byte> data) {
  while (!data.empty()) {
    IoResult<std::size_t> written = co_await write(data);
    if (!written) co_return Err{written.error()};
    data = data.subspan(*written);
  }
  co_return IoResult<void>{};
}

IoResult<std::size_t> StreamSocket::try_read(std::span<std::byte> buffer) noexcept {
  IoRegistration& registration = fd_.registration();
  const std::uint32_t observed = registration.readiness(IoDirection::read).load(std::memory_order_acquire);
  const auto would_block = [] { return Err{std::make_error_code(std::errc::resource_unavailable_try_again)}; };
  if ((observed & IoRegistration::kReady) == 0 &&
      !registration.closed(IoDirection::read).load(std::memory_order_acquire))
    return would_block();
  ssize_t n;
  do n = ::recv(fd_.fd(), buffer.data(), buffer.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK) return last_os_error();
    registration.clear_ready(IoDirection::read, observed);
    return would_block();
  }
  // Short: the kernel buffer is drained (same rule as RecvAwaiter).
  if (n > 0 && static_cast<std::size_t>(n) < buffer.size()) registration.clear_ready(IoDirection::read, observed);
  return static_cast<std::size_t>(n);
}

IoResult<void> StreamSocket::shutdown(Shutdown how) noexcept {
  const int native = how == Shutdown::read ? SHUT_RD : how == Shutdown::write ? SHUT_WR : SHUT_RDWR;
  if (::shutdown(fd_.fd(), native) != 0) return last_os_error();
  return {};
}

Task<IoResult<AsyncFd>> connect_socket(int family, const sockaddr* address, socklen_t length, const sockaddr* local,
                                       socklen_t local_length) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return last_os_error();
  AsyncFd owner(fd);  // closes the socket if connecting fails or the task is cancelled
  if (local != nullptr) {
    // The port is chosen at connect(), per destination: with bind() choosing it, each local address would
    // be limited to one connection per ephemeral port across every destination.
    const int one = 1;
    if (family == AF_INET || family == AF_INET6)
      (void)::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd, local, local_length) != 0) co_return last_os_error();
  }
  int started;
  do started = ::connect(fd, address, length);
  while (started != 0 && errno == EINTR);
  if (started != 0) {
    if (errno != EINPROGRESS) co_return last_os_error();
    IoResult<int> outcome = co_await ConnectAwaiter{owner.registration()};
    if (!outcome) co_return Err{outcome.error()};
    if (*outcome != 0) co_return Err{std::error_code(*outcome, std::system_category())};
  }
  co_return std::move(owner);
}

}  // namespace spindle::detail
