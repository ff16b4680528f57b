#include "spindle/runtime/detail/reactor.hpp"

#include <array>
#include <initializer_list>
#include <utility>

namespace spindle::detail {

Reactor::Reactor(std::unique_ptr<IoBackend> backend) : backend_(std::move(backend)) {}

Reactor::~Reactor() {
  for (IoRegistration* registration = registered_; registration != nullptr;) {
    IoRegistration* next = registration->next;
    registration->reactor = nullptr;
    registration->prev = registration->next = nullptr;
    registration = next;
  }
}

void Reactor::unlink(IoRegistration& registration) noexcept {
  if (registration.prev != nullptr)
    registration.prev->next = registration.next;
  else
    registered_ = registration.next;
  if (registration.next != nullptr) registration.next->prev = registration.prev;
  registration.prev = registration.next = nullptr;
  registration.reactor = nullptr;
}

std::error_code Reactor::park(IoRegistration& registration, IoDirection direction, IoOp& op) noexcept {
  if (registration.reactor != this) {
    // A socket belongs to the runtime that first waited on it: moving it to another runtime's thread
    // would touch that reactor's list from the wrong thread. (A runtime that is gone lets it go.)
    if (registration.reactor != nullptr) return std::make_error_code(std::errc::operation_not_supported);
    if (std::error_code error = backend_->add(registration.fd, &registration)) return error;
    registration.reactor = this;
    registration.prev = nullptr;
    registration.next = registered_;
    if (registered_ != nullptr) registered_->prev = &registration;
    registered_ = &registration;
  }
  IoOp*& slot = direction == IoDirection::read ? registration.reader : registration.writer;
  if (slot != nullptr) return std::make_error_code(std::errc::device_or_resource_busy);  // two readers: a bug
  slot = &op;
  return {};
}

void Reactor::unpark(IoRegistration& registration, IoDirection direction, const IoOp& op) noexcept {
  IoOp*& slot = direction == IoDirection::read ? registration.reader : registration.writer;
  if (slot == &op) slot = nullptr;
}

void Reactor::remove(IoRegistration& registration) noexcept {
  if (registration.reactor == nullptr) return;
  registration.reactor->backend_->remove(registration.fd);
  registration.reactor->unlink(registration);
}

void Reactor::abort_parked(IoRegistration& registration, std::error_code error) noexcept {
  for (IoOp** slot : {&registration.reader, &registration.writer}) {
    IoOp* op = std::exchange(*slot, nullptr);
    if (op == nullptr) continue;
    op->abort(*op, error);
    op->waker.wake();
  }
}

namespace {
// Retries a parked operation; if it finished, unparks it and wakes its task.
std::size_t try_complete(IoOp*& slot) noexcept {
  IoOp* op = slot;
  if (op == nullptr || !op->perform(*op)) return 0;
  slot = nullptr;
  op->waker.wake();
  return 1;
}
}  // namespace

std::size_t Reactor::turn(int timeout_ms) noexcept {
  std::array<IoBackend::Event, kEventsPerTurn> events;
  const std::size_t count = backend_->wait(events, timeout_ms);
  std::size_t completed = 0;
  for (std::size_t i = 0; i < count; ++i) {
    auto& registration = *static_cast<IoRegistration*>(events[i].token);
    registration.read_closed |= events[i].read_closed;
    registration.write_closed |= events[i].write_closed;
    if (events[i].readable) {
      registration.read_ready = true;
      completed += try_complete(registration.reader);
    }
    if (events[i].writable) {
      registration.write_ready = true;
      completed += try_complete(registration.writer);
    }
  }
  return completed;
}

}  // namespace spindle::detail
