#pragma once
// Fan-out to many WebSockets (chat rooms, live events), built on the runtime's broadcast channel
// (sync/broadcast.hpp). A message is encoded once (PreparedMessage): every subscriber writes the same
// frame bytes, and with permessage-deflate the compressed frame is made once too. A subscriber that falls
// more than `capacity` messages behind is closed with 1008 by default (Lagging), so one slow client never
// holds up the others or grows memory: a socket that joined falls behind when its send queue is full; a
// forward_to task, when its sends wait (SlowConsumer::wait) while the room moves on.

#include <chrono>
#include <cstddef>

#include "spindle/http/sse.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/sync/broadcast.hpp"
#include "spindle/ws/websocket.hpp"

namespace spindle::ws {

/// A room: every message sent reaches every socket that joined it (WebSocket::join: no task per socket)
/// or is forwarded to by forward_to() (a task per socket, for a socket nobody receives on).
///
///   ws::Broadcast room;
///   router.route("/ws", get([&room](ws::WebSocketUpgrade upgrade) {
///     return upgrade.on_upgrade([&room](ws::WebSocket socket) -> Task<void> {
///       socket.join(room);                                   // the room's messages go out on it
///       for (;;) {
///         auto message = co_await socket.recv();
///         if (!message || message->is_close()) break;
///         if (message->is_text()) room.send(std::move(*message));  // to everyone, this socket too
///       }
///     });
///   }));
class Broadcast {
 public:
  /// `capacity`: messages kept for subscribers that are behind.
  explicit Broadcast(std::size_t capacity = 256) : sender_(broadcast::channel<PreparedMessage>(capacity).first) {}

  /// Encodes once and sends to every subscriber; how many there are.
  std::size_t send(PreparedMessage message) {
    Result<std::size_t, PreparedMessage> sent = sender_.send(std::move(message));
    return sent ? *sent : 0;
  }
  /// A text or binary message (another kind is std::invalid_argument).
  std::size_t send(Message message) { return send(PreparedMessage{std::move(message)}); }

  /// The messages sent from now on, for a consumer of one's own (an SSE feed, say).
  broadcast::Receiver<PreparedMessage> subscribe() const { return sender_.subscribe(); }

  /// The room as server-sent events: each text message from now on is one event's data, until the client
  /// leaves (noticed within about `keep_alive` even when the room is quiet). Binary messages are skipped.
  /// A stream that falls more than the room's capacity behind ends, as a lagging socket is closed: the
  /// client's EventSource reconnects and can read the state afresh instead of missing changes silently.
  /// A comment goes out after `keep_alive` without a message, so proxies keep the stream open.
  ///
  ///   router.route("/events", get([&room] { return room.event_stream(); }));
  http::Sse event_stream(std::chrono::nanoseconds keep_alive = std::chrono::seconds(15)) const;

  /// A task that sends every message from now on to `socket`, until its socket fails or closes. The
  /// subscription starts at the call, not when the task first runs: nothing sent in between is missed.
  Task<void> forward_to(Sender socket, Lagging lagging = Lagging::close) const {
    return forward(subscribe(), std::move(socket), lagging);
  }

 private:
  static Task<void> forward(broadcast::Receiver<PreparedMessage> messages, Sender socket, Lagging lagging);

  broadcast::Sender<PreparedMessage> sender_;
};

}  // namespace spindle::ws
