#pragma once
// Body: what a response (or a client request) carries: nothing, bytes, or a stream of chunks.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "spindle/runtime/task.hpp"
#include "spindle/sync/mpsc.hpp"

namespace spindle::http {

class BodySender;

/// A message body. Bytes are sent with Content-Length; a stream is sent chunked (HTTP/1.1) as its chunks
/// arrive, so a handler can answer before it has the whole body (large exports, progress, events).
///
///   Response r{Status::ok, {}, Body{"hello"}};
///   auto [tx, body] = Body::channel();            // streaming: a producer task sends the chunks
///   spawn([](BodySender tx) -> Task<void> { co_await tx.send("part 1\n"); }(std::move(tx))).detach();
///   co_return Response{Status::ok, {}, std::move(body)};   // ends when every sender is gone
class Body {
 public:
  Body() noexcept = default;
  Body(std::string bytes) noexcept : content_(std::move(bytes)) {}  // NOLINT: implicit by design
  Body(std::string_view bytes) : content_(std::string{bytes}) {}    // NOLINT: implicit by design
  Body(const char* bytes) : content_(std::string{bytes}) {}         // NOLINT: implicit by design

  /// A streamed body and the sender that feeds it; at most `capacity` chunks wait to be written, so a
  /// fast producer waits for a slow client instead of growing memory.
  static std::pair<BodySender, Body> channel(std::size_t capacity = 16);

  bool is_empty() const noexcept { return std::holds_alternative<std::monostate>(content_); }
  bool is_stream() const noexcept { return std::holds_alternative<StreamBox>(content_); }
  /// The bytes of a non-stream body ("" for an empty one).
  std::string_view bytes() const noexcept {
    const auto* s = std::get_if<std::string>(&content_);
    return s != nullptr ? std::string_view{*s} : std::string_view{};
  }
  /// The size when known up front (not for a stream).
  std::optional<std::size_t> size() const noexcept {
    if (is_stream()) return std::nullopt;
    return bytes().size();
  }
  /// The next chunk of a stream body; nullopt at its end (or for a non-stream body).
  Task<std::optional<std::string>> next_chunk();

  /// For a stream: next_chunk() gives `bytes` whenever no chunk has come for `interval`, and keeps
  /// waiting after that. Server-sent events use it for their keep-alive comments: they keep proxies from
  /// closing an idle stream, and writing them is how the server notices a client that left (the write
  /// fails, the body is dropped, and the producer's next send returns false) without a task or a timer
  /// of its own per stream. A zero interval turns it off; a body that is not a stream ignores it.
  ///
  ///   body.keep_alive(std::chrono::seconds(15), ":\n\n");
  void keep_alive(std::chrono::nanoseconds interval, std::string bytes);
  /// A stream with keep-alive is one meant to stay open (server-sent events): a graceful shutdown ends
  /// it cleanly after the chunk being written, where other streams get the grace period to finish.
  bool keeps_alive() const noexcept {
    const auto* stream = std::get_if<StreamBox>(&content_);
    return stream != nullptr && (*stream)->keep_alive_interval > std::chrono::nanoseconds::zero();
  }

 private:
  /// A streamed body's state: the channel that feeds it, and its keep-alive.
  struct Stream {
    mpsc::Receiver<std::string> receiver;
    std::chrono::nanoseconds keep_alive_interval{0};
    std::string keep_alive_bytes;
  };
  // Boxed: a Receiver cannot be move-assigned, and a Body must be; and a Body stays small.
  using StreamBox = std::unique_ptr<Stream>;
  explicit Body(StreamBox stream) noexcept : content_(std::move(stream)) {}
  std::variant<std::monostate, std::string, StreamBox> content_;
};

/// Feeds a streamed Body; the body ends when the last sender is destroyed.
class BodySender {
 public:
  /// Waits while the body's queue is full; false once the receiver is gone (the client left).
  Task<bool> send(std::string chunk) const;
  bool is_closed() const { return sender_.is_closed(); }

 private:
  friend class Body;
  explicit BodySender(mpsc::Sender<std::string> sender) noexcept : sender_(std::move(sender)) {}
  mpsc::Sender<std::string> sender_;
};

}  // namespace spindle::http
