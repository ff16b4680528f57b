#pragma once
// The per-runtime side of signal handling: watches the process-wide signal pipe in the runtime's reactor.
// The waiting listeners themselves are process-wide (see signal.hpp for why).

#include <cstdint>
#include <system_error>

#include <mutex>

#include "spindle/runtime/detail/reactor.hpp"
#include "spindle/runtime/signal.hpp"

namespace spindle::detail {

class SignalDriver {
 public:
  explicit SignalDriver(Reactor& reactor) noexcept;
  SignalDriver(const SignalDriver&) = delete;
  SignalDriver& operator=(const SignalDriver&) = delete;
  ~SignalDriver();

  /// Starts watching the signal pipe in this runtime's reactor (once).
  std::error_code watch();

 private:
  static bool on_pipe_readable(IoOp& op) noexcept;

  Reactor& reactor_;
  std::mutex watch_mutex_;  // the workers of a multi-threaded runtime may start watching at once
  IoRegistration* pipe_ = nullptr;
  IoOp op_;
};

/// Adds a waiter to the process-wide list, to be woken (from any runtime) once its signals arrive; or,
/// if one already arrived, returns that signal and parks nothing (0 means parked).
int park_signal_waiter(SignalWaiter& waiter);
void unpark_signal_waiter(SignalWaiter& waiter) noexcept;

/// Installs Spindle's counting handler for `signal` (once per signal, process-wide).
void install_signal_handler(int signal);
/// How many times `signal` has been delivered since its handler was installed.
std::uint64_t signal_deliveries(int signal) noexcept;

}  // namespace spindle::detail
