#pragma once
// AsyncFd and IoAwaiter: the bridge between a non-blocking fd and the reactor, shared by every socket type.
//
// An IoAwaiter runs its syscall in await_ready (most calls on a busy socket finish there, without
// suspending); only on EAGAIN does it park itself on the fd's registration, and the reactor reruns the
// syscall when the fd is ready (see runtime/detail/reactor.hpp). Destroying a parked awaiter (its task was
// cancelled or timed out) unparks it.

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "spindle/result.hpp"
#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/reactor.hpp"

namespace spindle::detail {

/// Owns a non-blocking fd and its reactor registration; closes it on destruction.
class AsyncFd {
 public:
  AsyncFd() noexcept = default;
  explicit AsyncFd(int fd) : registration_(IoRegistration::create(fd)) {}
  AsyncFd(AsyncFd&& other) noexcept : registration_(std::exchange(other.registration_, nullptr)) {}
  AsyncFd& operator=(AsyncFd&& other) noexcept {
    if (this != &other) {
      close();
      registration_ = std::exchange(other.registration_, nullptr);
    }
    return *this;
  }
  AsyncFd(const AsyncFd&) = delete;
  AsyncFd& operator=(const AsyncFd&) = delete;
  ~AsyncFd() { close(); }

  int fd() const noexcept { return registration_ != nullptr ? registration_->fd : -1; }
  bool is_open() const noexcept { return registration_ != nullptr; }
  /// The registration, or for a closed socket one whose fd is -1, so that an operation on a closed
  /// socket fails with EBADF instead of crashing.
  IoRegistration& registration() const noexcept {
    return registration_ != nullptr ? *registration_ : closed_registration();
  }
  /// Ends the operations parked on the fd (ECANCELED), removes it from its reactor and closes it.
  void close() noexcept;

 private:
  static IoRegistration& closed_registration() noexcept {
    // fd -1: every syscall on it is EBADF, never EAGAIN, so nothing ever parks on it or changes it.
    static IoRegistration* const closed = IoRegistration::create(-1);
    return *closed;
  }
  IoRegistration* registration_ = nullptr;
};

/// An awaitable syscall on a registered fd. Derived provides `std::optional<IoResult<T>> attempt()`:
/// one try of the syscall, nullopt if it would block.
template <class Derived, class T, IoDirection Direction>
class IoAwaiter : private IoOp {
 public:
  explicit IoAwaiter(IoRegistration& registration) noexcept : registration_(&registration) {
    perform = &IoAwaiter::perform_parked;
    abort = &IoAwaiter::abort_parked;
  }
  // Movable until awaited (timeout() moves an operation into its own coroutine); a parked one is not moved.
  IoAwaiter(IoAwaiter&& other) noexcept : registration_(other.registration_) {
    perform = &IoAwaiter::perform_parked;
    abort = &IoAwaiter::abort_parked;
  }
  IoAwaiter& operator=(IoAwaiter&&) = delete;
  ~IoAwaiter() {
    if (parked_) {
      Reactor::unpark(*registration_, Direction, *this);
      registration_->release();
    }
  }

  bool await_ready() {
    observed_ = registration_->readiness(Direction).load(std::memory_order_acquire);
    // Known to be drained (or full) and still open: park without a doomed syscall.
    if (!ready_or_closed()) return false;
    // Budget spent: go through await_suspend, which does the syscall and then yields.
    if (!coop_take()) {
      must_yield_ = true;
      return false;
    }
    return try_now();
  }
  bool await_suspend(std::coroutine_handle<> h) {
    waker = make_waker(h);
    Reactor& reactor = *require_context("spindle socket operation").reactor;
    for (;;) {
      if (ready_or_closed() && try_now()) {
        if (!must_yield_) return false;
        waker.wake();  // finished, but the task has had its turn: requeue it behind the others
        return true;
      }
      IoResult<Reactor::Parked> parked = reactor.park(*registration_, Direction, *this, observed_);
      if (!parked) {
        result_.emplace(Err{parked.error()});
        return false;
      }
      if (*parked == Reactor::Parked::yes) {
        parked_ = true;
        return true;
      }
      observed_ = registration_->readiness(Direction).load(std::memory_order_acquire);  // an event came: retry
    }
  }
  /// Whether the operation has its result (a task woken by something else while this was parked: not).
  bool completed() const noexcept { return result_.has_value(); }

  IoResult<T> await_resume() {
    if (parked_) {
      parked_ = false;
      registration_->release();
    }
    return std::move(*result_);
  }

 protected:
  int fd() const noexcept { return registration_->fd; }
  /// Whether a finished call shows the fd drained or full (overridden by stream reads and writes).
  bool exhausted_readiness(const IoResult<T>&) const noexcept { return false; }
  /// For stream sockets: a short transfer means the kernel buffer was drained (read) or filled (write).
  static bool is_short(const IoResult<std::size_t>& done, std::size_t wanted) noexcept {
    return done && *done > 0 && *done < wanted;
  }

 private:
  bool ready_or_closed() const noexcept {
    return (observed_ & IoRegistration::kReady) != 0 ||
           registration_->closed(Direction).load(std::memory_order_acquire);
  }
  // One try of the syscall; clears the readiness cache when it shows the socket drained or full, unless
  // an event came since observed_ was read.
  bool try_now() noexcept {
    auto& derived = static_cast<Derived&>(*this);
    result_ = derived.attempt();
    if ((!result_ || derived.exhausted_readiness(*result_)) && registration_->clear_ready(Direction, observed_))
      observed_ &= ~IoRegistration::kReady;
    return result_.has_value();
  }
  // Run by the reactor with the registration locked, while the task is suspended. The reactor unparks a
  // finished operation itself; the awaiter keeps its reference until it resumes.
  static bool perform_parked(IoOp& op) noexcept {
    auto& self = static_cast<IoAwaiter&>(op);
    self.observed_ = self.registration_->readiness(Direction).load(std::memory_order_acquire);
    return self.try_now();
  }
  static void abort_parked(IoOp& op, std::error_code error) noexcept {
    static_cast<IoAwaiter&>(op).result_.emplace(Err{error});
  }

  std::optional<IoResult<T>> result_;
  IoRegistration* registration_;
  std::uint32_t observed_ = 0;  // the registration's readiness word when the current try began
  bool parked_ = false;         // holds a reference to the registration; touched only by the task
  bool must_yield_ = false;
};

/// Maps a syscall's return value to an attempt() outcome: a value, an error, or "would block".
template <class T>
std::optional<IoResult<T>> syscall_outcome(long returned) {
  if (returned >= 0) return IoResult<T>{static_cast<T>(returned)};
  if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
  return IoResult<T>{last_os_error()};
}

class RecvAwaiter : public IoAwaiter<RecvAwaiter, std::size_t, IoDirection::read> {
 public:
  RecvAwaiter(IoRegistration& registration, std::span<std::byte> buffer) noexcept
      : IoAwaiter(registration), buffer_(buffer) {}
  std::optional<IoResult<std::size_t>> attempt() noexcept {
    ssize_t n;
    do n = ::recv(fd(), buffer_.data(), buffer_.size(), 0);
    while (n < 0 && errno == EINTR);
    return syscall_outcome<std::size_t>(n);
  }
  bool exhausted_readiness(const IoResult<std::size_t>& done) const noexcept { return is_short(done, buffer_.size()); }

 private:
  std::span<std::byte> buffer_;
};

/// Completes once the fd is readable (or closed), without reading: a connection waiting for its next
/// request needs no buffer until bytes arrive. No syscall: readiness comes from the reactor's cache, so
/// it may be stale (the bytes already read); the read that follows then says EAGAIN and the caller waits
/// again.
class ReadableAwaiter : public IoAwaiter<ReadableAwaiter, void, IoDirection::read> {
 public:
  explicit ReadableAwaiter(IoRegistration& registration) noexcept : IoAwaiter(registration) {}
  std::optional<IoResult<void>> attempt() noexcept { return IoResult<void>{}; }
};

class SendAwaiter : public IoAwaiter<SendAwaiter, std::size_t, IoDirection::write> {
 public:
  SendAwaiter(IoRegistration& registration, std::span<const std::byte> data) noexcept
      : IoAwaiter(registration), data_(data) {}
  std::optional<IoResult<std::size_t>> attempt() noexcept {
    ssize_t n;
    // MSG_NOSIGNAL: a peer that went away is an EPIPE for this call, never a SIGPIPE for the process.
    do n = ::send(fd(), data_.data(), data_.size(), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return syscall_outcome<std::size_t>(n);
  }
  bool exhausted_readiness(const IoResult<std::size_t>& done) const noexcept { return is_short(done, data_.size()); }

 private:
  std::span<const std::byte> data_;
};

class ReadvAwaiter : public IoAwaiter<ReadvAwaiter, std::size_t, IoDirection::read> {
 public:
  ReadvAwaiter(IoRegistration& registration, std::span<const iovec> buffers) noexcept
      : IoAwaiter(registration), buffers_(buffers) {}
  std::optional<IoResult<std::size_t>> attempt() noexcept {
    ssize_t n;
    do n = ::readv(fd(), buffers_.data(), static_cast<int>(buffers_.size()));
    while (n < 0 && errno == EINTR);
    return syscall_outcome<std::size_t>(n);
  }

 private:
  std::span<const iovec> buffers_;
};

class WritevAwaiter : public IoAwaiter<WritevAwaiter, std::size_t, IoDirection::write> {
 public:
  WritevAwaiter(IoRegistration& registration, std::span<const iovec> buffers) noexcept
      : IoAwaiter(registration), buffers_(buffers) {}
  std::optional<IoResult<std::size_t>> attempt() noexcept {
    msghdr message{};
    message.msg_iov = const_cast<iovec*>(buffers_.data());
    message.msg_iovlen = buffers_.size();
    ssize_t n;
    do n = ::sendmsg(fd(), &message, MSG_NOSIGNAL);  // writev() has no MSG_NOSIGNAL
    while (n < 0 && errno == EINTR);
    return syscall_outcome<std::size_t>(n);
  }
  bool exhausted_readiness(const IoResult<std::size_t>& done) const noexcept {
    std::size_t wanted = 0;
    for (const iovec& buffer : buffers_) wanted += buffer.iov_len;
    return is_short(done, wanted);
  }

 private:
  std::span<const iovec> buffers_;
};

/// A connection taken from a listening socket: the new fd and the peer's address.
struct AcceptedFd {
  int fd;
  sockaddr_storage peer;
  socklen_t peer_length;
};

class AcceptAwaiter : public IoAwaiter<AcceptAwaiter, AcceptedFd, IoDirection::read> {
 public:
  using IoAwaiter::IoAwaiter;
  std::optional<IoResult<AcceptedFd>> attempt() noexcept;
};

/// Waits for a non-blocking connect() to finish; the result is the connection's SO_ERROR.
class ConnectAwaiter : public IoAwaiter<ConnectAwaiter, int, IoDirection::write> {
 public:
  using IoAwaiter::IoAwaiter;
  std::optional<IoResult<int>> attempt() noexcept;

 private:
  bool started_ = false;  // the first attempt (await_ready) only parks: the fd is not writable yet
};

}  // namespace spindle::detail
