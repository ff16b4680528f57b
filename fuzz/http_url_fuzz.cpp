// libFuzzer target for percent-decoding, query strings and UTF-8 validation, with oracles: a naive
// decoder, a code-point-by-code-point UTF-8 check, and round trips through percent_encode.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spindle/http/url.hpp"
#include "spindle/text/utf8.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

bool reference_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    const std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1Fu) : n == 3 ? (b & 0x0Fu) : (b & 0x07u);
    for (std::size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3Fu);
    }
    const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes naively; false on a bad escape.
bool reference_decode(std::string_view s, bool plus, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size() || hex(s[i + 1]) < 0 || hex(s[i + 2]) < 0) return false;
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(plus && s[i] == '+' ? ' ' : s[i]);
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const bool valid = reference_utf8(input);
  check(spindle::utf8::is_valid(input) == valid);
  // The incremental validator agrees wherever the input is cut (the cut chosen by the input itself).
  spindle::utf8::Validator validator;
  const std::size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const bool fed = validator.feed(input.substr(0, cut)) && validator.feed(input.substr(cut));
  check((fed && validator.complete()) == valid);

  for (const bool plus : {false, true}) {
    std::string expected;
    const bool escapes_ok = reference_decode(input, plus, expected);
    const auto decoded = spindle::http::percent_decode(input, plus);
    check(decoded.has_value() == (escapes_ok && reference_utf8(expected)));
    if (decoded) check(*decoded == expected);
  }

  const std::string encoded = spindle::http::percent_encode(input);
  const auto round_trip = spindle::http::percent_decode(encoded);
  check(round_trip.has_value() == reference_utf8(input));
  if (round_trip) check(*round_trip == input);

  const auto pairs = spindle::http::parse_query(input);
  if (pairs) {
    // Every pair survives being encoded and parsed again.
    std::string again;
    for (const auto& [name, value] : *pairs) {
      if (!again.empty()) again += '&';
      again += spindle::http::percent_encode(name) + "=" + spindle::http::percent_encode(value);
    }
    const auto reparsed = spindle::http::parse_query(again);
    check(reparsed.has_value() && *reparsed == *pairs);
  }
  return 0;
}
