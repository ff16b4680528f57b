#pragma once
// The character classes of HTTP field syntax (RFC 9110 5), shared by the parsers, which check what
// arrives, and HeaderMap, which checks what a handler sets (a CR or LF in a value would split a response).

#include <string_view>

namespace spindle::http::detail {

// tchar (RFC 9110 5.6.2): the characters of a token (method, field name).
constexpr bool is_tchar_slow(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

// The parsers look up every byte of a head: a table is a load per byte instead of a chain of compares.
struct CharTable {
  bool tchar[256];
  constexpr CharTable() : tchar{} {
    for (int c = 0; c < 256; ++c) tchar[c] = is_tchar_slow(static_cast<unsigned char>(c));
  }
};
inline constexpr CharTable kCharTable{};

constexpr bool is_tchar(unsigned char c) noexcept { return kCharTable.tchar[c]; }

constexpr bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// field-value characters: VCHAR, SP, HTAB and obs-text; no other controls (CR, LF, NUL among them).
constexpr bool is_value_char(unsigned char c) noexcept { return (c >= 0x20 || c == '\t') && c != 0x7f; }

constexpr bool is_field_value(std::string_view s) noexcept {
  for (unsigned char c : s)
    if (!is_value_char(c)) return false;
  return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `s` without the optional whitespace (spaces and tabs) around it.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

/// A Content-Type's media type without its parameters: "Application/JSON" for
/// "Application/JSON; charset=utf-8" (compare it with iequals).
constexpr std::string_view media_type_essence(std::string_view content_type) noexcept {
  return trim_ows(content_type.substr(0, content_type.find(';')));
}

constexpr char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

/// Calls `each` with every comma-separated element of a list-valued field, trimmed; empty elements are
/// skipped (RFC 9110 5.6.1).
template <class Each>
constexpr void for_each_element(std::string_view value, Each each) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) each(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

/// Whether a list-valued field holds `token` (case-insensitive): "Connection: keep-alive, Upgrade".
constexpr bool list_contains(std::string_view value, std::string_view token) {
  bool found = false;
  for_each_element(value, [&](std::string_view element) { found = found || iequals(element, token); });
  return found;
}

}  // namespace spindle::http::detail
