#pragma once
// WebSocket connections (RFC 6455), the same for a server's socket (WebSocketUpgrade, ws/upgrade.hpp)
// and a client's (ws::connect, ws/client.hpp). docs/websocket.md explains the design; in short:
//
// - Memory: a socket waiting for a message holds no read buffer. Reads go into a buffer of the thread's,
//   the decoder keeps at most a partial frame header, and only a message being assembled owns memory.
//   A zlib stream (permessage-deflate) exists only while a message is being compressed or decompressed,
//   unless context takeover was configured.
// - Sending never waits for the socket when it has room: the frame is written at once, from the sending
//   task. What the socket cannot take goes into a bounded queue that a short-lived task flushes; when the
//   queue is full, send() waits (SlowConsumer::wait) or the socket is closed with 1008 (SlowConsumer::close).
// - Control frames are answered by the library: a Ping gets its Pong, a Close its Close; protocol errors
//   get the right Close code (1002, 1007, 1009) and end the connection.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/net/tcp_stream.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/ws/deflate.hpp"
#include "spindle/ws/frame.hpp"

namespace spindle::ws {

enum class MessageKind : std::uint8_t { text, binary, ping, pong, close };

/// A WebSocket message: what recv() returns and send() takes.
///
///   auto message = co_await socket.recv();
///   if (message && message->is_text()) std::string_view text = message->data();
///   auto sending = socket.send(Message::text("hello"));   // GCC 12: a named local, then co_await it
///   co_await std::move(sending);
class Message {
 public:
  static Message text(std::string text) { return Message{MessageKind::text, std::move(text)}; }
  static Message binary(std::string bytes) { return Message{MessageKind::binary, std::move(bytes)}; }
  static Message ping(std::string payload = {}) { return Message{MessageKind::ping, std::move(payload)}; }
  static Message pong(std::string payload = {}) { return Message{MessageKind::pong, std::move(payload)}; }
  /// A Close frame; `reason` is at most 123 bytes of UTF-8 (longer is cut at a character boundary).
  static Message close(std::uint16_t code = close_code::normal, std::string reason = {}) {
    Message message{MessageKind::close, std::move(reason)};
    message.code_ = code;
    return message;
  }

  MessageKind kind() const noexcept { return kind_; }
  bool is_text() const noexcept { return kind_ == MessageKind::text; }
  bool is_binary() const noexcept { return kind_ == MessageKind::binary; }
  bool is_ping() const noexcept { return kind_ == MessageKind::ping; }
  bool is_pong() const noexcept { return kind_ == MessageKind::pong; }
  bool is_close() const noexcept { return kind_ == MessageKind::close; }

  /// The text (valid UTF-8), the bytes, the Ping or Pong payload, or a Close frame's reason.
  std::string_view data() const noexcept { return data_; }
  /// The payload, moved out.
  std::string take() && noexcept { return std::move(data_); }
  /// A Close frame's code: close_code::no_status (1005) when it had none.
  std::uint16_t code() const noexcept { return code_; }

 private:
  Message(MessageKind kind, std::string data) noexcept : data_(std::move(data)), kind_(kind) {}
  std::string data_;
  MessageKind kind_;
  std::uint16_t code_ = close_code::no_status;
};

/// Why recv(), send() or close() did not succeed. Once a socket has closed or failed, every later call
/// returns the same error.
struct Error {
  enum class Kind : std::uint8_t {
    closed,      ///< the close handshake happened (either side began it): the normal end
    protocol,    ///< the peer broke the protocol; `code` (1002, 1007, 1009...) was sent to it
    io,          ///< the TCP connection failed, or ended without a Close frame (code 1006)
    timeout,     ///< no Pong to a keep-alive Ping, or a write made no progress (code 1011)
    going_away,  ///< the server is shutting down; the peer was sent 1001
    too_slow,    ///< the send queue overflowed under SlowConsumer::close; the peer was sent 1008
  };
  Kind kind = Kind::closed;
  std::uint16_t code = close_code::abnormal;  ///< the Close code sent or received
  std::string reason;
};

/// What send() does when the peer reads slower than the application sends and the send queue is full.
enum class SlowConsumer : std::uint8_t {
  wait,   ///< send() waits until the queue has room: the sender slows down to the peer's pace
  close,  ///< the socket is closed with 1008 and send() fails with too_slow: the peer is dropped
};

/// Limits and behaviour of a socket. The defaults suit a public server.
///
///   ws::Config config;
///   config.max_message_size = 64 * 1024;
///   config.ping_interval = std::chrono::seconds(20);   // Ping after 20 s of silence
///   config.compression = ws::DeflateConfig{};          // offer / accept permessage-deflate
struct Config {
  std::size_t max_message_size = 1 << 20;  ///< 1009 beyond (after decompression)
  std::size_t max_frame_size = 1 << 20;    ///< 1009 beyond, at the frame's header
  std::size_t max_send_queue = 1 << 20;    ///< bytes waiting for the socket beyond what the kernel took
  SlowConsumer slow_consumer = SlowConsumer::wait;
  /// Keep-alive: after this long without a frame from the peer, recv() sends a Ping; zero turns it off.
  /// The Ping goes out only while some task waits in recv(), which is how a socket is normally used.
  Duration ping_interval{0};
  Duration ping_timeout = std::chrono::seconds(20);   ///< no frame at all after the Ping: fail with 1011
  Duration close_timeout = std::chrono::seconds(5);   ///< for the peer's answer to our Close
  Duration write_timeout = std::chrono::seconds(30);  ///< a queued frame that makes no progress: fail
  std::optional<DeflateConfig> compression;           ///< permessage-deflate when set (off by default)
};

/// A message encoded once, to send to many server sockets (a chat room, live events): every socket writes
/// the same shared bytes. With permessage-deflate, the compressed frame is also made once per window size
/// and shared by every socket that negotiated no server context takeover. A socket that cannot use the
/// shared bytes (a client's, which masks every frame; one with server context takeover) sends its own
/// copy: compressed by send(), as it is from a room it joined. Cheap to copy.
///
///   ws::PreparedMessage update{ws::Message::text(R"({"price":42})")};
///   for (ws::Sender& sender : watchers) { auto sending = sender.send(update); co_await std::move(sending); }
class PreparedMessage {
 public:
  /// A text or binary message (another kind is std::invalid_argument).
  explicit PreparedMessage(Message message);
  MessageKind kind() const noexcept;
  std::string_view data() const noexcept;

  struct State;  // the shared frames (websocket.cpp)
  const std::shared_ptr<State>& state() const noexcept { return state_; }

 private:
  std::shared_ptr<State> state_;
};

class WebSocket;

namespace detail {
class Core;
std::shared_ptr<Core> core_of(const WebSocket& socket) noexcept;
enum class Role : std::uint8_t { server, client };

/// What the handshake settled, shared by the socket and (on a server) its upgrade.
struct Handshake {
  Role role = Role::server;
  std::shared_ptr<const Config> config;
  std::optional<DeflateParams> deflate;  ///< agreed permessage-deflate parameters
  std::string protocol;                  ///< the subprotocol agreed on ("" for none)
  const std::atomic<bool>* draining = nullptr;
};
}  // namespace detail

class Sender;
class Receiver;
class Broadcast;

/// What a socket that joined a Broadcast does when it cannot keep up with it (its send queue is full, or
/// it fell more than the broadcast's capacity behind).
enum class Lagging : std::uint8_t {
  close,  ///< it is closed with 1008: it cannot have the whole stream
  skip,   ///< it misses the messages it had no room for
};

/// A WebSocket connection. Move-only; split() it to receive in one task and send from others. A client's
/// socket ends with close() (the close handshake); destroying it without that just drops the TCP
/// connection (its peer sees 1006). A server's socket is closed properly when its handler returns.
///
///   Task<void> echo(ws::WebSocket socket) {
///     for (;;) {
///       auto message = co_await socket.recv();
///       if (!message || message->is_close()) co_return;      // closed, or the peer said goodbye
///       if (!message->is_text() && !message->is_binary()) continue;   // Ping and Pong are answered already
///       auto sending = socket.send(std::move(*message));
///       auto sent = co_await std::move(sending);
///       if (!sent) co_return;
///     }
///   }
class WebSocket {
 public:
  WebSocket() noexcept = default;
  WebSocket(TcpStream stream, std::string leftover, std::shared_ptr<const detail::Handshake> handshake);
  WebSocket(WebSocket&&) noexcept = default;
  WebSocket& operator=(WebSocket&&) noexcept = default;
  WebSocket(const WebSocket&) = delete;
  WebSocket& operator=(const WebSocket&) = delete;
  ~WebSocket();

  /// The next message: Text, Binary, Ping, Pong (for information: the library answers Pings), or the
  /// peer's Close, after which every call is Error::Kind::closed. One task at a time may receive.
  Task<Result<Message, Error>> recv();
  /// Sends a message (a Close too: then nothing more can be sent). Returns once the frame is written
  /// or queued; waits only when the send queue is full and the policy is SlowConsumer::wait.
  Task<Result<void, Error>> send(Message message);
  Task<Result<void, Error>> send(PreparedMessage message);
  /// The close handshake: sends Close(code, reason), waits up to close_timeout for the peer's Close
  /// (dropping messages that still arrive), lets the send queue drain (up to close_timeout again), then
  /// closes the connection. A server socket closes by itself when its handler returns; if a split
  /// Receiver is still held by another task then, that task sees the connection end.
  Task<Result<void, Error>> close(std::uint16_t code = close_code::normal, std::string reason = {});

  /// The sending and the receiving half, for different tasks.
  ///
  ///   auto [sender, receiver] = std::move(socket).split();
  std::pair<Sender, Receiver> split() &&;

  /// Every message sent to `room` from now on is also sent to this socket, by the task receiving on it:
  /// while it waits in recv(), it waits for the room too. No task of its own (a forward_to() task costs
  /// some 400 bytes per socket), but the room's messages go out only while some task is in recv(), which
  /// is how a socket is normally used. A socket joins one room at most (joining another leaves the first).
  ///
  ///   socket.join(room);
  ///   for (;;) {
  ///     auto message = co_await socket.recv();        // room messages go out meanwhile
  ///     if (!message || message->is_close()) break;
  ///     if (message->is_text()) room.send(std::move(*message));
  ///   }
  void join(const Broadcast& room, Lagging lagging = Lagging::close);

  /// The subprotocol agreed in the handshake ("" for none).
  std::string_view protocol() const noexcept;
  /// Whether permessage-deflate was agreed.
  bool compressed() const noexcept;
  /// Bytes waiting in the send queue.
  std::size_t queued_bytes() const noexcept;
  bool valid() const noexcept { return core_ != nullptr; }

 private:
  friend std::shared_ptr<detail::Core> detail::core_of(const WebSocket& socket) noexcept;
  explicit WebSocket(std::shared_ptr<detail::Core> core) noexcept : core_(std::move(core)) {}
  std::shared_ptr<detail::Core> core_;
};

/// The sending half of a split WebSocket. Copyable: several tasks may send; frames never interleave.
class Sender {
 public:
  Task<Result<void, Error>> send(Message message);
  Task<Result<void, Error>> send(PreparedMessage message);
  /// Sends Close(code, reason); the receiving half then sees the peer's answer.
  Task<Result<void, Error>> close(std::uint16_t code = close_code::normal, std::string reason = {});
  std::size_t queued_bytes() const noexcept;

 private:
  friend class WebSocket;
  explicit Sender(std::shared_ptr<detail::Core> core) noexcept : core_(std::move(core)) {}
  std::shared_ptr<detail::Core> core_;
};

/// The receiving half of a split WebSocket. Move-only.
class Receiver {
 public:
  Receiver(Receiver&&) noexcept = default;
  Receiver& operator=(Receiver&& other) noexcept;
  ~Receiver();
  Task<Result<Message, Error>> recv();
  /// As WebSocket::join.
  void join(const Broadcast& room, Lagging lagging = Lagging::close);

 private:
  friend class WebSocket;
  explicit Receiver(std::shared_ptr<detail::Core> core) noexcept : core_(std::move(core)) {}
  std::shared_ptr<detail::Core> core_;
};

namespace detail {
/// The end of a server socket's life, when its handler has returned: the close handshake if nobody did
/// it (with `code`), the send queue flushed, the connection shut down; each wait bounded by
/// close_timeout.
Task<void> finish(std::shared_ptr<Core> core, std::uint16_t code);
}  // namespace detail

}  // namespace spindle::ws
