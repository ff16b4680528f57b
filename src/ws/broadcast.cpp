// Broadcast::forward: a room's messages to one socket; Broadcast::event_stream: to one SSE client.

#include "spindle/ws/broadcast.hpp"

#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"

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

/// Feeds the stream until the client leaves, the room closes, or the stream lags. A wait for the next
/// message gives up after `check_every` to look whether the client is still there (the stream's
/// keep-alive writes find out), so a departed client's task ends on a quiet room too.
Task<void> feed_events(broadcast::Receiver<PreparedMessage> messages, http::SseSender events,
                       std::chrono::nanoseconds check_every) {
  for (;;) {
    Result<Result<PreparedMessage, broadcast::RecvError>, TimedOut> next =
        co_await timeout(check_every, messages.recv());
    if (!next) {
      if (events.is_closed()) co_return;
      continue;
    }
    // Closed: the room is gone. Lagged: messages were lost, so the stream ends and the client, which
    // reconnects by itself (EventSource), can read the state afresh rather than miss changes silently.
    if (!*next) co_return;
    if ((*next)->kind() != MessageKind::text) continue;
    auto sending = events.send_data((*next)->data());
    const bool sent = co_await std::move(sending);
    if (!sent) co_return;  // the client left
  }
}

}  // namespace

http::Sse Broadcast::event_stream(std::chrono::nanoseconds keep_alive) const {
  auto [events, sse] = http::Sse::channel();
  const std::chrono::nanoseconds check_every =
      keep_alive > std::chrono::nanoseconds::zero() ? keep_alive : std::chrono::nanoseconds{std::chrono::seconds(15)};
  spawn(feed_events(subscribe(), std::move(events), check_every)).detach();
  return sse.keep_alive(keep_alive);
}

}  // namespace spindle::ws
