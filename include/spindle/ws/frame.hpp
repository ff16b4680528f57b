#pragma once
// The WebSocket wire format (RFC 6455 section 5): frame headers, masking, and a streaming decoder that
// never holds a payload itself. The connection (websocket.cpp) feeds it whatever the socket gave and
// gets back events: a header, pieces of payload (unmasked in place, in the caller's buffer), the end of
// the frame, or the close code for a frame that breaks the protocol. The decoder checks everything a
// single frame can get wrong; what needs the message around it (a continuation with nothing to
// continue, text that is not UTF-8) is the connection's to check.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace spindle::ws {

/// The status codes of a Close frame (RFC 6455 7.4.1; 1012 to 1014 from the IANA registry). Codes 3000
/// to 4999 are for libraries and applications.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;  ///< the server shuts down, the page closes
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;  ///< binary to a text-only endpoint, say
inline constexpr std::uint16_t no_status = 1005;         ///< never sent: a Close frame had no code
inline constexpr std::uint16_t abnormal = 1006;          ///< never sent: the TCP connection just ended
inline constexpr std::uint16_t invalid_payload = 1007;   ///< text that is not UTF-8
inline constexpr std::uint16_t policy_violation = 1008;  ///< also: a consumer too slow to keep up
inline constexpr std::uint16_t message_too_big = 1009;
inline constexpr std::uint16_t mandatory_extension = 1010;
inline constexpr std::uint16_t internal_error = 1011;  ///< also: no Pong to our keep-alive Ping
inline constexpr std::uint16_t service_restart = 1012;
inline constexpr std::uint16_t try_again_later = 1013;
}  // namespace close_code

/// Whether `code` may be sent in a Close frame (RFC 6455 7.4: 1000-1003, 1007-1014, 3000-4999).
constexpr bool is_sendable_close_code(std::uint16_t code) noexcept {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/// Frame opcodes (RFC 6455 5.2). Values 3-7 and 11-15 are reserved.
enum class Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

constexpr bool is_control(Opcode opcode) noexcept { return (static_cast<std::uint8_t>(opcode) & 0x8) != 0; }

namespace detail {

/// The largest header: 2 bytes, a 64-bit length, a 4-byte masking key.
inline constexpr std::size_t kMaxFrameHeader = 14;

struct FrameHeader {
  bool fin = false;
  bool rsv1 = false;  ///< "compressed" on the first frame of a message, with permessage-deflate
  Opcode opcode = Opcode::continuation;
  bool masked = false;
  std::uint64_t length = 0;
  std::uint32_t mask = 0;  ///< the masking key's four bytes as they were on the wire (memcpy order)
};

/// Writes a frame header into `out` (at least kMaxFrameHeader bytes); returns its size. A `mask` is
/// written when `masked` (clients mask every frame, servers none).
std::size_t encode_frame_header(char* out, Opcode opcode, bool fin, bool rsv1, std::uint64_t length, bool masked,
                                std::uint32_t mask) noexcept;

/// Unpredictable bytes from the kernel (getrandom), for masking keys and handshake nonces: RFC 6455 10.3
/// wants a key an observer of earlier frames cannot predict. A thread draws 256 bytes at a time, so a
/// key costs no syscall.
void fill_random(std::span<std::byte> out);

/// XORs `data` with the masking key, starting `offset` bytes into the frame's payload (a payload arrives
/// in pieces). Eight bytes at a time.
void apply_mask(std::span<char> data, std::uint32_t mask, std::uint64_t offset) noexcept;

/// What the decoder accepts: the other side's role decides the masking, the extensions the RSV1 bit.
struct DecoderRules {
  bool require_masked = true;              ///< a server: every client frame is masked (RFC 6455 5.1); a client: none is
  bool allow_rsv1 = false;                 ///< permessage-deflate was negotiated
  std::uint64_t max_frame_size = 1 << 20;  ///< a larger payload is 1009 at its header
};

/// Decodes frames from bytes as they arrive. Usage:
///
///   FrameDecoder decoder{{.require_masked = true}};
///   for (std::span<char> input = bytes; ;) {
///     FrameDecoder::Step step = decoder.next(input);
///     input = input.subspan(step.consumed);
///     if (step.event == FrameDecoder::Event::need_more) break;           // read more, call again
///     if (step.event == FrameDecoder::Event::header) inspect(decoder.header());
///     if (step.event == FrameDecoder::Event::payload) append(step.payload);  // unmasked already
///     if (step.event == FrameDecoder::Event::frame_end) finish_frame();
///     if (step.event == FrameDecoder::Event::error) fail(step.close_code, decoder.error());
///   }
///
/// A frame with an empty payload gives header then frame_end. Between calls the decoder keeps at most a
/// partial header (14 bytes), never payload: the caller's buffer can be reused.
class FrameDecoder {
 public:
  enum class Event : std::uint8_t { need_more, header, payload, frame_end, error };
  struct Step {
    Event event = Event::need_more;
    std::size_t consumed = 0;
    std::span<char> payload;       ///< for Event::payload: unmasked in place
    std::uint16_t close_code = 0;  ///< for Event::error: 1002 or 1009
  };

  FrameDecoder() noexcept = default;
  explicit FrameDecoder(DecoderRules rules) noexcept : rules_(rules) {}

  /// The next event from `input` (the bytes not consumed by earlier steps). After an error every call
  /// returns the error again.
  Step next(std::span<char> input) noexcept;

  const FrameHeader& header() const noexcept { return header_; }
  /// Payload bytes of the current frame not yet delivered.
  std::uint64_t remaining() const noexcept { return remaining_; }
  /// Why the last error happened, for the reason of the Close frame.
  std::string_view error() const noexcept { return error_; }
  const DecoderRules& rules() const noexcept { return rules_; }
  void set_rules(DecoderRules rules) noexcept { rules_ = rules; }

 private:
  enum class State : std::uint8_t { header, payload, frame_end, failed };
  Step fail(std::uint16_t code, std::string_view why) noexcept;
  Step parse_header() noexcept;

  DecoderRules rules_;
  FrameHeader header_;
  std::uint64_t remaining_ = 0;
  std::uint64_t offset_ = 0;  // payload bytes of this frame already delivered (the mask's phase)
  std::string_view error_;
  char head_[kMaxFrameHeader] = {};
  std::uint8_t have_ = 0;  // bytes of head_ filled
  State state_ = State::header;
  std::uint16_t error_code_ = 0;
};

}  // namespace detail
}  // namespace spindle::ws
