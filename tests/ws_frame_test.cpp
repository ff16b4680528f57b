// The WebSocket frame codec: RFC 6455's own examples, every length encoding, input in any pieces, and
// each frame-level protocol error with its close code.

#include "spindle/ws/frame.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using spindle::ws::Opcode;
using spindle::ws::detail::apply_mask;
using spindle::ws::detail::DecoderRules;
using spindle::ws::detail::encode_frame_header;
using spindle::ws::detail::FrameDecoder;
using spindle::ws::detail::FrameHeader;
using Event = FrameDecoder::Event;

struct Decoded {
  std::vector<FrameHeader> headers;
  std::vector<std::string> payloads;  // one per frame
  int frames_ended = 0;
  std::uint16_t error = 0;
};

/// Feeds `wire` in pieces of `piece` bytes (copied, as a socket would deliver them).
Decoded decode(std::string wire, DecoderRules rules, std::size_t piece = SIZE_MAX) {
  FrameDecoder decoder{rules};
  Decoded out;
  for (std::size_t at = 0; at < wire.size() && out.error == 0;) {
    std::string chunk = wire.substr(at, piece);
    at += chunk.size();
    std::span<char> input{chunk};
    for (;;) {
      const FrameDecoder::Step step = decoder.next(input);
      input = input.subspan(step.consumed);
      if (step.event == Event::need_more) break;
      if (step.event == Event::error) {
        out.error = step.close_code;
        break;
      }
      if (step.event == Event::header) {
        out.headers.push_back(decoder.header());
        out.payloads.emplace_back();
      }
      if (step.event == Event::payload) out.payloads.back().append(step.payload.data(), step.payload.size());
      if (step.event == Event::frame_end) ++out.frames_ended;
    }
  }
  return out;
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

constexpr DecoderRules kFromClient{.require_masked = true, .allow_rsv1 = false, .max_frame_size = 1 << 20};
constexpr DecoderRules kFromServer{.require_masked = false, .allow_rsv1 = false, .max_frame_size = 1 << 20};

TEST(WsFrame, RfcExamplesDecode) {
  // RFC 6455 5.7: a single-frame unmasked text message...
  Decoded d = decode(bytes({0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), kFromServer);
  ASSERT_EQ(d.error, 0);
  ASSERT_EQ(d.headers.size(), 1u);
  EXPECT_TRUE(d.headers[0].fin);
  EXPECT_EQ(d.headers[0].opcode, Opcode::text);
  EXPECT_EQ(d.payloads[0], "Hello");
  EXPECT_EQ(d.frames_ended, 1);
  // ...the same masked...
  d = decode(bytes({0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}), kFromClient);
  ASSERT_EQ(d.error, 0);
  EXPECT_EQ(d.payloads[0], "Hello");
  // ...fragmented in two...
  d = decode(bytes({0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f}), kFromServer);
  ASSERT_EQ(d.headers.size(), 2u);
  EXPECT_FALSE(d.headers[0].fin);
  EXPECT_EQ(d.headers[1].opcode, Opcode::continuation);
  EXPECT_EQ(d.payloads[0] + d.payloads[1], "Hello");
  // ...and a ping.
  d = decode(bytes({0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}), kFromServer);
  EXPECT_EQ(d.headers[0].opcode, Opcode::ping);
  EXPECT_EQ(d.payloads[0], "Hello");
}

TEST(WsFrame, RfcLengthEncodings) {
  // 256 bytes: 16-bit length; 65536 bytes: 64-bit length (RFC 6455 5.7).
  std::string wire = bytes({0x82, 0x7E, 0x01, 0x00}) + std::string(256, 'x');
  Decoded d = decode(wire, kFromServer);
  EXPECT_EQ(d.headers[0].length, 256u);
  EXPECT_EQ(d.payloads[0].size(), 256u);
  wire = bytes({0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0}) + std::string(65536, 'y');
  d = decode(wire, kFromServer);
  EXPECT_EQ(d.headers[0].length, 65536u);
  EXPECT_EQ(d.payloads[0], std::string(65536, 'y'));
}

TEST(WsFrame, EncodeDecodeRoundTripInAnyPieces) {
  for (std::size_t length : {0u, 1u, 125u, 126u, 127u, 1000u, 65535u, 65536u, 70000u}) {
    for (bool masked : {false, true}) {
      std::string payload(length, '\0');
      for (std::size_t i = 0; i < length; ++i) payload[i] = static_cast<char>(i * 7 + 3);
      char header[spindle::ws::detail::kMaxFrameHeader];
      const std::uint32_t mask = 0xA1B2C3D4;
      const std::size_t size = encode_frame_header(header, Opcode::binary, true, false, length, masked, mask);
      std::string body = payload;
      if (masked) apply_mask(body, mask, 0);
      const std::string wire = std::string{header, size} + body;
      const DecoderRules rules = masked ? kFromClient : kFromServer;
      for (std::size_t piece : {SIZE_MAX, std::size_t{1}, std::size_t{3}, std::size_t{4096}}) {
        if (piece == 1 && length > 1000) continue;  // byte at a time is covered by the shorter ones
        const Decoded d = decode(wire, rules, piece);
        ASSERT_EQ(d.error, 0) << length << " masked=" << masked << " piece=" << piece;
        ASSERT_EQ(d.headers.size(), 1u);
        EXPECT_EQ(d.headers[0].length, length);
        EXPECT_EQ(d.payloads[0], payload) << length << " masked=" << masked << " piece=" << piece;
        EXPECT_EQ(d.frames_ended, 1);
      }
    }
  }
}

TEST(WsFrame, MaskingAtAnyOffsetMatchesByteAtATime) {
  const std::uint32_t mask = 0x11223344;
  unsigned char key[4];
  std::memcpy(key, &mask, 4);
  std::string data(103, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i);
  for (std::size_t offset = 0; offset < 9; ++offset) {
    std::string fast = data;
    apply_mask(fast, mask, offset);
    for (std::size_t i = 0; i < data.size(); ++i)
      ASSERT_EQ(static_cast<unsigned char>(fast[i]), static_cast<unsigned char>(data[i] ^ key[(offset + i) % 4]))
          << "offset " << offset << " byte " << i;
  }
}

TEST(WsFrame, ProtocolErrorsHaveTheirCloseCodes) {
  struct Case {
    std::string wire;
    DecoderRules rules;
    std::uint16_t code;
    const char* what;
  };
  DecoderRules small = kFromServer;
  small.max_frame_size = 100;
  DecoderRules deflate = kFromServer;
  deflate.allow_rsv1 = true;
  const std::vector<Case> cases = {
      {bytes({0xA1, 0x00}), kFromServer, 1002, "RSV2"},
      {bytes({0x91, 0x00}), kFromServer, 1002, "RSV3"},
      {bytes({0xC1, 0x00}), kFromServer, 1002, "RSV1 without an extension"},
      {bytes({0x83, 0x00}), kFromServer, 1002, "reserved data opcode 3"},
      {bytes({0x87, 0x00}), kFromServer, 1002, "reserved data opcode 7"},
      {bytes({0x8B, 0x00}), kFromServer, 1002, "reserved control opcode 11"},
      {bytes({0x8F, 0x00}), kFromServer, 1002, "reserved control opcode 15"},
      {bytes({0x09, 0x00}), kFromServer, 1002, "fragmented ping"},
      {bytes({0x89, 0x7E, 0x00, 0x7E}) + std::string(126, 'p'), kFromServer, 1002, "ping of 126 bytes"},
      {bytes({0xC9, 0x00}), deflate, 1002, "RSV1 on a control frame"},
      {bytes({0x81, 0x00}), kFromClient, 1002, "unmasked frame from a client"},
      {bytes({0x81, 0x80, 1, 2, 3, 4}), kFromServer, 1002, "masked frame from a server"},
      {bytes({0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1}), kFromServer, 1002, "64-bit length with the top bit"},
      {bytes({0x82, 0x65}) + std::string(101, 'z'), small, 1009, "frame over the limit"},
  };
  for (const Case& c : cases) {
    const Decoded d = decode(c.wire, c.rules);
    EXPECT_EQ(d.error, c.code) << c.what;
    const Decoded bytewise = decode(c.wire, c.rules, 1);
    EXPECT_EQ(bytewise.error, c.code) << c.what << " (byte at a time)";
  }
  // RSV1 is the compression bit where permessage-deflate was agreed.
  EXPECT_EQ(decode(bytes({0xC1, 0x00}), deflate).error, 0);
}

TEST(WsFrame, ErrorIsSticky) {
  FrameDecoder decoder{kFromServer};
  std::string wire = bytes({0xA1, 0x00, 0x81, 0x00});
  FrameDecoder::Step step = decoder.next(std::span{wire});
  EXPECT_EQ(step.event, Event::error);
  step = decoder.next(std::span{wire}.subspan(2));
  EXPECT_EQ(step.event, Event::error);
  EXPECT_EQ(step.close_code, 1002);
  EXPECT_FALSE(decoder.error().empty());
}

TEST(WsFrame, SeveralFramesInOneBuffer) {
  const std::string wire = bytes({0x89, 0x00, 0x81, 0x02, 'h', 'i', 0x8A, 0x01, 'x', 0x82, 0x00});
  const Decoded d = decode(wire, kFromServer);
  ASSERT_EQ(d.headers.size(), 4u);
  EXPECT_EQ(d.headers[0].opcode, Opcode::ping);
  EXPECT_EQ(d.payloads[1], "hi");
  EXPECT_EQ(d.headers[2].opcode, Opcode::pong);
  EXPECT_EQ(d.payloads[2], "x");
  EXPECT_EQ(d.headers[3].length, 0u);
  EXPECT_EQ(d.frames_ended, 4);
}

}  // namespace
