#pragma once
// The reactor: turns "this fd is ready" into "this task runs again".
//
// Design. Readiness based and edge triggered (epoll with EPOLLET), as in Tokio and Asio. An fd is added
// to epoll once, for both directions, the first time an operation on it would block; sockets that never
// block never cost an epoll_ctl. An operation first tries its syscall where it stands (the fast path: a
// busy socket usually has data). On EAGAIN it parks an IoOp on the fd's registration. When epoll reports
// readiness the reactor retries the parked operation's syscall itself (Asio's "perform"), and wakes the
// task only when it finished, so a spurious edge (data already consumed) costs a syscall, not a task
// switch, and the task resumes with its result in hand.
//
// The backend. IoBackend is the small interface behind which epoll sits; an io_uring backend using
// IORING_OP_POLL_ADD delivers the same readiness events and can replace it without touching the rest.

#include <cstddef>
#include <memory>
#include <span>
#include <system_error>

#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

class Reactor;

/// An operation parked until its fd is ready. `perform` retries the syscall: true once it is finished
/// (with a result or an error, stored in the object that embeds this), false if it would still block.
/// `abort` finishes it with an error without a syscall: its fd is being closed under it.
struct IoOp {
  bool (*perform)(IoOp& op) noexcept = nullptr;
  void (*abort)(IoOp& op, std::error_code error) noexcept = nullptr;
  Waker waker;
};

enum class IoDirection { read, write };

/// One fd as the reactor knows it. Heap-allocated by its owner (the socket), so the address that epoll
/// carries as the event token stays valid while the socket object itself is moved around.
///
/// read_ready / write_ready cache what the last syscall or event said (Tokio's readiness): cleared when
/// a syscall returns EAGAIN or a stream read or write comes back short (the socket buffer is drained or
/// full, so the next try would be an EAGAIN), set again by the next edge from epoll. An operation whose
/// direction is not ready parks without trying its syscall: a read after a short read costs no EAGAIN.
struct IoRegistration {
  int fd = -1;
  Reactor* reactor = nullptr;  // the reactor it is added to; null until an operation first blocks
  IoOp* reader = nullptr;
  IoOp* writer = nullptr;
  bool read_ready = true;  // unknown counts as ready: a new fd is tried before it is registered
  bool write_ready = true;
  // Sticky: the peer closed (RDHUP, HUP) or the socket failed. A short read that took the last bytes
  // before a FIN must not park: the FIN's edge may already be spent, and the next read returns 0 at once.
  bool read_closed = false;
  bool write_closed = false;
  // The reactor's list of its fds, so a reactor that goes first can tell the sockets that outlive it.
  IoRegistration* prev = nullptr;
  IoRegistration* next = nullptr;
};

/// The readiness source: epoll today.
class IoBackend {
 public:
  struct Event {
    void* token;
    bool readable;  // also set for errors and hang-ups: the retried syscall reports them
    bool writable;
    bool read_closed;   // the peer shut down its side, or the socket failed
    bool write_closed;  // the connection is gone, or the socket failed
  };

  virtual ~IoBackend() = default;
  virtual std::error_code add(int fd, void* token) noexcept = 0;
  virtual void remove(int fd) noexcept = 0;
  /// Waits for events up to `timeout_ms` (-1 = no limit, 0 = just look) and returns how many it wrote.
  virtual std::size_t wait(std::span<Event> out, int timeout_ms) noexcept = 0;
  /// Ends a wait() in progress, or the next one, early. Safe from any thread and from signal handlers.
  virtual void interrupt() noexcept = 0;
};

std::unique_ptr<IoBackend> make_epoll_backend();

class Reactor {
 public:
  explicit Reactor(std::unique_ptr<IoBackend> backend);
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;
  ~Reactor();

  /// Parks `op` until `registration`'s fd is ready for `direction`, adding the fd on first use.
  std::error_code park(IoRegistration& registration, IoDirection direction, IoOp& op) noexcept;
  /// Unparks `op` if it is still parked (the awaiter is being destroyed: its task was cancelled).
  static void unpark(IoRegistration& registration, IoDirection direction, const IoOp& op) noexcept;
  /// Removes the fd; its owner calls this before close().
  static void remove(IoRegistration& registration) noexcept;
  /// Finishes the operations still parked on the fd with `error` and wakes their tasks (the fd is
  /// being closed by another task: the waiting read or write ends with ECANCELED instead of hanging).
  static void abort_parked(IoRegistration& registration, std::error_code error) noexcept;

  /// Waits for readiness up to `timeout_ms` and completes the operations it allows; returns how many.
  std::size_t turn(int timeout_ms) noexcept;
  void interrupt() noexcept { backend_->interrupt(); }

  /// Events handled per turn at most; the rest wait for the next turn (epoll keeps them).
  static constexpr std::size_t kEventsPerTurn = 256;

 private:
  void unlink(IoRegistration& registration) noexcept;

  std::unique_ptr<IoBackend> backend_;
  IoRegistration* registered_ = nullptr;
};

}  // namespace spindle::detail
