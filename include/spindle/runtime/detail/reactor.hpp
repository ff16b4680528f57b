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

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <system_error>

#include "spindle/result.hpp"
#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/runtime/detail/spin_lock.hpp"
#include "spindle/runtime/detail/task_header.hpp"

namespace spindle::detail {

class Reactor;

/// An operation parked until its fd is ready. `perform` retries the syscall: true once it is finished
/// (with a result or an error, stored in the object that embeds this), false if it would still block.
/// `abort` finishes it with an error without a syscall: its fd is being closed under it. Both run with
/// the registration locked, on whichever thread drives the reactor.
struct IoOp {
  bool (*perform)(IoOp& op) noexcept = nullptr;
  void (*abort)(IoOp& op, std::error_code error) noexcept = nullptr;
  Waker waker;  // empty for an operation that never completes (the signal pipe's watcher)
};

enum class IoDirection { read, write };

/// One fd as the reactor knows it. Heap-allocated and reference-counted: its owner (the socket) holds
/// one reference, a parked operation one, and the reactor one from the first park until the turn after
/// the fd is removed, because events fetched from epoll before the removal still carry its address.
///
/// Readiness (Tokio's scheme), per direction: bit 0 caches what the last syscall or event said, and the
/// bits above count readiness events. A syscall returning EAGAIN, or a stream read or write coming back
/// short (the kernel buffer is drained or full), clears bit 0, but only if no event came since the
/// operation looked (a compare-and-swap on the whole word); an event sets bit 0 and bumps the count. An
/// operation whose direction is not ready parks without trying its syscall, and parking checks, under
/// the lock the reactor takes to deliver events, that no event came since the operation looked: if one
/// did, the operation tries again instead of parking. So no edge is lost between a syscall's EAGAIN and
/// the park, whichever thread drives the reactor.
struct IoRegistration {
  static IoRegistration* create(int fd) { return new IoRegistration(fd); }
  // One per socket, as long as the socket: from the frame allocator's size classes (frame_allocator.hpp).
  static void* operator new(std::size_t size) { return allocate_frame(size); }
  static void operator delete(void* p, std::size_t size) noexcept { deallocate_frame(p, size); }
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::atomic<std::uint32_t>& readiness(IoDirection direction) noexcept {
    return direction == IoDirection::read ? read_readiness : write_readiness;
  }
  std::atomic<bool>& closed(IoDirection direction) noexcept {
    return direction == IoDirection::read ? read_closed : write_closed;
  }
  static constexpr std::uint32_t kReady = 1;
  /// Clears the ready bit if nothing changed since `observed` was read; false if an event came since.
  bool clear_ready(IoDirection direction, std::uint32_t observed) noexcept {
    if ((observed & kReady) == 0) return true;
    return readiness(direction).compare_exchange_strong(observed, observed & ~kReady, std::memory_order_acq_rel,
                                                        std::memory_order_relaxed);
  }

  int fd = -1;
  // A new fd counts as ready: it is tried before it is registered.
  std::atomic<std::uint32_t> read_readiness{kReady};
  std::atomic<std::uint32_t> write_readiness{kReady};
  // Sticky: the peer closed (RDHUP, HUP) or the socket failed. A short read that took the last bytes
  // before a FIN must not park: the FIN's edge may already be spent, and the next read returns 0 at once.
  std::atomic<bool> read_closed{false};
  std::atomic<bool> write_closed{false};

  SpinLock lock;               // guards the fields below
  Reactor* reactor = nullptr;  // the reactor it is added to; null until an operation first blocks
  IoOp* reader = nullptr;
  IoOp* writer = nullptr;
  // The reactor's list of its fds (guarded by the reactor's list mutex), so a reactor that goes first
  // can tell the sockets that outlive it.
  IoRegistration* prev = nullptr;
  IoRegistration* next = nullptr;

 private:
  explicit IoRegistration(int descriptor) noexcept : fd(descriptor) {}
  ~IoRegistration() = default;
  std::atomic<std::uint32_t> refs_{1};
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

/// One epoll instance and the sockets registered with it. turn() is called by one thread at a time (the
/// runtime's driver); park, unpark and deregister may be called from any thread.
class Reactor {
 public:
  explicit Reactor(std::unique_ptr<IoBackend> backend);
  Reactor(const Reactor&) = delete;
  Reactor& operator=(const Reactor&) = delete;
  ~Reactor();

  enum class Parked { yes, retry };
  /// Parks `op` until `registration`'s fd is ready for `direction`, adding the fd on first use. Returns
  /// `retry` (and does not park) if a readiness event came since the caller read `observed` from
  /// readiness(direction). A parked operation holds a reference to the registration, which its awaiter
  /// releases after unpark().
  IoResult<Parked> park(IoRegistration& registration, IoDirection direction, IoOp& op, std::uint32_t observed) noexcept;
  /// Unparks `op` if it is still parked (the awaiter is being destroyed: its task was cancelled).
  static void unpark(IoRegistration& registration, IoDirection direction, const IoOp& op) noexcept;
  /// The fd is being closed: finishes the operations still parked on it with ECANCELED (waking their
  /// tasks instead of leaving them hanging) and removes it from its reactor. Its owner calls this
  /// before close(), then drops its reference.
  static void deregister(IoRegistration& registration) noexcept;

  /// Waits for readiness up to `timeout_ms` and completes the operations it allows; returns how many.
  std::size_t turn(int timeout_ms) noexcept;
  void interrupt() noexcept { backend_->interrupt(); }

  /// Events handled per turn at most; the rest wait for the next turn (epoll keeps them).
  static constexpr std::size_t kEventsPerTurn = 256;

 private:
  void release_removed() noexcept;

  std::unique_ptr<IoBackend> backend_;
  std::mutex list_mutex_;
  IoRegistration* registered_ = nullptr;
  IoRegistration* removed_ = nullptr;  // deregistered, released at the start of the next turn
};

}  // namespace spindle::detail
