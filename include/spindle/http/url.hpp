#pragma once
// Percent-decoding (RFC 3986 2.1) and query strings / urlencoded forms (the WHATWG
// application/x-www-form-urlencoded format): what the Path, Query and Form extractors decode with.
// Decoded text must be valid UTF-8, as Axum requires: a path or a query is text, and a handler that
// receives a std::string should not have to check it.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spindle/result.hpp"

namespace spindle::http {

/// Why a URL part could not be decoded: where (byte offset in the input; for text that is not UTF-8 once
/// decoded, the start of the part) and what was wrong.
struct UrlError {
  std::size_t position = 0;
  std::string_view reason;
  friend bool operator==(const UrlError&, const UrlError&) = default;
};

/// Decodes `%XX` escapes; with `plus_is_space` (query strings and forms) also `+` as a space. A `%` not
/// followed by two hex digits, or a result that is not UTF-8, is an error.
///
///   percent_decode("caf%C3%A9")              // "café"
///   percent_decode("a+b%2Bc", true)          // "a b+c"
Result<std::string, UrlError> percent_decode(std::string_view text, bool plus_is_space = false);

/// Encodes every byte outside RFC 3986's unreserved set (letters, digits, `-._~`) as `%XX`.
///
///   percent_encode("a b/c")                  // "a%20b%2Fc"
std::string percent_encode(std::string_view text);

/// The `name=value` pairs of a query string or urlencoded form body, decoded, in order; `&` separates
/// pairs, empty pairs are skipped, a pair without `=` has an empty value.
///
///   parse_query("q=caf%C3%A9&page=2&flag")   // {{"q", "café"}, {"page", "2"}, {"flag", ""}}
Result<std::vector<std::pair<std::string, std::string>>, UrlError> parse_query(std::string_view query);

}  // namespace spindle::http
