// UTF-8 validation (RFC 3629 section 4): an ASCII fast path of 16 bytes per step, then whole sequences
// checked with range comparisons. Measured by bench/text/utf8_bench.cpp.

#include "spindle/text/utf8.hpp"

#include <array>
#include <bit>
#include <cstring>

namespace spindle::utf8 {
namespace {

/// What a byte announces as the first of a sequence.
struct Lead {
  std::uint8_t length;       // of the sequence; 0 if the byte cannot start one
  std::uint8_t second_low;   // [second_low, second_high]: the range allowed for the second byte of a
  std::uint8_t second_high;  // multi-byte sequence
};

// RFC 3629's table of well-formed sequences. Every restriction beyond "continuation bytes are 80..BF"
// falls on the second byte, which is why a cut sequence can be judged as soon as its second byte is in.
constexpr std::array<Lead, 256> kLeads = [] {
  std::array<Lead, 256> leads{};
  for (int byte = 0x00; byte <= 0x7F; ++byte) leads[byte] = {1, 0, 0};
  // C0 and C1 could only start overlong forms of U+0000..U+007F: not leads.
  for (int byte = 0xC2; byte <= 0xDF; ++byte) leads[byte] = {2, 0x80, 0xBF};
  for (int byte = 0xE0; byte <= 0xEF; ++byte) leads[byte] = {3, 0x80, 0xBF};
  leads[0xE0].second_low = 0xA0;   // E0 80..9F would be overlong (below U+0800)
  leads[0xED].second_high = 0x9F;  // ED A0..BF would be a surrogate (U+D800..U+DFFF)
  // F5..FF could only start code points above U+10FFFF: not leads.
  for (int byte = 0xF0; byte <= 0xF4; ++byte) leads[byte] = {4, 0x80, 0xBF};
  leads[0xF0].second_low = 0x90;   // F0 80..8F would be overlong (below U+10000)
  leads[0xF4].second_high = 0x8F;  // F4 90..BF would be above U+10FFFF
  return leads;
}();

constexpr bool in_range(unsigned char byte, std::uint8_t low, std::uint8_t high) noexcept {
  return static_cast<std::uint8_t>(byte - low) <= static_cast<std::uint8_t>(high - low);  // one comparison
}

constexpr bool is_continuation(unsigned char byte) noexcept { return (byte & 0xC0) == 0x80; }

constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

/// The index in memory order of the first byte whose high bit is set in `high_bits` (not 0), a word
/// loaded with memcpy and masked with kHighBits.
inline std::size_t first_high_byte(std::uint64_t high_bits) noexcept {
  if constexpr (std::endian::native == std::endian::little)
    return static_cast<std::size_t>(std::countr_zero(high_bits)) / 8;
  else
    return static_cast<std::size_t>(std::countl_zero(high_bits)) / 8;
}

/// Skips ASCII from `at`: returns `end` or the first byte that is not ASCII. Two 8-byte words per step
/// (memcpy: no alignment or aliasing assumptions; compilers emit plain loads), which measured faster
/// than one word per step and needs no intrinsics.
const unsigned char* skip_ascii(const unsigned char* at, const unsigned char* end) noexcept {
  std::uint64_t first;
  std::uint64_t second;
  while (end - at >= 16) {
    std::memcpy(&first, at, 8);
    std::memcpy(&second, at + 8, 8);
    if (((first | second) & kHighBits) != 0) {
      const std::uint64_t first_high = first & kHighBits;
      return first_high != 0 ? at + first_high_byte(first_high) : at + 8 + first_high_byte(second & kHighBits);
    }
    at += 16;
  }
  if (end - at >= 8) {
    std::memcpy(&first, at, 8);
    if ((first & kHighBits) != 0) return at + first_high_byte(first & kHighBits);
    at += 8;
  }
  while (at < end && *at < 0x80) ++at;
  return at;
}

/// The length of the well-formed sequence at `at`, or 0 if it is invalid or cut by `end` (at < end).
/// The length comes from comparisons rather than from the table: a branch on the lead is predicted
/// (text keeps to a few lengths), so the next sequence's bytes are loaded before this one is checked,
/// where a length loaded from the table would chain every step to two loads (measured at half the speed
/// on CJK and emoji).
inline std::size_t whole_sequence_length(const unsigned char* at, const unsigned char* end) noexcept {
  const unsigned char lead = *at;
  const std::ptrdiff_t available = end - at;
  if (lead < 0x80) return 1;
  const Lead& range = kLeads[lead];
  if (lead < 0xE0) return lead >= 0xC2 && available >= 2 && is_continuation(at[1]) ? 2 : 0;
  if (lead < 0xF0) {
    return available >= 3 && in_range(at[1], range.second_low, range.second_high) && is_continuation(at[2]) ? 3 : 0;
  }
  return lead <= 0xF4 && available >= 4 && in_range(at[1], range.second_low, range.second_high) &&
                 is_continuation(at[2]) && is_continuation(at[3])
             ? 4
             : 0;
}

/// Skips whole valid sequences from `at`: returns `end`, or the lead of the first sequence that is
/// invalid or cut by `end`.
const unsigned char* skip_valid(const unsigned char* at, const unsigned char* end) noexcept {
  while (at < end) {
    if (*at < 0x80) {
      at = skip_ascii(at, end);
      continue;
    }
    // Text with multi-byte characters tends to have them in runs (CJK, emoji): stay here rather than
    // try the ASCII path between every two of them.
    const std::size_t length = whole_sequence_length(at, end);
    if (length == 0) return at;
    at += length;
  }
  return at;
}

const unsigned char* bytes_of(std::string_view text) noexcept {
  return reinterpret_cast<const unsigned char*>(text.data());
}

}  // namespace

bool is_valid(std::string_view text) noexcept {
  const unsigned char* const end = bytes_of(text) + text.size();
  return skip_valid(bytes_of(text), end) == end;
}

std::size_t sequence_length(std::string_view text) noexcept {
  if (text.empty()) return 0;
  return whole_sequence_length(bytes_of(text), bytes_of(text) + text.size());
}

bool Validator::feed(std::string_view piece) noexcept {
  if (failed_) return false;
  const unsigned char* at = bytes_of(piece);
  const unsigned char* const end = at + piece.size();
  // First the rest of the sequence that the previous piece cut.
  for (; pending_ > 0 && at < end; --pending_, ++at) {
    if (!in_range(*at, next_low_, next_high_)) return fail();
    next_low_ = 0x80;
    next_high_ = 0xBF;
  }
  at = skip_valid(at, end);
  if (at == end) return true;
  // skip_valid stopped at a sequence that is invalid, or valid so far and cut by the end of the piece.
  const Lead lead = kLeads[*at];
  const auto available = static_cast<std::size_t>(end - at);
  if (lead.length == 0 || available >= lead.length) return fail();
  if (available >= 2 && !in_range(at[1], lead.second_low, lead.second_high)) return fail();
  if (available >= 3 && !is_continuation(at[2])) return fail();
  pending_ = static_cast<std::uint8_t>(lead.length - available);
  next_low_ = available == 1 ? lead.second_low : std::uint8_t{0x80};
  next_high_ = available == 1 ? lead.second_high : std::uint8_t{0xBF};
  return true;
}

}  // namespace spindle::utf8
