#pragma once
// Unix signals as awaitables. A process-wide handler counts each delivery and writes a byte to a
// non-blocking pipe (the self-pipe trick, async-signal-safe). Every runtime with a waiting listener
// watches the pipe's read end in its reactor. Whichever runtime drains the pipe wakes the waiting
// listeners of every runtime (they are kept in one process-wide list and wakers work across threads):
// epoll re-checks readiness when it reports an event, so once one runtime has drained the pipe the
// others may never see it readable. The counts, not the pipe bytes, say which signals arrived.

#include <coroutine>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// Listens for a set of signals from the moment it is constructed: the handlers are installed then, so
/// the signals no longer take their default action (SIGTERM no longer kills the process).
///
///   SignalListener stop{SIGINT, SIGTERM};      // before announcing the server
///   std::puts("listening on ...");
///   int signal = co_await stop.recv();
class SignalListener {
 public:
  SignalListener(std::initializer_list<int> signals);
  SignalListener(const SignalListener&) = delete;
  SignalListener& operator=(const SignalListener&) = delete;
  SignalListener(SignalListener&&) = default;
  SignalListener& operator=(SignalListener&&) = default;
  ~SignalListener() = default;

  class Awaiter;
  /// Waits for the next delivery (not yet received) of one of the signals; yields its number.
  Awaiter recv() noexcept;

  /// One delivery not yet received, consumed; 0 if none.
  int take_pending() noexcept;

 private:
  struct Watched {
    int signal;
    std::uint64_t seen;
  };
  std::vector<Watched> watched_;
};

namespace detail {
/// A listener waiting for a signal, in the process-wide list of waiters (intrusive).
struct SignalWaiter {
  SignalListener* listener = nullptr;
  Waker waker;
  int received = 0;
  SignalWaiter* prev = nullptr;
  SignalWaiter* next = nullptr;
  bool parked = false;
};
}  // namespace detail

class SignalListener::Awaiter {
 public:
  explicit Awaiter(SignalListener& listener) noexcept { waiter_.listener = &listener; }
  Awaiter(const Awaiter&) = delete;
  Awaiter& operator=(const Awaiter&) = delete;
  ~Awaiter();

  bool await_ready() noexcept {
    waiter_.received = waiter_.listener->take_pending();
    return waiter_.received != 0;
  }
  bool await_suspend(std::coroutine_handle<> h);
  int await_resume() const noexcept { return waiter_.received; }

 private:
  detail::SignalWaiter waiter_;
};

inline SignalListener::Awaiter SignalListener::recv() noexcept { return Awaiter{*this}; }

/// Completes at the next SIGINT (Ctrl-C) after it starts.
Task<void> ctrl_c();
/// Completes at the next SIGINT or SIGTERM after it starts; yields the signal number.
Task<int> shutdown_signal();

}  // namespace spindle
