// Broadcast::forward: a room's messages to one socket; Broadcast::event_stream: to one SSE client.

#include "spindle/ws/broadcast.hpp"

#include "spindle/runtime/spawn.hpp"

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

namespace {

Task<void> feed_events(broadcast::Receiver<PreparedMessage> messages, http::SseSender events) {
  for (;;) {
    Result<PreparedMessage, broadcast::RecvError> next = co_await messages.recv();
    if (!next) {
      if (next.error().kind == broadcast::RecvError::Kind::closed) co_return;
      continue;  // lagged: on from the oldest message kept
    }
    if (next->kind() != MessageKind::text) continue;
    auto sending = events.send_data(next->data());
    const bool sent = co_await std::move(sending);
    if (!sent) co_return;  // the client left
  }
}

}  // namespace

http::Sse Broadcast::event_stream(std::chrono::nanoseconds keep_alive) const {
  auto [events, sse] = http::Sse::channel();
  spawn(feed_events(subscribe(), std::move(events))).detach();
  return sse.keep_alive(keep_alive);
}

}  // namespace spindle::ws
