#pragma once
// Waiting for libpq's socket. libpq owns the fd (it reads, writes and closes it); Spindle only asks the
// reactor when it is ready. Private to src/pg/.

#include <poll.h>
#include <sys/socket.h>

#include "spindle/net/detail/async_fd.hpp"

namespace spindle::pg::detail {

using spindle::detail::IoAwaiter;
using spindle::detail::IoDirection;
using spindle::detail::IoRegistration;

/// A reactor registration for an fd somebody else closes: deregisters without closing.
class SocketWatch {
 public:
  SocketWatch() noexcept = default;
  explicit SocketWatch(int fd) : registration_(IoRegistration::create(fd)) {}
  SocketWatch(SocketWatch&& other) noexcept : registration_(std::exchange(other.registration_, nullptr)) {}
  SocketWatch& operator=(SocketWatch&& other) noexcept {
    if (this != &other) {
      reset();
      registration_ = std::exchange(other.registration_, nullptr);
    }
    return *this;
  }
  ~SocketWatch() { reset(); }

  int fd() const noexcept { return registration_ != nullptr ? registration_->fd : -1; }
  IoRegistration* registration() const noexcept { return registration_; }
  /// Ends waits parked on the fd (ECANCELED) and forgets it; the fd stays open.
  void reset() noexcept {
    if (registration_ == nullptr) return;
    spindle::detail::Reactor::deregister(*registration_);
    std::exchange(registration_, nullptr)->release();
  }

 private:
  IoRegistration* registration_ = nullptr;
};

/// Completes when the socket has bytes to read (or an end or error to report), without taking them:
/// libpq reads them. A peek rather than the reactor's cached readiness, because libpq's read may leave
/// bytes behind (it reads once into its buffer), and an edge-triggered reactor would not report them again.
class ReadReady : public IoAwaiter<ReadReady, void, IoDirection::read> {
 public:
  explicit ReadReady(IoRegistration& registration) noexcept : IoAwaiter(registration) {}
  std::optional<IoResult<void>> attempt() noexcept {
    char byte;
    ssize_t n;
    do n = ::recv(fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
    return IoResult<void>{};  // data, end of stream or an error: libpq's next read tells which
  }
};

/// Completes when the socket can take more bytes (or has failed).
class WriteReady : public IoAwaiter<WriteReady, void, IoDirection::write> {
 public:
  explicit WriteReady(IoRegistration& registration) noexcept : IoAwaiter(registration) {}
  std::optional<IoResult<void>> attempt() noexcept {
    pollfd entry{fd(), POLLOUT, 0};
    int n;
    do n = ::poll(&entry, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n == 0) return std::nullopt;
    return IoResult<void>{};
  }
};

}  // namespace spindle::pg::detail
