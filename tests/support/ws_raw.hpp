#pragma once
// A blocking WebSocket peer written by hand on a raw socket, for the tests that must send what no correct
// client would (unmasked frames, bad UTF-8, oversize messages) or read exactly what the server wrote.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "spindle/ws/frame.hpp"
#include "support/http_harness.hpp"

namespace spindle_test {

/// One frame as it arrived from the server.
struct RawFrame {
  spindle::ws::Opcode opcode;
  bool fin;
  bool rsv1;
  std::string payload;
  /// A Close frame's code (1005 when it had none).
  std::uint16_t close_code() const {
    if (payload.size() < 2) return 1005;
    return static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                      static_cast<unsigned char>(payload[1]));
  }
};

/// A client frame: masked (unless `masked` is false, to break the rules), FIN unless `fin` is false.
inline std::string client_frame(spindle::ws::Opcode opcode, std::string_view payload, bool fin = true,
                                bool masked = true, bool rsv1 = false) {
  char header[spindle::ws::detail::kMaxFrameHeader];
  const std::uint32_t mask = 0x5A3C9612;
  const std::size_t size =
      spindle::ws::detail::encode_frame_header(header, opcode, fin, rsv1, payload.size(), masked, mask);
  std::string body{payload};
  if (masked) spindle::ws::detail::apply_mask(body, mask, 0);
  return std::string{header, size} + body;
}

/// A raw connection that did the WebSocket handshake on `path`.
class RawWebSocket {
 public:
  RawWebSocket(int port, std::string_view path, std::string_view extra_headers = "") : connection_(port) {
    connection_.send("GET " + std::string{path} +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
                     std::string{extra_headers} + "\r\n");
    std::optional<RawResponse> response = connection_.read_response();
    if (!response || response->status != 101) throw std::runtime_error("the handshake failed");
    buffer_ = connection_.pending();
  }

  void send(std::string_view bytes) { connection_.send(bytes); }
  void send_frame(spindle::ws::Opcode opcode, std::string_view payload, bool fin = true) {
    send(client_frame(opcode, payload, fin));
  }

  /// The next frame from the server; nullopt if the connection closed or went quiet for the timeout.
  std::optional<RawFrame> read_frame() {
    spindle::ws::detail::FrameDecoder decoder{
        {.require_masked = false, .allow_rsv1 = true, .max_frame_size = 1ull << 40}};
    RawFrame frame{};
    for (;;) {
      std::span<char> input{buffer_};
      bool done = false;
      std::size_t used = 0;
      while (!done) {
        const auto step = decoder.next(input.subspan(used));
        used += step.consumed;
        using Event = spindle::ws::detail::FrameDecoder::Event;
        if (step.event == Event::need_more) break;
        if (step.event == Event::error) throw std::runtime_error("the server sent an invalid frame");
        if (step.event == Event::header) {
          frame.opcode = decoder.header().opcode;
          frame.fin = decoder.header().fin;
          frame.rsv1 = decoder.header().rsv1;
        }
        if (step.event == Event::payload) frame.payload.append(step.payload.data(), step.payload.size());
        if (step.event == Event::frame_end) done = true;
      }
      buffer_.erase(0, used);
      if (done) return frame;
      char chunk[65536];
      const ssize_t n = ::recv(connection_.fd(), chunk, sizeof chunk, 0);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// The next frame that is not a Ping or Pong.
  std::optional<RawFrame> read_data_or_close() {
    for (;;) {
      std::optional<RawFrame> frame = read_frame();
      if (!frame || (frame->opcode != spindle::ws::Opcode::ping && frame->opcode != spindle::ws::Opcode::pong))
        return frame;
    }
  }

  /// Whether the server closed the TCP connection (after whatever frames it still sent).
  bool closed_by_server() { return connection_.closed_by_server(); }
  RawConnection& connection() noexcept { return connection_; }

 private:
  RawConnection connection_;
  std::string buffer_;
};

/// Pings and waits for the Pong. Only a server task that receives answers a Ping, so once this returns the
/// socket's task is running: a socket that joins a room before its first recv() has joined it. (The 101
/// alone says nothing: the task starts after it is written.)
inline void await_receiving(RawWebSocket& socket) {
  socket.send_frame(spindle::ws::Opcode::ping, "receiving?");
  for (;;) {
    const std::optional<RawFrame> frame = socket.read_frame();
    ASSERT_TRUE(frame) << "no Pong within the receive timeout";
    ASSERT_NE(frame->opcode, spindle::ws::Opcode::close) << frame->payload;
    if (frame->opcode == spindle::ws::Opcode::pong) {
      EXPECT_EQ(frame->payload, "receiving?");
      return;
    }
  }
}

}  // namespace spindle_test
