#pragma once
// The multipart/form-data body parser (RFC 7578 on the multipart syntax of RFC 2046 5.1), sans I/O: it
// is fed the body in whatever slices arrive and says what it found, one event per call, so the same
// code serves the Multipart extractor, the tests (which split bodies at every position) and the fuzzer.
//
// A body is a preamble (ignored), then parts, each introduced by a delimiter line "--boundary" CRLF and
// made of header fields, an empty line and data, and ends with the close delimiter "--boundary--"
// followed by an epilogue (ignored). The delimiter is CRLF "--" boundary: the CRLF before it belongs to
// the delimiter, not to the data of the part it ends. The first delimiter may start the body without
// its CRLF, which is why the parser starts as if a CRLF had just been seen.
//
// Data is handed out as views into the input, without a copy. Finding the delimiter in data needs no
// lookahead buffer either: the boundary cannot contain CR (RFC 2046's bchars), so CR occurs in the
// delimiter only at its start, and a partial match that fails was exactly the delimiter's first bytes
// up to there, which the parser hands out from its own copy of the delimiter. A header block is copied
// (it must be whole to be parsed), up to the header limit.
//
// Strict, like the request parser: CRLF line ends, header names that are tokens, no controls in values,
// no obs-fold, a Content-Disposition of type form-data with a name in every part, and a delimiter line
// that ends in CRLF (after optional spaces, RFC 2046's transport padding) or "--". Anything else is an
// error with the status to answer (400; 431 for a part's header block over the limit, 413 for too many
// parts) and a message that says what was wrong.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/http/status.hpp"
#include "spindle/result.hpp"

namespace spindle::http::detail {

/// What form-data takes from a part's header fields.
struct PartHead {
  std::string name;                         ///< Content-Disposition's name
  std::optional<std::string> file_name;     ///< its filename (or filename*, decoded), for a file
  std::optional<std::string> content_type;  ///< the part's Content-Type, as sent
};

/// Why a multipart body (or its Content-Type) was refused: the status to answer and what was wrong.
struct MultipartError {
  Status status = Status::bad_request;
  std::string message;
};

// RFC 2046 5.1.1: a boundary is 1 to 70 of these, and does not end with a space.
constexpr bool is_boundary_char(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  switch (c) {
    case '\'':
    case '(':
    case ')':
    case '+':
    case '_':
    case ',':
    case '-':
    case '.':
    case '/':
    case ':':
    case '=':
    case '?':
    case ' ':
      return true;
    default:
      return false;
  }
}

constexpr std::size_t kMaxBoundaryLength = 70;

constexpr bool is_valid_boundary(std::string_view boundary) noexcept {
  if (boundary.empty() || boundary.size() > kMaxBoundaryLength || boundary.back() == ' ') return false;
  for (unsigned char c : boundary)
    if (!is_boundary_char(c)) return false;
  return true;
}

/// Parses the parameters after a media type or a disposition type, `*( OWS ";" OWS [ name "=" value ] )`
/// (RFC 9110 5.6.6; Content-Disposition's are the same, RFC 6266), where a value is a token or a
/// quoted-string. Calls `on_parameter(name, value)` for each, with the quoted-string's escapes undone;
/// false if `text` does not have that shape or `on_parameter` returned false.
template <class OnParameter>
bool parse_parameters(std::string_view text, OnParameter&& on_parameter) {
  std::size_t i = 0;
  const auto skip_ows = [&] {
    while (i < text.size() && is_ows(text[i])) ++i;
  };
  for (;;) {
    skip_ows();
    if (i == text.size()) return true;
    if (text[i] != ';') return false;
    ++i;
    skip_ows();
    if (i == text.size() || text[i] == ';') continue;  // an empty parameter, which RFC 9110 allows
    const std::size_t name_start = i;
    while (i < text.size() && is_tchar(static_cast<unsigned char>(text[i]))) ++i;
    const std::string_view name = text.substr(name_start, i - name_start);
    // No whitespace around '=' (RFC 9110 5.6.6).
    if (name.empty() || i == text.size() || text[i] != '=') return false;
    ++i;
    std::string value;
    if (i < text.size() && text[i] == '"') {
      ++i;
      for (;;) {
        if (i == text.size()) return false;  // no closing quote
        char c = text[i++];
        if (c == '"') break;
        if (c == '\\') {  // quoted-pair
          if (i == text.size()) return false;
          c = text[i++];
        }
        if (!is_value_char(static_cast<unsigned char>(c))) return false;
        value += c;
      }
    } else {
      const std::size_t value_start = i;
      while (i < text.size() && is_tchar(static_cast<unsigned char>(text[i]))) ++i;
      if (i == value_start) return false;
      value.assign(text.substr(value_start, i - value_start));
    }
    if (!on_parameter(name, std::move(value))) return false;
  }
}

/// The boundary of a Content-Type value that is `multipart/form-data; boundary=...` (the boundary quoted
/// or not). 415 for another media type or no boundary parameter; 400 for a malformed value.
inline Result<std::string, MultipartError> form_data_boundary(std::string_view content_type) {
  const std::string_view value = trim_ows(content_type);
  const std::size_t slash = value.find('/');
  std::size_t end = slash == std::string_view::npos ? value.size() : slash + 1;
  while (end < value.size() && is_tchar(static_cast<unsigned char>(value[end]))) ++end;
  const std::string_view type = value.substr(0, std::min(slash, value.size()));
  const std::string_view subtype = slash == std::string_view::npos ? "" : value.substr(slash + 1, end - slash - 1);
  if (!iequals(type, "multipart") || !iequals(subtype, "form-data"))
    return Err{MultipartError{Status::unsupported_media_type, "the content type must be multipart/form-data"}};
  std::optional<std::string> boundary;
  bool repeated = false;
  const bool well_formed = parse_parameters(value.substr(end), [&](std::string_view name, std::string parameter) {
    if (!iequals(name, "boundary")) return true;
    repeated = boundary.has_value();
    boundary = std::move(parameter);
    return !repeated;
  });
  if (repeated) return Err{MultipartError{Status::bad_request, "the content type has two boundary parameters"}};
  if (!well_formed) return Err{MultipartError{Status::bad_request, "the content type's parameters are malformed"}};
  if (!boundary)
    return Err{MultipartError{Status::unsupported_media_type, "multipart/form-data needs a boundary parameter"}};
  if (!is_valid_boundary(*boundary))
    return Err{MultipartError{Status::bad_request,
                              "the boundary must be 1 to 70 letters, digits or '()+_,-./:=? (RFC 2046), "
                              "not ending with a space"}};
  return std::move(*boundary);
}

/// Undoes RFC 8187's ext-value for UTF-8 (`UTF-8''na%C3%AFve.txt`); nullopt for another charset or a
/// bad escape, which leave the plain filename in charge.
inline std::optional<std::string> decode_ext_value(std::string_view ext_value) {
  const std::size_t charset_end = ext_value.find('\'');
  if (charset_end == std::string_view::npos || !iequals(ext_value.substr(0, charset_end), "utf-8")) return std::nullopt;
  const std::size_t language_end = ext_value.find('\'', charset_end + 1);
  if (language_end == std::string_view::npos) return std::nullopt;
  const std::string_view encoded = ext_value.substr(language_end + 1);
  const auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string decoded;
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      decoded += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size() || hex(encoded[i + 1]) < 0 || hex(encoded[i + 2]) < 0) return std::nullopt;
    decoded += static_cast<char>(hex(encoded[i + 1]) * 16 + hex(encoded[i + 2]));
    i += 2;
  }
  return decoded;
}

/// Parses a multipart/form-data body incrementally.
///
///   MultipartParser parser{boundary, 8 * 1024, 100};
///   for (std::string_view input : pieces_of_the_body) {
///     for (;;) {
///       const MultipartParser::Step step = parser.step(input);
///       input.remove_prefix(step.consumed);
///       if (step.event == MultipartParser::Event::more) break;   // all of `input` used: feed more
///       if (step.event == MultipartParser::Event::part) begin_field(parser.part());
///       if (step.event == MultipartParser::Event::data) append(step.data);
///       if (step.event == MultipartParser::Event::part_end) end_field();
///       if (step.event == MultipartParser::Event::error) return refuse(parser.error());
///       if (step.event == MultipartParser::Event::done) return accept();
///     }
///   }
///   // The body ended: done if the close delimiter was read, else an error (a truncated body).
///   if (parser.finish().event == MultipartParser::Event::error) return refuse(parser.error());
class MultipartParser {
 public:
  enum class Event : std::uint8_t {
    more,      ///< every input byte is used; nothing else to report until more arrive
    part,      ///< a part's header block was read: see part()
    data,      ///< `data` is a piece of the current part's data (never empty)
    part_end,  ///< the current part's data has ended
    done,      ///< the close delimiter was read; the rest (the epilogue) is ignored
    error,     ///< see error(); every later call says error again
  };
  struct Step {
    Event event;
    std::size_t consumed;   ///< bytes of the input used; call again with the rest
    std::string_view data;  ///< with Event::data: a view into the input, or into the parser (valid until the
                            ///< next call)
  };

  /// `boundary` must be valid (form_data_boundary returns only such); an invalid one is an error at once.
  MultipartParser(std::string_view boundary, std::size_t max_header_bytes, std::size_t max_parts)
      : delimiter_("\r\n--" + std::string{boundary}), max_header_bytes_(max_header_bytes), max_parts_(max_parts) {
    if (!is_valid_boundary(boundary)) fail(Status::bad_request, "the boundary is not a valid multipart boundary");
  }

  /// Looks at the front of `input` (the body's next bytes) and reports the first event found there.
  Step step(std::string_view input);
  /// Says the body has ended: done if the close delimiter was read, else an error.
  Step finish();

  /// The header fields of the part that the last Event::part announced.
  const PartHead& part() const noexcept { return part_; }
  const MultipartError& error() const noexcept { return error_; }
  /// New limits, for what has not been read yet.
  void set_limits(std::size_t max_header_bytes, std::size_t max_parts) noexcept {
    max_header_bytes_ = max_header_bytes;
    max_parts_ = max_parts;
  }

 private:
  enum class State : std::uint8_t {
    data,             // in the preamble or a part's data, looking for the delimiter
    after_delimiter,  // "--boundary" read: "--", padding or CRLF follows
    after_dash,       // "--boundary-": the second '-' of the close delimiter follows
    padding,          // spaces after the boundary: more, or CRLF
    after_cr,         // the CR ending a delimiter line: LF follows
    headers,          // a part's header block, up to its empty line
    closed,           // after the close delimiter: the epilogue
    failed,
  };

  Step fail(Status status, std::string message) {
    state_ = State::failed;
    error_ = MultipartError{status, std::move(message)};
    return Step{Event::error, 0, {}};
  }
  bool parse_head(std::string_view lines);
  bool parse_disposition(std::string_view value);

  std::string delimiter_;  // CRLF "--" boundary
  std::size_t max_header_bytes_;
  std::size_t max_parts_;
  State state_ = State::data;
  bool in_part_ = false;  // in a part's data (or, from a delimiter's end, one whose end is not yet reported)
  // Delimiter bytes matched at the end of the input seen so far. Starts at 2: the body begins as if after
  // a CRLF, so that a first delimiter at its very start is found.
  std::size_t matched_ = 2;
  std::size_t parts_ = 0;
  std::string head_;  // the header block being read, after the delimiter line's CRLF (kept at its front)
  PartHead part_;
  MultipartError error_;
};

inline MultipartParser::Step MultipartParser::step(std::string_view input) {
  std::size_t used = 0;
  for (;;) {
    const std::string_view rest = input.substr(used);
    switch (state_) {
      case State::failed:
        return Step{Event::error, used, {}};
      case State::closed:
        return Step{Event::done, input.size(), {}};
      case State::data: {
        if (rest.empty()) return Step{Event::more, used, {}};
        if (matched_ > 0) {
          // A delimiter begun in an earlier input: go on matching it.
          std::size_t i = 0;
          while (i < rest.size() && matched_ < delimiter_.size() && rest[i] == delimiter_[matched_]) {
            ++i;
            ++matched_;
          }
          used += i;
          if (matched_ == delimiter_.size()) {
            matched_ = 0;
            state_ = State::after_delimiter;
            continue;
          }
          if (used == input.size()) return Step{Event::more, used, {}};
          // Not a delimiter after all: what matched was data, the delimiter's first bytes. The byte that
          // did not match is looked at again: it may be a CR starting a real delimiter.
          const std::size_t was_data = std::exchange(matched_, 0);
          if (in_part_) return Step{Event::data, used, std::string_view{delimiter_}.substr(0, was_data)};
          continue;  // preamble
        }
        const std::size_t found = rest.find(delimiter_);
        if (found != std::string_view::npos) {
          if (found > 0 && in_part_) return Step{Event::data, used + found, rest.substr(0, found)};
          used += found + delimiter_.size();
          state_ = State::after_delimiter;
          continue;
        }
        // No whole delimiter here. The input may end with its first bytes: one CR at most, in the last
        // delimiter-length-minus-one bytes, since a delimiter holds one CR. Those are taken as matched.
        const std::size_t window = std::min(rest.size(), delimiter_.size() - 1);
        const std::string_view tail = rest.substr(rest.size() - window);
        const std::size_t cr = tail.rfind('\r');
        std::size_t data_size = rest.size();
        if (cr != std::string_view::npos && std::string_view{delimiter_}.starts_with(tail.substr(cr))) {
          data_size = rest.size() - (tail.size() - cr);
          matched_ = tail.size() - cr;
        }
        if (data_size > 0 && in_part_) return Step{Event::data, input.size(), rest.substr(0, data_size)};
        return Step{Event::more, input.size(), {}};
      }
      case State::after_delimiter:
      case State::after_dash:
      case State::padding:
      case State::after_cr: {
        if (rest.empty()) return Step{Event::more, used, {}};
        const char c = rest.front();
        ++used;
        if (state_ == State::after_dash) {
          if (c != '-')
            return fail(Status::bad_request, "a boundary line is followed by '-' instead of CRLF or \"--\"");
          state_ = State::closed;
          if (std::exchange(in_part_, false)) return Step{Event::part_end, used, {}};
          continue;
        }
        if (state_ == State::after_cr) {
          if (c != '\n') return fail(Status::bad_request, "a boundary line ends in CR without LF");
          state_ = State::headers;
          head_.assign("\r\n");
          if (std::exchange(in_part_, false)) return Step{Event::part_end, used, {}};
          continue;
        }
        if (c == '\r') {
          state_ = State::after_cr;
        } else if (is_ows(c)) {
          state_ = State::padding;
        } else if (c == '-' && state_ == State::after_delimiter) {
          state_ = State::after_dash;
        } else {
          return fail(Status::bad_request,
                      "a boundary line must end with CRLF (or \"--\" for the last), but other bytes follow the "
                      "boundary");
        }
        continue;
      }
      case State::headers: {
        if (rest.empty()) return Step{Event::more, used, {}};
        // head_ starts with the delimiter line's CRLF, so that "\r\n\r\n" ends any block, an empty one too.
        const std::size_t capacity = max_header_bytes_ + 2;
        const std::size_t before = head_.size();
        const std::size_t take = std::min(rest.size(), capacity > before ? capacity - before : 0);
        head_.append(rest.data(), take);
        const std::size_t end = head_.find("\r\n\r\n", before >= 3 ? before - 3 : 0);
        if (end == std::string::npos) {
          if (head_.size() >= capacity)
            return fail(Status::request_header_fields_too_large,
                        "a part's header block is larger than " + std::to_string(max_header_bytes_) + " bytes");
          return Step{Event::more, used + take, {}};
        }
        used += end + 4 - before;
        if (!parse_head(std::string_view{head_}.substr(2, end))) return Step{Event::error, used, {}};
        if (++parts_ > max_parts_)
          return fail(Status::payload_too_large, "the form has more than " + std::to_string(max_parts_) + " fields");
        state_ = State::data;
        in_part_ = true;
        matched_ = 0;
        return Step{Event::part, used, {}};
      }
    }
  }
}

inline MultipartParser::Step MultipartParser::finish() {
  switch (state_) {
    case State::failed:
      return Step{Event::error, 0, {}};
    case State::closed:
      return Step{Event::done, 0, {}};
    case State::data:
      if (in_part_) return fail(Status::bad_request, "the body ends inside a part, without the closing boundary");
      if (parts_ == 0) return fail(Status::bad_request, "the body ends before its first boundary line");
      [[fallthrough]];
    default:
      return fail(Status::bad_request, "the body ends without the closing boundary");
  }
}

// `lines`: the header block without its empty line, each line ending in CRLF.
inline bool MultipartParser::parse_head(std::string_view lines) {
  part_ = PartHead{};
  bool disposition_seen = false;
  while (!lines.empty()) {
    const std::size_t line_end = lines.find("\r\n");  // there is one: every line ends with CRLF
    const std::string_view line = lines.substr(0, line_end);
    lines.remove_prefix(line_end + 2);
    if (is_ows(line.front())) {
      fail(Status::bad_request, "a part's header field is folded across lines (obs-fold)");
      return false;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      fail(Status::bad_request, "a part's header line has no colon");
      return false;
    }
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = trim_ows(line.substr(colon + 1));
    if (!is_token(name)) {
      fail(Status::bad_request, "a part's header field name is not a token");
      return false;
    }
    if (!is_field_value(value)) {
      fail(Status::bad_request, "a part's header field value contains a control character (or a bare CR or LF)");
      return false;
    }
    if (iequals(name, "content-disposition")) {
      if (std::exchange(disposition_seen, true)) {
        fail(Status::bad_request, "a part has two Content-Disposition fields");
        return false;
      }
      if (!parse_disposition(value)) return false;
    } else if (iequals(name, "content-type")) {
      if (part_.content_type) {
        fail(Status::bad_request, "a part has two Content-Type fields");
        return false;
      }
      part_.content_type = std::string{value};
    }
    // RFC 7578 4.8: other fields are to be ignored.
  }
  if (!disposition_seen) {
    fail(Status::bad_request, "a part has no Content-Disposition field");
    return false;
  }
  return true;
}

// RFC 7578 4.2: `form-data; name="field"`, with `filename="..."` for a file.
inline bool MultipartParser::parse_disposition(std::string_view value) {
  std::size_t type_end = 0;
  while (type_end < value.size() && is_tchar(static_cast<unsigned char>(value[type_end]))) ++type_end;
  if (!iequals(value.substr(0, type_end), "form-data")) {
    fail(Status::bad_request, "a part's Content-Disposition is not form-data");
    return false;
  }
  std::optional<std::string> name;
  std::optional<std::string> extended_file_name;
  std::string_view repeated;
  const bool well_formed = parse_parameters(value.substr(type_end), [&](std::string_view parameter, std::string text) {
    std::optional<std::string>* into = nullptr;
    if (iequals(parameter, "name")) into = &name;
    if (iequals(parameter, "filename")) into = &part_.file_name;
    if (iequals(parameter, "filename*")) into = &extended_file_name;
    if (into == nullptr) return true;
    if (into->has_value()) {
      repeated = parameter;
      return false;
    }
    *into = std::move(text);
    return true;
  });
  if (!repeated.empty()) {
    fail(Status::bad_request, "a part's Content-Disposition has two " + std::string{repeated} + " parameters");
    return false;
  }
  if (!well_formed) {
    fail(Status::bad_request, "a part's Content-Disposition parameters are malformed");
    return false;
  }
  if (!name) {
    fail(Status::bad_request, "a part's Content-Disposition has no name");
    return false;
  }
  part_.name = std::move(*name);
  // RFC 7578 4.2 tells senders not to use filename*, but where one is, it is the better name (RFC 6266 4.3).
  if (extended_file_name) {
    if (std::optional<std::string> decoded = decode_ext_value(*extended_file_name))
      part_.file_name = std::move(decoded);
  }
  return true;
}

}  // namespace spindle::http::detail
