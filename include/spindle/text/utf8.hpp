#pragma once
// UTF-8 validation, strict per RFC 3629: no overlong forms, no surrogates (U+D800..U+DFFF), nothing
// above U+10FFFF. One implementation for every layer that takes text from the network: percent-decoded
// URL parts and form fields (http), request bodies taken as std::string, JSON string escaping, and
// WebSocket text messages, which arrive in frames that may cut a sequence in two (Validator).
//
// ASCII is checked 16 bytes per step (two 64-bit words); a multi-byte sequence is checked whole: its
// length from the lead byte, the allowed range of its second byte from a table (the only byte on which
// overlongs, surrogates and code points above U+10FFFF depend), a mask test for the other continuation
// bytes. bench/text/utf8_bench.cpp measures it.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spindle::utf8 {

/// Whether `text` is well-formed UTF-8.
///
///   utf8::is_valid("caf\xC3\xA9")    // true
///   utf8::is_valid("\xC0\xAF")       // false: an overlong '/'
///   utf8::is_valid("\xED\xA0\x80")   // false: a surrogate
bool is_valid(std::string_view text) noexcept;

/// The length (1 to 4) of the well-formed sequence at the start of `text`, or 0 if it does not start
/// with one (empty, a continuation byte, an invalid lead, an invalid or missing continuation byte).
///
///   utf8::sequence_length("a...")            // 1
///   utf8::sequence_length("\xE2\x82\xAC")    // 3 (U+20AC)
///   utf8::sequence_length("\xE2\x82")        // 0: cut short
std::size_t sequence_length(std::string_view text) noexcept;

/// Validates text that arrives in pieces (a WebSocket message's frames) where a sequence may be cut
/// between two pieces. It fails fast, as RFC 6455 section 8.1 asks: feed() returns false as soon as
/// the bytes so far cannot be the start of valid UTF-8, without waiting for the rest of the sequence
/// ("\xF4\x90" fails at once: nothing above U+10FFFF starts so). Four bytes of state.
///
///   utf8::Validator text;
///   for (std::string_view frame : frames)
///     if (!text.feed(frame)) return close(1007);   // invalid frame payload data
///   if (!text.complete()) return close(1007);      // the message ended inside a sequence
class Validator {
 public:
  /// Checks `piece` as the continuation of what was fed before. False once the bytes so far cannot
  /// begin valid UTF-8; it then stays false until reset().
  bool feed(std::string_view piece) noexcept;
  /// Whether everything fed is whole, valid UTF-8 (false if the last piece ended inside a sequence).
  bool complete() const noexcept { return !failed_ && pending_ == 0; }
  /// Starts a new text (the next message).
  void reset() noexcept { *this = Validator{}; }

 private:
  bool fail() noexcept {
    failed_ = true;
    return false;
  }

  std::uint8_t pending_ = 0;       // continuation bytes the sequence cut by the last piece still needs
  std::uint8_t next_low_ = 0x80;   // [next_low_, next_high_]: the range allowed for the next of them,
  std::uint8_t next_high_ = 0xBF;  // narrower than 80..BF when it is a sequence's second byte
  bool failed_ = false;
};

}  // namespace spindle::utf8
