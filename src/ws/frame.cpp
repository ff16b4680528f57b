// The WebSocket frame format: header encoding, masking, the streaming decoder (frame.hpp).

#include "spindle/ws/frame.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace spindle::ws::detail {

std::size_t encode_frame_header(char* out, Opcode opcode, bool fin, bool rsv1, std::uint64_t length, bool masked,
                                std::uint32_t mask) noexcept {
  std::size_t size = 0;
  out[size++] = static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(opcode));
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (length < 126) {
    out[size++] = static_cast<char>(mask_bit | static_cast<char>(length));
  } else if (length <= 0xFFFF) {
    out[size++] = static_cast<char>(mask_bit | 126);
    out[size++] = static_cast<char>(length >> 8);
    out[size++] = static_cast<char>(length);
  } else {
    out[size++] = static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out[size++] = static_cast<char>(length >> shift);
  }
  if (masked) {
    std::memcpy(out + size, &mask, 4);
    size += 4;
  }
  return size;
}

void fill_random(std::span<std::byte> out) {
  thread_local std::array<std::byte, 256> pool;
  thread_local std::size_t left = 0;
  for (std::size_t done = 0; done < out.size();) {
    if (left == 0) {
      std::size_t filled = 0;
      while (filled < pool.size()) {
        const ssize_t n = ::getrandom(pool.data() + filled, pool.size() - filled, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::system_error(errno, std::system_category(), "getrandom");
        filled += static_cast<std::size_t>(n);
      }
      left = pool.size();
    }
    const std::size_t n = std::min(left, out.size() - done);
    std::memcpy(out.data() + done, pool.data() + (pool.size() - left), n);
    left -= n;
    done += n;
  }
}

void apply_mask(std::span<char> data, std::uint32_t mask, std::uint64_t offset) noexcept {
  // The key as it applies from this piece's first byte: rotated by the payload offset.
  unsigned char key[4];
  std::memcpy(key, &mask, 4);
  unsigned char rotated[4];
  for (int i = 0; i < 4; ++i) rotated[i] = key[(offset + i) % 4];
  std::uint32_t key32;
  std::memcpy(&key32, rotated, 4);
  const std::uint64_t key64 = (static_cast<std::uint64_t>(key32) << 32) | key32;

  char* at = data.data();
  std::size_t left = data.size();
  for (; left >= 8; at += 8, left -= 8) {
    std::uint64_t word;
    std::memcpy(&word, at, 8);
    word ^= key64;
    std::memcpy(at, &word, 8);
  }
  for (std::size_t i = 0; i < left; ++i) at[i] = static_cast<char>(at[i] ^ rotated[i % 4]);
}

FrameDecoder::Step FrameDecoder::fail(std::uint16_t code, std::string_view why) noexcept {
  state_ = State::failed;
  error_code_ = code;
  error_ = why;
  return Step{Event::error, 0, {}, code};
}

FrameDecoder::Step FrameDecoder::next(std::span<char> input) noexcept {
  switch (state_) {
    case State::failed:
      return Step{Event::error, 0, {}, error_code_};
    case State::frame_end:
      state_ = State::header;
      have_ = 0;
      return Step{Event::frame_end, 0, {}, 0};
    case State::payload: {
      if (input.empty()) return Step{Event::need_more, 0, {}, 0};
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
      std::span<char> piece = input.first(n);
      if (header_.masked) apply_mask(piece, header_.mask, offset_);
      offset_ += n;
      remaining_ -= n;
      if (remaining_ == 0) state_ = State::frame_end;
      return Step{Event::payload, n, piece, 0};
    }
    case State::header:
      break;
  }
  // Collect the header: 2 bytes say how long the rest of it is.
  std::size_t consumed = 0;
  const auto take = [&](std::size_t want) {
    if (have_ >= want) return true;
    const std::size_t n = std::min(want - have_, input.size() - consumed);
    std::memcpy(head_ + have_, input.data() + consumed, n);
    have_ = static_cast<std::uint8_t>(have_ + n);
    consumed += n;
    return have_ == want;
  };
  if (!take(2)) return Step{Event::need_more, consumed, {}, 0};
  const auto second = static_cast<unsigned char>(head_[1]);
  const std::size_t length_bytes = (second & 0x7F) == 126 ? 2 : (second & 0x7F) == 127 ? 8 : 0;
  const std::size_t size = 2 + length_bytes + ((second & 0x80) != 0 ? 4 : 0);
  if (!take(size)) return Step{Event::need_more, consumed, {}, 0};
  Step step = parse_header();
  step.consumed = consumed;
  return step;
}

FrameDecoder::Step FrameDecoder::parse_header() noexcept {
  const auto first = static_cast<unsigned char>(head_[0]);
  const auto second = static_cast<unsigned char>(head_[1]);
  FrameHeader h;
  h.fin = (first & 0x80) != 0;
  h.rsv1 = (first & 0x40) != 0;
  const std::uint8_t opcode = first & 0x0F;
  h.masked = (second & 0x80) != 0;
  std::size_t at = 2;
  h.length = second & 0x7F;
  if (h.length == 126) {
    h.length =
        (static_cast<std::uint64_t>(static_cast<unsigned char>(head_[2])) << 8) | static_cast<unsigned char>(head_[3]);
    at = 4;
  } else if (h.length == 127) {
    h.length = 0;
    for (std::size_t i = 2; i < 10; ++i) h.length = (h.length << 8) | static_cast<unsigned char>(head_[i]);
    at = 10;
    if ((h.length >> 63) != 0) return fail(close_code::protocol_error, "64-bit payload length with its top bit set");
  }
  if (h.masked) std::memcpy(&h.mask, head_ + at, 4);

  if ((first & 0x30) != 0) return fail(close_code::protocol_error, "reserved bit RSV2 or RSV3 set");
  if (opcode > 2 && opcode < 8) return fail(close_code::protocol_error, "reserved data opcode");
  if (opcode > 10) return fail(close_code::protocol_error, "reserved control opcode");
  h.opcode = static_cast<Opcode>(opcode);
  if (is_control(h.opcode)) {
    if (!h.fin) return fail(close_code::protocol_error, "fragmented control frame");
    if (h.length > 125) return fail(close_code::protocol_error, "control frame payload over 125 bytes");
    if (h.rsv1) return fail(close_code::protocol_error, "RSV1 set on a control frame");
  } else if (h.rsv1 && !rules_.allow_rsv1) {
    return fail(close_code::protocol_error, "RSV1 set without a negotiated extension");
  }
  if (h.masked != rules_.require_masked)
    return fail(close_code::protocol_error, h.masked ? "masked frame from a server" : "unmasked frame from a client");
  if (h.length > rules_.max_frame_size) return fail(close_code::message_too_big, "frame larger than the limit");

  header_ = h;
  remaining_ = h.length;
  offset_ = 0;
  state_ = h.length == 0 ? State::frame_end : State::payload;
  return Step{Event::header, 0, {}, 0};
}

}  // namespace spindle::ws::detail
