#include "spindle/runtime/signal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "spindle/runtime/detail/context.hpp"
#include "spindle/runtime/detail/signal_driver.hpp"

namespace spindle {
namespace detail {
namespace {

constexpr int kMaxSignal = 65;

struct SignalGlobals {
  std::array<std::atomic<std::uint64_t>, kMaxSignal> deliveries{};
  std::array<bool, kMaxSignal> installed{};
  std::mutex install_mutex;
  int pipe_read = -1;
  int pipe_write = -1;
};

SignalGlobals& globals() {
  static SignalGlobals instance;
  return instance;
}

// Written once, before any handler is installed; read by the handler.
std::atomic<int> g_pipe_write{-1};
std::array<std::atomic<std::uint64_t>, kMaxSignal>* g_deliveries = nullptr;

extern "C" void spindle_signal_handler(int signal) {
  const int saved_errno = errno;
  (*g_deliveries)[static_cast<std::size_t>(signal)].fetch_add(1, std::memory_order_release);
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(g_pipe_write.load(std::memory_order_relaxed), &byte, 1);
  errno = saved_errno;
}

void check_signal(int signal) {
  if (signal <= 0 || signal >= kMaxSignal) throw std::invalid_argument("spindle: invalid signal number");
}

}  // namespace

void install_signal_handler(int signal) {
  check_signal(signal);
  SignalGlobals& state = globals();
  std::lock_guard lock(state.install_mutex);
  if (state.pipe_write < 0) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
      throw std::system_error(errno, std::system_category(), "spindle: signal pipe");
    state.pipe_read = fds[0];
    state.pipe_write = fds[1];
    g_deliveries = &state.deliveries;
    g_pipe_write.store(fds[1], std::memory_order_release);
  }
  if (state.installed[static_cast<std::size_t>(signal)]) return;
  struct sigaction action {};
  action.sa_handler = &spindle_signal_handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (::sigaction(signal, &action, nullptr) != 0)
    throw std::system_error(errno, std::system_category(), "spindle: sigaction");
  state.installed[static_cast<std::size_t>(signal)] = true;
}

std::uint64_t signal_deliveries(int signal) noexcept {
  return globals().deliveries[static_cast<std::size_t>(signal)].load(std::memory_order_acquire);
}

SignalDriver::SignalDriver(Reactor& reactor) noexcept : reactor_(reactor) {
  op_.perform = &SignalDriver::on_pipe_readable;
  op_.abort = [](IoOp&, std::error_code) noexcept {};
}

SignalDriver::~SignalDriver() {
  if (pipe_ == nullptr) return;
  Reactor::deregister(*pipe_);
  pipe_->release();  // the parked watcher's reference
  pipe_->release();  // ours; the pipe itself stays open for the other runtimes
}

std::error_code SignalDriver::watch() {
  std::lock_guard lock(watch_mutex_);
  if (pipe_ != nullptr) return {};
  // pipe_read is set: a listener exists, so a handler was installed.
  IoRegistration* pipe = IoRegistration::create(globals().pipe_read);
  for (;;) {
    const std::uint32_t observed = pipe->readiness(IoDirection::read).load(std::memory_order_acquire);
    IoResult<Reactor::Parked> parked = reactor_.park(*pipe, IoDirection::read, op_, observed);
    if (!parked) {
      Reactor::deregister(*pipe);
      pipe->release();
      return parked.error();
    }
    if (*parked == Reactor::Parked::yes) break;
  }
  pipe_ = pipe;
  return {};
}

namespace {

struct WaiterList {
  std::mutex mutex;
  SignalWaiter* head = nullptr;
};

WaiterList& waiters() {
  static WaiterList list;
  return list;
}

void unlink_locked(WaiterList& list, SignalWaiter& waiter) noexcept {
  if (waiter.prev != nullptr)
    waiter.prev->next = waiter.next;
  else
    list.head = waiter.next;
  if (waiter.next != nullptr) waiter.next->prev = waiter.prev;
  waiter.prev = waiter.next = nullptr;
  waiter.parked = false;
}

}  // namespace

int park_signal_waiter(SignalWaiter& waiter) {
  WaiterList& list = waiters();
  std::lock_guard lock(list.mutex);
  // Checked under the lock that on_pipe_readable holds: a delivery is either seen here or wakes us there.
  if (const int pending = waiter.listener->take_pending(); pending != 0) return pending;
  waiter.prev = nullptr;
  waiter.next = list.head;
  if (list.head != nullptr) list.head->prev = &waiter;
  list.head = &waiter;
  waiter.parked = true;
  return 0;
}

void unpark_signal_waiter(SignalWaiter& waiter) noexcept {
  WaiterList& list = waiters();
  std::lock_guard lock(list.mutex);
  if (waiter.parked) unlink_locked(list, waiter);
}

bool SignalDriver::on_pipe_readable(IoOp&) noexcept {
  std::array<char, 64> drain;
  while (::read(globals().pipe_read, drain.data(), drain.size()) > 0) {
  }
  WaiterList& list = waiters();
  std::lock_guard lock(list.mutex);
  for (SignalWaiter* waiter = list.head; waiter != nullptr;) {
    SignalWaiter* next = waiter->next;
    waiter->received = waiter->listener->take_pending();
    if (waiter->received != 0) {
      unlink_locked(list, *waiter);
      waiter->waker.wake();  // thread-safe: the waiter's runtime may be another thread's
    }
    waiter = next;
  }
  return false;  // stay parked: the pipe is watched for as long as the runtime lives
}

}  // namespace detail

SignalListener::SignalListener(std::initializer_list<int> signals) {
  for (int signal : signals) {
    detail::install_signal_handler(signal);
    watched_.push_back(Watched{signal, detail::signal_deliveries(signal)});
  }
}

int SignalListener::take_pending() noexcept {
  for (Watched& watched : watched_) {
    if (detail::signal_deliveries(watched.signal) > watched.seen) {
      ++watched.seen;
      return watched.signal;
    }
  }
  return 0;
}

SignalListener::Awaiter::~Awaiter() { detail::unpark_signal_waiter(waiter_); }

bool SignalListener::Awaiter::await_suspend(std::coroutine_handle<> h) {
  waiter_.waker = detail::make_waker(h);
  detail::RuntimeContext& context = detail::require_context("spindle::SignalListener::recv");
  if (std::error_code error = context.signals->watch()) throw std::system_error(error, "spindle: cannot watch signals");
  waiter_.received = detail::park_signal_waiter(waiter_);
  return waiter_.received == 0;
}

Task<void> ctrl_c() {
  SignalListener listener{SIGINT};
  co_await listener.recv();
}

Task<int> shutdown_signal() {
  SignalListener listener{SIGINT, SIGTERM};
  co_return co_await listener.recv();
}

}  // namespace spindle
