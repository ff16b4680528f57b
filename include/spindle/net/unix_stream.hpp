#pragma once

#include <string>
#include <utility>

#include "spindle/net/detail/listener_socket.hpp"
#include "spindle/net/detail/stream_socket.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// A Unix-domain stream connection (same operations as TcpStream).
///
///   auto [a, b] = *UnixStream::pair();
///   co_await a.write_all("hello");
class UnixStream : public detail::StreamSocket {
 public:
  UnixStream() noexcept = default;
  explicit UnixStream(detail::AsyncFd fd) noexcept : StreamSocket(std::move(fd)) {}

  static Task<IoResult<UnixStream>> connect(std::string path);
  /// Two connected streams (socketpair).
  static IoResult<std::pair<UnixStream, UnixStream>> pair();
};

/// A listening Unix-domain socket at a filesystem path.
class UnixListener {
 public:
  /// Binds `path` (which must not exist yet). Options as for TCP: backlog.
  static IoResult<UnixListener> bind(const std::string& path, int backlog = 1024);
  Task<IoResult<UnixStream>> accept();
  const std::string& path() const noexcept { return path_; }

 private:
  UnixListener(detail::ListenerSocket socket, std::string path) noexcept
      : socket_(std::move(socket)), path_(std::move(path)) {}
  detail::ListenerSocket socket_;
  std::string path_;
};

}  // namespace spindle
