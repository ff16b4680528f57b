#pragma once
// The operations every connected stream socket has (TCP and Unix alike), written once.

#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string_view>

#include "spindle/net/detail/async_fd.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// Which half of a connection to shut down.
enum class Shutdown { read, write, both };

namespace detail {

class StreamSocket {
 public:
  /// Reads what is there, up to buffer.size() bytes; 0 means the peer closed its side.
  RecvAwaiter read(std::span<std::byte> buffer) noexcept { return RecvAwaiter{fd_.registration(), buffer}; }
  RecvAwaiter read(std::span<char> buffer) noexcept { return read(std::as_writable_bytes(buffer)); }
  /// Reads what is there without waiting: EAGAIN (std::errc::resource_unavailable_try_again) if nothing
  /// is, known from the readiness cache without a syscall when the last read drained the socket.
  IoResult<std::size_t> try_read(std::span<std::byte> buffer) noexcept;
  IoResult<std::size_t> try_read(std::span<char> buffer) noexcept { return try_read(std::as_writable_bytes(buffer)); }
  /// Completes when the socket is readable, reading nothing (see ReadableAwaiter).
  ReadableAwaiter readable() noexcept { return ReadableAwaiter{fd_.registration()}; }
  /// Writes some of `data`; returns how much.
  SendAwaiter write(std::span<const std::byte> data) noexcept { return SendAwaiter{fd_.registration(), data}; }
  SendAwaiter write(std::string_view data) noexcept { return write(std::as_bytes(std::span{data})); }
  /// Scatter read into several buffers with one syscall.
  ReadvAwaiter readv(std::span<const iovec> buffers) noexcept { return ReadvAwaiter{fd_.registration(), buffers}; }
  /// Gather write of several buffers with one syscall (headers and body in one packet).
  WritevAwaiter writev(std::span<const iovec> buffers) noexcept { return WritevAwaiter{fd_.registration(), buffers}; }
  /// Writes all of `data`, however many syscalls it takes. `data` must outlive the returned task.
  Task<IoResult<void>> write_all(std::span<const std::byte> data);
  Task<IoResult<void>> write_all(std::string_view data) { return write_all(std::as_bytes(std::span{data})); }

  /// Shuts down one or both directions (the peer reads end-of-stream after Shutdown::write).
  IoResult<void> shutdown(Shutdown how) noexcept;
  void close() noexcept { fd_.close(); }
  bool is_open() const noexcept { return fd_.is_open(); }
  int native_handle() const noexcept { return fd_.fd(); }

 protected:
  StreamSocket() noexcept = default;
  explicit StreamSocket(AsyncFd fd) noexcept : fd_(std::move(fd)) {}

  AsyncFd fd_;
};

/// Creates a non-blocking socket and connects it; the socket, once connected.
/// With `local`: bound to that address first (its port 0: any).
Task<IoResult<AsyncFd>> connect_socket(int family, const sockaddr* address, socklen_t length,
                                       const sockaddr* local = nullptr, socklen_t local_length = 0);

}  // namespace detail
}  // namespace spindle
