#include "spindle/net/detail/async_fd.hpp"

#include <unistd.h>

#include <utility>

namespace spindle::detail {

void AsyncFd::close() noexcept {
  if (registration_ == nullptr) return;
  Reactor::deregister(*registration_);
  ::close(registration_->fd);
  std::exchange(registration_, nullptr)->release();
}

std::optional<IoResult<AcceptedFd>> AcceptAwaiter::attempt() noexcept {
  AcceptedFd accepted{};
  for (;;) {
    accepted.peer_length = sizeof accepted.peer;
    accepted.fd = ::accept4(fd(), reinterpret_cast<sockaddr*>(&accepted.peer), &accepted.peer_length,
                            SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (accepted.fd >= 0) return IoResult<AcceptedFd>{accepted};
    // The connection died in the backlog, or a signal came: take the next one. Linux also reports a
    // network error already pending on the new connection this way (accept(2), "Error handling"): that
    // connection is gone, the listener is fine.
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == ENETDOWN || errno == ENOPROTOOPT ||
        errno == EHOSTDOWN || errno == ENONET || errno == EHOSTUNREACH || errno == EOPNOTSUPP || errno == ENETUNREACH)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return IoResult<AcceptedFd>{last_os_error()};
  }
}

std::optional<IoResult<int>> ConnectAwaiter::attempt() noexcept {
  if (!started_) {
    started_ = true;
    return std::nullopt;
  }
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) return IoResult<int>{last_os_error()};
  return IoResult<int>{error};
}

}  // namespace spindle::detail
