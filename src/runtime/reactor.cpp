#include "spindle/runtime/detail/reactor.hpp"

#include <array>
#include <initializer_list>
#include <utility>

namespace spindle::detail {

namespace {

IoOp*& slot_of(IoRegistration& registration, IoDirection direction) noexcept {
  return direction == IoDirection::read ? registration.reader : registration.writer;
}

void unlink(IoRegistration*& head, IoRegistration& registration) noexcept {
  if (registration.prev != nullptr)
    registration.prev->next = registration.next;
  else
    head = registration.next;
  if (registration.next != nullptr) registration.next->prev = registration.prev;
  registration.prev = registration.next = nullptr;
}

void push_front(IoRegistration*& head, IoRegistration& registration) noexcept {
  registration.prev = nullptr;
  registration.next = head;
  if (head != nullptr) head->prev = &registration;
  head = &registration;
}

// An event for `direction` came: records it and retries the parked operation, if any. The operation's
// wake point is claimed before its syscall runs, so a task that was woken meanwhile by something else
// (its timeout) does not get data it will never see; the operation stays parked until its awaiter goes.
std::size_t deliver(IoRegistration& registration, IoDirection direction) noexcept {
  std::atomic<std::uint32_t>& readiness = registration.readiness(direction);
  std::uint32_t seen = readiness.load(std::memory_order_relaxed);
  while (!readiness.compare_exchange_weak(seen, (seen + 2) | IoRegistration::kReady, std::memory_order_acq_rel,
                                          std::memory_order_relaxed)) {
  }
  IoOp*& slot = slot_of(registration, direction);
  IoOp* op = slot;
  if (op == nullptr) return 0;
  const Waker waker = op->waker;
  if (waker && !waker.task->claim_wake_provisionally(waker.resume_at)) return 0;
  if (!op->perform(*op)) {
    if (waker) waker.task->withdraw_wake(waker.resume_at);
    return 0;
  }
  slot = nullptr;
  if (waker) waker.task->confirm_wake(waker.resume_at);
  return 1;
}

}  // namespace

Reactor::Reactor(std::unique_ptr<IoBackend> backend) : backend_(std::move(backend)) {}

Reactor::~Reactor() {
  release_removed();
  std::lock_guard list_lock(list_mutex_);
  while (IoRegistration* registration = registered_) {
    unlink(registered_, *registration);
    {
      std::lock_guard lock(registration->lock);
      registration->reactor = nullptr;
    }
    registration->release();
  }
}

IoResult<Reactor::Parked> Reactor::park(IoRegistration& registration, IoDirection direction, IoOp& op,
                                        std::uint32_t observed) noexcept {
  std::lock_guard lock(registration.lock);
  if (registration.reactor != this) {
    // A socket belongs to the runtime that first waited on it: another runtime's reactor may be driven
    // by a thread that knows nothing of this one. (A runtime that is gone lets it go.)
    if (registration.reactor != nullptr) return Err{std::make_error_code(std::errc::operation_not_supported)};
    if (std::error_code error = backend_->add(registration.fd, &registration)) return Err{error};
    registration.reactor = this;
    registration.add_ref();  // the reactor's, until the turn after deregister()
    std::lock_guard list_lock(list_mutex_);
    push_front(registered_, registration);
  }
  if (registration.readiness(direction).load(std::memory_order_acquire) >> 1 != observed >> 1) return Parked::retry;
  IoOp*& slot = slot_of(registration, direction);
  if (slot != nullptr) return Err{std::make_error_code(std::errc::device_or_resource_busy)};  // two readers: a bug
  slot = &op;
  registration.add_ref();  // the parked operation's
  return Parked::yes;
}

void Reactor::unpark(IoRegistration& registration, IoDirection direction, const IoOp& op) noexcept {
  std::lock_guard lock(registration.lock);
  IoOp*& slot = slot_of(registration, direction);
  if (slot == &op) slot = nullptr;
}

void Reactor::deregister(IoRegistration& registration) noexcept {
  Reactor* reactor = nullptr;
  {
    std::lock_guard lock(registration.lock);
    for (IoOp** slot : {&registration.reader, &registration.writer}) {
      IoOp* op = std::exchange(*slot, nullptr);
      if (op == nullptr) continue;
      op->abort(*op, std::make_error_code(std::errc::operation_canceled));
      if (op->waker) op->waker.wake();
    }
    reactor = std::exchange(registration.reactor, nullptr);
  }
  if (reactor == nullptr) return;
  reactor->backend_->remove(registration.fd);
  std::lock_guard list_lock(reactor->list_mutex_);
  unlink(reactor->registered_, registration);
  push_front(reactor->removed_, registration);
}

void Reactor::release_removed() noexcept {
  IoRegistration* removed = nullptr;
  {
    std::lock_guard list_lock(list_mutex_);
    removed = std::exchange(removed_, nullptr);
  }
  while (removed != nullptr) {
    IoRegistration* next = std::exchange(removed->next, nullptr);
    removed->release();
    removed = next;
  }
}

std::size_t Reactor::turn(int timeout_ms) noexcept {
  // Registrations removed before this turn cannot appear in its events: their last references go.
  release_removed();
  std::array<IoBackend::Event, kEventsPerTurn> events;
  const std::size_t count = backend_->wait(events, timeout_ms);
  std::size_t completed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto& registration = *static_cast<IoRegistration*>(events[i].token);
    std::lock_guard lock(registration.lock);
    if (events[i].read_closed) registration.read_closed.store(true, std::memory_order_release);
    if (events[i].write_closed) registration.write_closed.store(true, std::memory_order_release);
    if (events[i].readable) completed += deliver(registration, IoDirection::read);
    if (events[i].writable) completed += deliver(registration, IoDirection::write);
  }
  return completed;
}

}  // namespace spindle::detail
