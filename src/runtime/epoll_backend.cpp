// The epoll implementation of IoBackend. An eventfd, added with a null token, carries interrupt().

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <system_error>

#include "spindle/runtime/detail/reactor.hpp"

namespace spindle::detail {
namespace {

class EpollBackend final : public IoBackend {
 public:
  EpollBackend() : epoll_fd_(::epoll_create1(EPOLL_CLOEXEC)), wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (epoll_fd_ < 0 || wake_fd_ < 0) throw std::system_error(errno, std::system_category(), "spindle: epoll set-up");
    epoll_event event{};
    event.events = EPOLLIN | EPOLLET;
    event.data.ptr = nullptr;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0)
      throw std::system_error(errno, std::system_category(), "spindle: epoll_ctl(eventfd)");
  }
  ~EpollBackend() override {
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }
  EpollBackend(const EpollBackend&) = delete;
  EpollBackend& operator=(const EpollBackend&) = delete;

  std::error_code add(int fd, void* token) noexcept override {
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.ptr = token;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) return {errno, std::system_category()};
    return {};
  }

  void remove(int fd) noexcept override { ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

  std::size_t wait(std::span<Event> out, int timeout_ms) noexcept override {
    std::array<epoll_event, Reactor::kEventsPerTurn> events;
    const int capacity = static_cast<int>(std::min(out.size(), events.size()));
    const int count = ::epoll_wait(epoll_fd_, events.data(), capacity, timeout_ms);
    if (count <= 0) return 0;  // EINTR: a signal arrived; the caller's loop comes back
    std::size_t written = 0;
    for (int i = 0; i < count; ++i) {
      const epoll_event& event = events[static_cast<std::size_t>(i)];
      if (event.data.ptr == nullptr) {
        std::uint64_t drained = 0;
        [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &drained, sizeof drained);
        continue;
      }
      const bool failed = (event.events & (EPOLLERR | EPOLLHUP)) != 0;
      const bool peer_closed = (event.events & EPOLLRDHUP) != 0;
      out[written++] = Event{event.data.ptr, failed || peer_closed || (event.events & EPOLLIN) != 0,
                             failed || (event.events & EPOLLOUT) != 0, failed || peer_closed, failed};
    }
    return written;
  }

  void interrupt() noexcept override {
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

 private:
  int epoll_fd_;
  int wake_fd_;
};

}  // namespace

std::unique_ptr<IoBackend> make_epoll_backend() { return std::make_unique<EpollBackend>(); }

}  // namespace spindle::detail
