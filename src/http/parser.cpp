#include "spindle/http/parser.hpp"

#include "spindle/http/detail/field_syntax.hpp"

#include <cstring>
#include <limits>

namespace spindle::http {
namespace {

using detail::iequals;
using detail::is_field_value;
using detail::is_tchar;
using detail::is_token;
using detail::is_value_char;

using detail::for_each_element;
using detail::is_ows;
using detail::trim_ows;

Method method_of(std::string_view name) noexcept {
  // Methods are case-sensitive (RFC 9110 9.1).
  if (name == "GET") return Method::get;
  if (name == "HEAD") return Method::head;
  if (name == "POST") return Method::post;
  if (name == "PUT") return Method::put;
  if (name == "DELETE") return Method::del;
  if (name == "CONNECT") return Method::connect;
  if (name == "OPTIONS") return Method::options;
  if (name == "TRACE") return Method::trace;
  if (name == "PATCH") return Method::patch;
  return Method::other;
}

// Looks for the empty line ending a head in buffer[start..], from `from` on; every LF must follow a CR.
// Returns the size of the head up to and including the empty line (from the buffer's start), 0 if it has
// not arrived yet, or npos for a bare LF.
std::size_t find_head_end(std::string_view buffer, std::size_t start, std::size_t from) noexcept {
  for (;;) {
    const void* found = std::memchr(buffer.data() + from, '\n', buffer.size() - from);
    if (found == nullptr) return 0;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - buffer.data());
    if (lf == start || buffer[lf - 1] != '\r') return std::string_view::npos;
    if (lf >= start + 3 && buffer[lf - 2] == '\n' && buffer[lf - 3] == '\r') return lf + 1;
    from = lf + 1;
  }
}

// Splits the field lines of a head (after the start line's CRLF, before the empty line) into views.
// Returns the reason for a malformed line; `too_many` says the limit was the problem.
std::string_view parse_field_lines(std::string_view block, std::vector<HeaderField>& fields, std::size_t max_fields,
                                   bool& too_many) {
  fields.clear();
  too_many = false;
  // One pass per line: the name is scanned with the token table up to its colon, the value located with
  // memchr for its CR (a CR can only end a line: inside a value it is refused). Every line of `block`
  // ends with CRLF (find_head_end refused bare LFs).
  const char* at = block.data();
  const char* const end = at + block.size();
  while (at < end) {
    if (is_ows(*at)) return "obsolete line folding";
    const char* const name_begin = at;
    while (at < end && is_tchar(static_cast<unsigned char>(*at))) ++at;
    const char* const cr = static_cast<const char*>(std::memchr(at, '\r', static_cast<std::size_t>(end - at)));
    if (cr == nullptr) return "field line without a colon";  // not reached: the block ends with CRLF
    if (at == cr) return "field line without a colon";
    if (*at != ':') {
      return std::memchr(at, ':', static_cast<std::size_t>(cr - at)) != nullptr ? "invalid field name"
                                                                                : "field line without a colon";
    }
    if (at == name_begin) return "invalid field name";
    if (cr + 1 == end || cr[1] != '\n') return "invalid character in field value";
    const std::string_view name{name_begin, static_cast<std::size_t>(at - name_begin)};
    const std::string_view value = trim_ows({at + 1, static_cast<std::size_t>(cr - at - 1)});
    if (!is_field_value(value)) return "invalid character in field value";
    if (fields.size() == max_fields) {
      too_many = true;
      return "too many header fields";
    }
    fields.push_back(HeaderField{name, value});
    at = cr + 2;
  }
  return {};
}

// What the fields say about framing and the connection, for requests and responses alike.
struct FieldSummary {
  bool has_content_length = false;
  std::uint64_t content_length = 0;
  bool has_transfer_encoding = false;
  bool chunked_last = false;      // the final coding is chunked
  bool chunked_not_last = false;  // chunked, then something else
  bool unknown_coding = false;
  int hosts = 0;
  std::string_view host;
  bool close = false;
  bool keep_alive = false;
  bool expect_continue = false;
  bool other_expectation = false;
};

// Returns the reason if a Content-Length is malformed or two of them differ.
std::string_view summarize(std::span<const HeaderField> fields, FieldSummary& out) {
  for (const HeaderField& f : fields) {
    if (iequals(f.name, "content-length")) {
      std::uint64_t length = 0;
      if (f.value.empty()) return "invalid Content-Length";
      for (char c : f.value) {
        if (c < '0' || c > '9') return "invalid Content-Length";
        if (length > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return "Content-Length overflows";
        length = length * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (out.has_content_length && length != out.content_length) return "conflicting Content-Length";
      out.has_content_length = true;
      out.content_length = length;
    } else if (iequals(f.name, "transfer-encoding")) {
      out.has_transfer_encoding = true;
      for_each_element(f.value, [&](std::string_view coding) {
        if (out.chunked_last) out.chunked_not_last = true;
        out.chunked_last = iequals(coding, "chunked");
        if (!out.chunked_last) out.unknown_coding = true;
      });
    } else if (iequals(f.name, "host")) {
      ++out.hosts;
      out.host = f.value;
    } else if (iequals(f.name, "connection")) {
      for_each_element(f.value, [&](std::string_view option) {
        if (iequals(option, "close")) out.close = true;
        if (iequals(option, "keep-alive")) out.keep_alive = true;
      });
    } else if (iequals(f.name, "expect")) {
      if (iequals(f.value, "100-continue"))
        out.expect_continue = true;
      else
        out.other_expectation = true;
    }
  }
  return {};
}

// "HTTP/d.d": false if malformed; `supported` for 1.0 and 1.1.
bool parse_version(std::string_view version, int& minor, bool& supported) noexcept {
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return false;
  supported = version[5] == '1' && (version[7] == '0' || version[7] == '1');
  minor = version[7] - '0';
  return true;
}

}  // namespace

std::string_view method_name(Method method) noexcept {
  switch (method) {
    case Method::get:
      return "GET";
    case Method::head:
      return "HEAD";
    case Method::post:
      return "POST";
    case Method::put:
      return "PUT";
    case Method::del:
      return "DELETE";
    case Method::connect:
      return "CONNECT";
    case Method::options:
      return "OPTIONS";
    case Method::trace:
      return "TRACE";
    case Method::patch:
      return "PATCH";
    case Method::other:
      return "";
  }
  return "";
}

std::optional<std::string_view> RequestHead::field(std::string_view name) const noexcept {
  for (const HeaderField& f : fields)
    if (iequals(f.name, name)) return f.value;
  return std::nullopt;
}

void RequestParser::reset() noexcept {
  scanned_ = 0;
  head_size_ = 0;
  head_ = RequestHead{};
  fields_.clear();
  error_ = ParseError{};
}

RequestParser::Status RequestParser::fail(int status, std::string_view reason) noexcept {
  error_ = ParseError{status, reason, status == 414 || status == 431};
  return Status::error;
}

namespace {
// The bytes before the first space (the method, once the line is whole) are token characters (a CR may
// be the start of the line's end). Checked first, for a whole head and a partial one alike, so that a
// head refused for its method gets the same answer however its bytes arrive.
bool method_bytes_valid(std::string_view text) noexcept {
  for (const char c : text.substr(0, text.find(' ')))
    if (!is_tchar(static_cast<unsigned char>(c)) && c != '\r') return false;
  return true;
}
}  // namespace

RequestParser::Status RequestParser::parse(std::string_view buffer) {
  // A server should ignore empty lines before a request line (RFC 9112 2.2): a client may send a CRLF
  // after the body of the previous request.
  std::size_t start = 0;
  while (buffer.size() >= start + 2 && buffer[start] == '\r' && buffer[start + 1] == '\n') start += 2;
  // Find the empty line ending the head, looking only at bytes not seen before.
  const std::size_t end = find_head_end(buffer, start, std::max(scanned_, start));
  if (end == std::string_view::npos) return fail(400, "line ending without CR");
  if (end != 0) {
    head_size_ = end;
    return parse_head(buffer.substr(start, end - start));
  }
  scanned_ = buffer.size();
  // Incomplete: refuse to wait for a head that is already too large, or whose method already has a byte
  // no method may have (a TLS handshake sent to the plain port, say: answer it now, not at the timeout).
  const std::string_view pending = buffer.substr(start);
  if (!method_bytes_valid(pending)) return fail(400, "invalid method");
  const std::size_t line_end = pending.find("\r\n");
  if (line_end == std::string_view::npos) {
    if (pending.size() > limits_.max_request_line) return fail(414, "request line too long");
  } else if (line_end > limits_.max_request_line) {
    return fail(414, "request line too long");
  } else if (pending.size() - line_end - 2 > limits_.max_header_bytes) {
    return fail(431, "header fields too large");
  }
  return Status::incomplete;
}

RequestParser::Status RequestParser::parse_head(std::string_view head) {
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  if (!method_bytes_valid(line)) return fail(400, "invalid method");
  if (line.size() > limits_.max_request_line) return fail(414, "request line too long");
  // The fields and their CRLFs, without the final empty line.
  if (head.size() - line_end - 2 - 2 > limits_.max_header_bytes) return fail(431, "header fields too large");

  // request-line = method SP request-target SP HTTP-version
  const std::size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return fail(400, "malformed request line");
  const std::size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail(400, "malformed request line");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "invalid method");
  if (target.empty()) return fail(400, "empty request target");
  for (unsigned char c : target)
    if (c <= 0x20 || c >= 0x7f) return fail(400, "invalid character in request target");
  int minor = 1;
  bool supported = false;
  if (!parse_version(version, minor, supported)) return fail(400, "malformed HTTP version");
  if (!supported) return fail(505, "HTTP version not supported");

  head_ = RequestHead{};
  head_.method_name = method;
  head_.method = method_of(method);
  head_.target = target;
  head_.version_minor = minor;

  bool too_many = false;
  if (const std::string_view reason = parse_field_lines(head.substr(line_end + 2, head.size() - line_end - 4), fields_,
                                                        limits_.max_fields, too_many);
      !reason.empty())
    return fail(too_many ? 431 : 400, reason);
  head_.fields = fields_;

  FieldSummary summary;
  if (const std::string_view reason = summarize(fields_, summary); !reason.empty()) return fail(400, reason);
  if (summary.other_expectation) return fail(417, "unsupported expectation");
  head_.expect_continue = summary.expect_continue;
  head_.host = summary.host;
  head_.content_length = summary.content_length;
  if (summary.has_transfer_encoding) {
    if (head_.version_minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (summary.has_content_length) return fail(400, "both Transfer-Encoding and Content-Length");
    if (summary.chunked_not_last || !summary.chunked_last) return fail(400, "chunked is not the final transfer coding");
    if (summary.unknown_coding) return fail(501, "unsupported transfer coding");
    head_.framing = BodyFraming::chunked;
  } else if (summary.has_content_length) {
    head_.framing = BodyFraming::content_length;
  }
  if (head_.version_minor == 1 && summary.hosts != 1)
    return fail(400, summary.hosts == 0 ? "missing Host" : "more than one Host");
  if (summary.hosts > 1) return fail(400, "more than one Host");
  head_.keep_alive = head_.version_minor == 1 ? !summary.close : summary.keep_alive && !summary.close;
  return Status::complete;
}

void ResponseParser::reset() noexcept {
  scanned_ = 0;
  head_size_ = 0;
  head_ = ResponseHead{};
  fields_.clear();
  error_ = ParseError{};
}

ResponseParser::Status ResponseParser::fail(std::string_view reason, bool over_limit) noexcept {
  error_ = ParseError{502, reason, over_limit};
  return Status::error;
}

ResponseParser::Status ResponseParser::parse(std::string_view buffer, bool request_was_head) {
  const std::size_t end = find_head_end(buffer, 0, scanned_);
  if (end == std::string_view::npos) return fail("line ending without CR");
  if (end == 0) {
    scanned_ = buffer.size();
    if (buffer.size() > limits_.max_request_line + limits_.max_header_bytes)
      return fail("response head too large", true);
    return Status::incomplete;
  }
  head_size_ = end;
  const std::string_view head = buffer.substr(0, end);
  const std::size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  if (line.size() > limits_.max_request_line) return fail("status line too long", true);
  if (head.size() - line_end - 4 > limits_.max_header_bytes) return fail("header fields too large", true);

  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  int minor = 1;
  bool supported = false;
  if (line.size() < 13 || line[8] != ' ' || line[12] != ' ' || !parse_version(line.substr(0, 8), minor, supported))
    return fail("malformed status line");
  if (!supported) return fail("HTTP version not supported");
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') return fail("malformed status code");
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return fail("malformed status code");
  const std::string_view reason = line.substr(13);
  if (!is_field_value(reason)) return fail("invalid character in reason phrase");

  bool too_many = false;
  if (const std::string_view why = parse_field_lines(head.substr(line_end + 2, head.size() - line_end - 4), fields_,
                                                     limits_.max_fields, too_many);
      !why.empty())
    return fail(why, too_many);
  FieldSummary summary;
  if (const std::string_view why = summarize(fields_, summary); !why.empty()) return fail(why);

  head_ = ResponseHead{};
  head_.status = status;
  head_.reason = reason;
  head_.version_minor = minor;
  head_.fields = fields_;
  head_.content_length = summary.content_length;
  head_.keep_alive = minor == 1 ? !summary.close : summary.keep_alive && !summary.close;
  if (request_was_head || status < 200 || status == 204 || status == 304) {
    head_.framing = BodyFraming::none;
  } else if (summary.has_transfer_encoding) {
    if (summary.has_content_length) return fail("both Transfer-Encoding and Content-Length");
    if (summary.chunked_last && !summary.chunked_not_last && !summary.unknown_coding) {
      head_.framing = BodyFraming::chunked;
    } else {
      head_.framing = BodyFraming::until_close;  // RFC 9112 6.3: the coding is not ours to undo
      head_.keep_alive = false;
    }
  } else if (summary.has_content_length) {
    head_.framing = BodyFraming::content_length;
  } else {
    head_.framing = BodyFraming::until_close;
    head_.keep_alive = false;
  }
  return Status::complete;
}

ChunkedDecoder::Result ChunkedDecoder::fail(std::string_view reason, std::size_t consumed) noexcept {
  error_ = reason;
  return Result{Status::error, consumed, {}};
}

ChunkedDecoder::Result ChunkedDecoder::decode(std::string_view input) noexcept {
  constexpr std::size_t kMaxSizeLine = 1024;      // chunk size and extensions
  constexpr std::size_t kMaxTrailer = 16 * 1024;  // the whole trailer section
  std::size_t i = 0;
  while (i < input.size()) {
    const char c = input[i];
    switch (state_) {
      case State::size: {
        int digit = -1;
        if (c >= '0' && c <= '9') digit = c - '0';
        if (c >= 'a' && c <= 'f') digit = c - 'a' + 10;
        if (c >= 'A' && c <= 'F') digit = c - 'A' + 10;
        if (digit >= 0) {
          if (remaining_ > (std::numeric_limits<std::uint64_t>::max() >> 4)) return fail("chunk size overflows", i);
          remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(digit);
          size_digits_ = true;
        } else if (c == ';' && size_digits_) {
          state_ = State::extension;
        } else if (c == '\r' && size_digits_) {
          state_ = State::size_lf;
        } else {
          return fail("invalid chunk size", i);
        }
        if (++line_bytes_ > kMaxSizeLine) return fail("chunk size line too long", i);
        ++i;
        break;
      }
      case State::extension:
        if (c == '\r') {
          state_ = State::size_lf;
        } else if (!is_value_char(static_cast<unsigned char>(c))) {
          return fail("invalid character in chunk extension", i);
        }
        if (++line_bytes_ > kMaxSizeLine) return fail("chunk size line too long", i);
        ++i;
        break;
      case State::size_lf:
        if (c != '\n') return fail("chunk size line without LF", i);
        ++i;
        line_bytes_ = 0;
        size_digits_ = false;
        state_ = remaining_ == 0 ? State::trailer_start : State::data;
        break;
      case State::data: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - i));
        const std::string_view data = input.substr(i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::data_cr;
        return Result{Status::more, i, data};
      }
      case State::data_cr:
        if (c != '\r') return fail("chunk data longer than its size", i);
        ++i;
        state_ = State::data_lf;
        break;
      case State::data_lf:
        if (c != '\n') return fail("chunk data without CRLF", i);
        ++i;
        state_ = State::size;
        break;
      case State::trailer_start:
        if (c == '\r') {
          state_ = State::final_lf;
        } else if (is_ows(c)) {
          return fail("obsolete line folding in trailer", i);
        } else {
          in_field_name_ = true;
          field_name_empty_ = true;
          state_ = State::trailer_line;
          continue;  // the same byte starts the line
        }
        ++i;
        break;
      case State::trailer_line:
        if (in_field_name_) {
          // Trailer fields are field lines too: a token, a colon, a value.
          if (c == ':' && !field_name_empty_) {
            in_field_name_ = false;
          } else if (!is_tchar(static_cast<unsigned char>(c))) {
            return fail("invalid trailer field name", i);
          }
          field_name_empty_ = false;
        } else if (c == '\r') {
          state_ = State::trailer_lf;
        } else if (!is_value_char(static_cast<unsigned char>(c))) {
          return fail("invalid character in trailer", i);
        }
        if (++line_bytes_ > kMaxTrailer) return fail("trailer section too large", i);
        ++i;
        break;
      case State::trailer_lf:
        if (c != '\n') return fail("trailer line without LF", i);
        ++i;
        state_ = State::trailer_start;
        break;
      case State::final_lf:
        if (c != '\n') return fail("chunked body without final CRLF", i);
        return Result{Status::done, i + 1, {}};
    }
  }
  return Result{Status::more, i, {}};
}

}  // namespace spindle::http
