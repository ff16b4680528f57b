// Percent-decoding, query strings and UTF-8 validation.

#include "spindle/http/url.hpp"

#include <cstdint>

namespace spindle::http {
namespace {

constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr bool is_unreserved(unsigned char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* at = reinterpret_cast<const unsigned char*>(text.data());
  const auto* const end = at + text.size();
  while (at < end) {
    // ASCII runs are the common case: eight bytes at a time.
    while (end - at >= 8) {
      std::uint64_t block;
      __builtin_memcpy(&block, at, 8);
      if ((block & 0x8080808080808080ULL) != 0) break;
      at += 8;
    }
    if (at == end) break;
    const unsigned char lead = *at;
    if (lead < 0x80) {
      ++at;
      continue;
    }
    std::size_t length;
    unsigned char low = 0x80, high = 0xBF;  // the range of the second byte (RFC 3629 section 4)
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // no overlong forms
      if (lead == 0xED) high = 0x9F;  // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // no overlong forms
      if (lead == 0xF4) high = 0x8F;  // nothing above U+10FFFF
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - at) < length) return false;
    if (at[1] < low || at[1] > high) return false;
    for (std::size_t i = 2; i < length; ++i)
      if ((at[i] & 0xC0) != 0x80) return false;
    at += length;
  }
  return true;
}

Result<std::string, UrlError> percent_decode(std::string_view text, bool plus_is_space) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      const int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
      const int low = i + 2 < text.size() ? hex_value(text[i + 2]) : -1;
      if (high < 0 || low < 0) return Err{UrlError{i, "'%' must be followed by two hex digits"}};
      decoded.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      decoded.push_back(' ');
    } else {
      decoded.push_back(c);
    }
  }
  if (!is_valid_utf8(decoded)) return Err{UrlError{0, "not valid UTF-8 once decoded"}};
  return decoded;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_unreserved(byte)) {
      encoded.push_back(c);
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 15]);
    }
  }
  return encoded;
}

Result<std::vector<std::pair<std::string, std::string>>, UrlError> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> pairs;
  std::size_t start = 0;
  while (start <= query.size()) {
    std::size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(start, end - start);
    if (!pair.empty()) {
      const std::size_t equals = pair.find('=');
      const std::string_view raw_name = pair.substr(0, equals);
      const std::string_view raw_value =
          equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1);
      auto name = percent_decode(raw_name, true);
      if (!name) return Err{UrlError{start + name.error().position, name.error().reason}};
      auto value = percent_decode(raw_value, true);
      if (!value) return Err{UrlError{start + equals + 1 + value.error().position, value.error().reason}};
      pairs.emplace_back(std::move(*name), std::move(*value));
    }
    start = end + 1;
  }
  return pairs;
}

}  // namespace spindle::http
