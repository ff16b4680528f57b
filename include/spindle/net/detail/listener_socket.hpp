#pragma once
// The accept loop every listener shares, including the back-off when the process runs out of fds.

#include <chrono>

#include "spindle/net/detail/async_fd.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::detail {

class ListenerSocket {
 public:
  ListenerSocket() noexcept = default;
  explicit ListenerSocket(int fd, const char* kind) : fd_(fd), kind_(kind) {}

  /// Accepts the next connection, backing off while fds are exhausted (see TcpListener).
  Task<IoResult<AcceptedFd>> accept();
  int native_handle() const noexcept { return fd_.fd(); }

  static constexpr std::chrono::milliseconds kFirstBackoff{10};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};
  /// Exhaustion is logged once, then again only if it recurs after this long: enough to notice, never a
  /// flood while the process sits at its fd limit.
  static constexpr std::chrono::seconds kLogInterval{60};

 private:
  AsyncFd fd_;
  const char* kind_ = "listener";
  std::chrono::steady_clock::time_point last_logged_{};
  bool ever_logged_ = false;
};

/// socket() + options + bind() + listen() for any family; returns the listening fd.
IoResult<int> open_listener(int family, const sockaddr* address, socklen_t length, int backlog, bool reuse_address,
                            bool reuse_port);

}  // namespace spindle::detail
