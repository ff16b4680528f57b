#pragma once
// The HTTP/1.1 request parser: incremental, zero-copy and strict (RFC 9112).
//
// Incremental: feed it the bytes read so far; it answers "incomplete" until the head (request line and
// header fields, up to the empty line) is all there, and remembers how far it has looked so a head that
// arrives a few bytes at a time is scanned once, not once per read. Zero-copy: the method, target, field
// names and values it returns are views into the caller's buffer, valid while that buffer is.
//
// Strict, because two parties that frame a message differently are how requests are smuggled: whatever
// RFC 9112 lets a server reject, this parser rejects, with the status to answer and a short reason:
// - bare LF line ends, obs-fold (a field line starting with whitespace), whitespace before the colon,
//   bad token characters in the method or a field name, CR/LF/NUL or other controls in a value, spaces
//   or controls in the target (400);
// - Content-Length that is not all digits, overflows, or appears twice with different values; both
//   Transfer-Encoding and Content-Length; a Transfer-Encoding whose final coding is not chunked (400),
//   or one with codings this server does not implement (501); Transfer-Encoding in HTTP/1.0 (400);
// - a missing or repeated Host in HTTP/1.1 (400); a version other than HTTP/1.0 or HTTP/1.1 (505);
// - a request line over the limit (414); a header block or field count over the limits (431).
//
// Request bodies are framed by the head (Content-Length or chunked); ChunkedDecoder undoes chunked
// transfer coding, with the same strictness.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace spindle::http {

enum class Method : std::uint8_t { get, head, post, put, del, connect, options, trace, patch, other };

/// The method's name as sent ("DELETE" for Method::del); "" for Method::other.
std::string_view method_name(Method method) noexcept;

/// One header field line: views into the parsed buffer. The value has no leading or trailing whitespace.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};

/// How the body of a message is delimited.
enum class BodyFraming : std::uint8_t {
  none,            ///< no body
  content_length,  ///< exactly content_length bytes
  chunked,         ///< chunked transfer coding (ChunkedDecoder)
  until_close,     ///< a response with neither: everything until the server closes the connection
};

/// A parsed request head. Views into the buffer given to RequestParser::parse.
struct RequestHead {
  Method method = Method::other;
  std::string_view method_name;
  std::string_view target;
  int version_minor = 1;  ///< HTTP/1.<version_minor>: 0 or 1
  std::span<const HeaderField> fields;
  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;  ///< with BodyFraming::content_length
  bool keep_alive = true;            ///< after this exchange (Connection, and the version's default)
  bool expect_continue = false;      ///< Expect: 100-continue
  std::string_view host;

  /// The first field named `name` (case-insensitive), if any.
  std::optional<std::string_view> field(std::string_view name) const noexcept;
};

/// Why a request was refused: the status to answer and what was wrong, for the error body.
struct ParseError {
  int status = 400;
  std::string_view reason;
  bool over_limit = false;  ///< a ParserLimits size or count was exceeded (the message may be valid)
};

struct ParserLimits {
  std::size_t max_request_line = 8 * 1024;   ///< 414 beyond
  std::size_t max_header_bytes = 16 * 1024;  ///< 431 beyond (request line excluded)
  std::size_t max_fields = 100;              ///< 431 beyond
};

/// Parses one request head at a time; reset() (or a new parse of another buffer) for the next request.
///
///   RequestParser parser;
///   switch (parser.parse(buffer)) {          // buffer: everything read so far, from the request's start
///     case RequestParser::Status::complete: use(parser.head()); drop(parser.head_size()); break;
///     case RequestParser::Status::incomplete: read more; break;
///     case RequestParser::Status::error: answer(parser.error().status); close; break;
///   }
class RequestParser {
 public:
  enum class Status { incomplete, complete, error };

  explicit RequestParser(ParserLimits limits = {}) : limits_(limits) {}

  /// Looks at `buffer`, which holds the request from its first byte (and possibly more after it).
  Status parse(std::string_view buffer);
  const RequestHead& head() const noexcept { return head_; }
  /// Bytes of the buffer the head took, the empty line included (the body starts there).
  std::size_t head_size() const noexcept { return head_size_; }
  const ParseError& error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  Status fail(int status, std::string_view reason) noexcept;
  Status parse_head(std::string_view head);

  ParserLimits limits_;
  std::size_t scanned_ = 0;  // bytes already searched for the end of the head
  std::size_t head_size_ = 0;
  RequestHead head_;
  std::vector<HeaderField> fields_;
  ParseError error_;
};

/// A parsed response head (the client's side). Views into the buffer given to ResponseParser::parse.
struct ResponseHead {
  int status = 0;
  std::string_view reason;
  int version_minor = 1;
  std::span<const HeaderField> fields;
  BodyFraming framing = BodyFraming::none;
  std::uint64_t content_length = 0;
  bool keep_alive = true;  ///< the connection may carry another request
};

/// The response parser, for the client: the same head syntax, the status line instead of the request
/// line, and the response framing rules (RFC 9112 6.3): no body after HEAD, 1xx, 204 and 304; a
/// response with both Transfer-Encoding and Content-Length is refused rather than guessed at. Errors
/// carry status 502 (what a client reports for a malformed upstream answer).
class ResponseParser {
 public:
  using Status = RequestParser::Status;

  explicit ResponseParser(ParserLimits limits = {}) : limits_(limits) {}

  /// `buffer` holds the response from its first byte; `request_was_head`: it answers a HEAD request.
  Status parse(std::string_view buffer, bool request_was_head = false);
  const ResponseHead& head() const noexcept { return head_; }
  std::size_t head_size() const noexcept { return head_size_; }
  const ParseError& error() const noexcept { return error_; }
  void reset() noexcept;

 private:
  Status fail(std::string_view reason, bool over_limit = false) noexcept;

  ParserLimits limits_;
  std::size_t scanned_ = 0;
  std::size_t head_size_ = 0;
  ResponseHead head_;
  std::vector<HeaderField> fields_;
  ParseError error_;
};

/// Undoes chunked transfer coding, incrementally: feed it bytes as they arrive; it hands out the data
/// bytes (views into the input) and says when the last chunk and the trailer section have been read.
/// Chunk extensions are skipped; trailer fields are checked like header fields and dropped.
class ChunkedDecoder {
 public:
  enum class Status { more, done, error };
  struct Result {
    Status status;
    std::size_t consumed;   ///< input bytes used (on done: the rest belongs to the next message)
    std::string_view data;  ///< body bytes found in what was consumed (one chunk's worth at most)
  };

  /// Decodes from the front of `input`. Call again with the unconsumed rest (plus new bytes) until done.
  Result decode(std::string_view input) noexcept;
  std::string_view error() const noexcept { return error_; }

 private:
  enum class State {
    size,
    extension,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer_start,
    trailer_line,
    trailer_lf,
    final_lf
  };
  Result fail(std::string_view reason, std::size_t consumed) noexcept;

  State state_ = State::size;
  std::uint64_t remaining_ = 0;  // data bytes left in the current chunk
  bool size_digits_ = false;     // the size line has at least one digit
  bool in_field_name_ = false;   // in a trailer line, before its colon
  bool field_name_empty_ = true;
  std::size_t line_bytes_ = 0;  // length of the current size or trailer line, bounded
  std::string_view error_;
};

}  // namespace spindle::http
