#include "spindle/net/detail/listener_socket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "spindle/runtime/detail/log.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::detail {
namespace {

// Out of fds or kernel memory: retrying at once would fail the same way, and the listener stays readable,
// so an eager loop would spin. Waiting lets connections close and fds come back.
bool is_resource_exhaustion(const std::error_code& error) {
  const int code = error.value();
  return code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM;
}

}  // namespace

Task<IoResult<AcceptedFd>> ListenerSocket::accept() {
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (;;) {
    IoResult<AcceptedFd> accepted = co_await AcceptAwaiter{fd_.registration()};
    if (accepted || !is_resource_exhaustion(accepted.error())) co_return accepted;
    const auto now = std::chrono::steady_clock::now();
    if (!ever_logged_ || now - last_logged_ >= kLogInterval) {
      log_warning("%s: accept: %s; backing off (pending connections wait in the backlog)", kind_,
                  accepted.error().message().c_str());
      ever_logged_ = true;
      last_logged_ = now;
    }
    co_await sleep(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

IoResult<int> open_listener(int family, const sockaddr* address, socklen_t length, int backlog, bool reuse_address,
                            bool reuse_port) {
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return last_os_error();
  const int on = 1;
  auto fail = [fd] {
    auto error = last_os_error();
    ::close(fd);
    return error;
  };
  if (reuse_address && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) return fail();
  if (reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) return fail();
  if (::bind(fd, address, length) != 0) return fail();
  if (::listen(fd, backlog) != 0) return fail();
  return fd;
}

}  // namespace spindle::detail
