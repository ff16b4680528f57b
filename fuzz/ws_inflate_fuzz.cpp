// libFuzzer target for permessage-deflate's MessageInflater: arbitrary bytes as two compressed messages
// (with or without context takeover between them), under a size cap. Oracles: the output never passes
// the cap; a failure is final; no zlib memory is held between messages without context takeover, and
// never more than one stream's worth; feeding the same bytes whole or in small pieces gives the same
// result (with the 15-bit window, where zlib's checks do not depend on how the input is cut); and
// whatever decodes survives a round trip through MessageDeflater.
//
// Input: byte 0 picks the window (8 + its low 3 bits), context takeover (bit 3) and the piece size (its
// high 4 bits); byte 1 where the first message ends; the rest is the two messages' payloads.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spindle/ws/deflate.hpp"

namespace {

using spindle::ws::detail::MessageDeflater;
using spindle::ws::detail::MessageInflater;
using Status = MessageInflater::Status;

// Small enough that a deflate bomb among the inputs stays cheap, large enough for many blocks.
constexpr std::size_t kLimit = 64 * 1024;
// One inflate stream: its state and a 32 KiB window, with room to spare.
constexpr std::size_t kMaxStreamMemory = 48 * 1024;

void check(bool condition) {
  if (!condition) std::abort();
}

struct Decoded {
  Status status = Status::ok;
  std::string message;
};

/// Decodes one message in pieces of `piece` bytes, checking what must hold at every step.
Decoded decode(MessageInflater& inflater, std::string_view payload, std::size_t piece, bool no_context_takeover) {
  Decoded decoded;
  while (!payload.empty() && decoded.status == Status::ok) {
    auto part = payload.substr(0, piece);
    payload.remove_prefix(part.size());
    decoded.status = inflater.inflate(part, decoded.message, kLimit);
    check(decoded.message.size() <= kLimit);
    check(inflater.memory() <= kMaxStreamMemory);
  }
  if (decoded.status == Status::ok) decoded.status = inflater.finish(decoded.message, kLimit);
  check(decoded.message.size() <= kLimit);
  if (decoded.status != Status::ok) {
    // Final: nothing more is decoded, and the stream is gone.
    check(inflater.memory() == 0);
    std::string more;
    check(inflater.inflate(std::string_view{"\x00", 1}, more, kLimit) == decoded.status);
    check(inflater.finish(more, kLimit) == decoded.status);
    check(more.empty());
  } else if (no_context_takeover) {
    check(inflater.memory() == 0);
  }
  return decoded;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int window_bits = 8 + (data[0] & 7);
  const bool no_context_takeover = (data[0] & 8) != 0;
  const std::size_t piece = 1 + (data[0] >> 4) * 3;
  const std::string_view payloads(reinterpret_cast<const char*>(data) + 2, size - 2);
  const std::size_t split = payloads.size() * data[1] / 255;
  const std::string_view messages[] = {payloads.substr(0, split), payloads.substr(split)};

  MessageInflater whole{window_bits, no_context_takeover};
  MessageInflater pieces{window_bits, no_context_takeover};
  for (auto payload : messages) {
    Decoded a = decode(whole, payload, payload.size() + 1, no_context_takeover);
    Decoded b = decode(pieces, payload, piece, no_context_takeover);
    if (window_bits == 15) {
      check(a.status == b.status);
      if (a.status == Status::ok) check(a.message == b.message);
    }
    if (a.status != Status::ok) break;

    // Whatever decoded compresses and decodes back to itself.
    MessageDeflater deflater{window_bits, true, 1, 8};
    std::string compressed;
    deflater.deflate(a.message, compressed);
    MessageInflater again{window_bits, true};
    Decoded c = decode(again, compressed, compressed.size() + 1, true);
    check(c.status == Status::ok && c.message == a.message);
  }
  return 0;
}
