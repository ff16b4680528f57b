// Broadcast::forward: a room's messages to one socket (broadcast.hpp).

#include "spindle/ws/broadcast.hpp"

namespace spindle::ws {

Task<void> Broadcast::forward(broadcast::Receiver<PreparedMessage> messages, Sender socket, Lagging lagging) {
  for (;;) {
    Result<PreparedMessage, broadcast::RecvError> next = co_await messages.recv();
    if (!next) {
      if (next.error().kind == broadcast::RecvError::Kind::closed) co_return;
      if (lagging == Lagging::skip) continue;
      auto closing = socket.close(close_code::policy_violation, "too slow for the broadcast");
      (void)co_await std::move(closing);
      co_return;
    }
    auto sending = socket.send(*next);
    Result<void, Error> sent = co_await std::move(sending);
    if (!sent) co_return;
  }
}

}  // namespace spindle::ws
