#include <sys/socket.h>
#include <sys/un.h>

#include <cstring>

#include "spindle/net/unix_stream.hpp"

namespace spindle {
namespace {

Result<sockaddr_un, std::error_code> unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path)
    return Err{std::make_error_code(std::errc::filename_too_long)};
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

}  // namespace

Task<IoResult<UnixStream>> UnixStream::connect(std::string path) {
  auto address = unix_address(path);
  if (!address) co_return Err{address.error()};
  IoResult<detail::AsyncFd> fd =
      co_await detail::connect_socket(AF_UNIX, reinterpret_cast<const sockaddr*>(&*address), sizeof *address);
  if (!fd) co_return Err{fd.error()};
  co_return UnixStream{std::move(*fd)};
}

IoResult<std::pair<UnixStream, UnixStream>> UnixStream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return last_os_error();
  return std::pair{UnixStream{detail::AsyncFd{fds[0]}}, UnixStream{detail::AsyncFd{fds[1]}}};
}

IoResult<UnixListener> UnixListener::bind(const std::string& path, int backlog) {
  auto address = unix_address(path);
  if (!address) return Err{address.error()};
  IoResult<int> fd = detail::open_listener(AF_UNIX, reinterpret_cast<const sockaddr*>(&*address), sizeof *address,
                                           backlog, false, false);
  if (!fd) return Err{fd.error()};
  return UnixListener{detail::ListenerSocket{*fd, "unix listener"}, path};
}

Task<IoResult<UnixStream>> UnixListener::accept() {
  IoResult<detail::AcceptedFd> accepted = co_await socket_.accept();
  if (!accepted) co_return Err{accepted.error()};
  co_return UnixStream{detail::AsyncFd{accepted->fd}};
}

}  // namespace spindle
