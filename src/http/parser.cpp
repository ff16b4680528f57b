#include "spindle/http/parser.hpp"

#include <cstring>
#include <limits>

namespace spindle::http {
namespace {

// tchar (RFC 9110 5.6.2): the characters of a token (method, field name).
constexpr bool is_tchar(unsigned char c) noexcept {
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

bool is_token(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (unsigned char c : s)
    if (!is_tchar(c)) return false;
  return true;
}

// field-value characters: VCHAR, SP, HTAB and obs-text; no other controls (CR, LF, NUL among them).
bool is_field_value(std::string_view s) noexcept {
  for (unsigned char c : s)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

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

// Calls `each` with every comma-separated element of a list-valued field, trimmed; empty elements are
// skipped (RFC 9110 5.6.1).
template <class Each>
void for_each_element(std::string_view value, Each each) {
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    const std::string_view element = trim_ows(value.substr(0, comma));
    if (!element.empty()) each(element);
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
}

}  // namespace

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
  error_ = ParseError{status, reason};
  return Status::error;
}

RequestParser::Status RequestParser::parse(std::string_view buffer) {
  // A server should ignore empty lines before a request line (RFC 9112 2.2): a client may send a CRLF
  // after the body of the previous request.
  std::size_t start = 0;
  while (buffer.size() >= start + 2 && buffer[start] == '\r' && buffer[start + 1] == '\n') start += 2;
  // Find the empty line ending the head, looking only at bytes not seen before; every LF must follow a CR.
  std::size_t from = std::max(scanned_, start);
  for (;;) {
    const void* found = std::memchr(buffer.data() + from, '\n', buffer.size() - from);
    if (found == nullptr) break;
    const std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(found) - buffer.data());
    if (lf == start || buffer[lf - 1] != '\r') return fail(400, "line ending without CR");
    if (lf >= start + 3 && buffer[lf - 2] == '\n' && buffer[lf - 3] == '\r') {
      head_size_ = lf + 1;
      return parse_head(buffer.substr(start, head_size_ - start));
    }
    from = lf + 1;
  }
  scanned_ = buffer.size();
  // Incomplete: refuse to wait for a head that is already too large.
  const std::string_view pending = buffer.substr(start);
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
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' || version[5] < '0' ||
      version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "malformed HTTP version");
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) return fail(505, "HTTP version not supported");

  head_ = RequestHead{};
  head_.method_name = method;
  head_.method = method_of(method);
  head_.target = target;
  head_.version_minor = version[7] - '0';

  fields_.clear();
  std::size_t pos = line_end + 2;
  const std::size_t fields_end = head.size() - 2;  // the empty line
  while (pos < fields_end) {
    const std::size_t end = head.find("\r\n", pos);
    const std::string_view field_line = head.substr(pos, end - pos);
    pos = end + 2;
    if (is_ows(field_line.front())) return fail(400, "obsolete line folding");
    const std::size_t colon = field_line.find(':');
    if (colon == std::string_view::npos) return fail(400, "field line without a colon");
    const std::string_view name = field_line.substr(0, colon);
    if (!is_token(name)) return fail(400, "invalid field name");
    const std::string_view value = trim_ows(field_line.substr(colon + 1));
    if (!is_field_value(value)) return fail(400, "invalid character in field value");
    if (fields_.size() == limits_.max_fields) return fail(431, "too many header fields");
    fields_.push_back(HeaderField{name, value});
  }
  head_.fields = fields_;

  // Framing and connection semantics.
  bool has_content_length = false;
  bool has_transfer_encoding = false;
  bool chunked_last = false;
  bool unknown_coding = false;
  bool chunked_not_last = false;
  int hosts = 0;
  bool close = false;
  bool keep_alive_token = false;
  for (const HeaderField& f : fields_) {
    if (iequals(f.name, "content-length")) {
      std::uint64_t length = 0;
      if (f.value.empty()) return fail(400, "invalid Content-Length");
      for (char c : f.value) {
        if (c < '0' || c > '9') return fail(400, "invalid Content-Length");
        if (length > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return fail(400, "Content-Length overflows");
        length = length * 10 + static_cast<std::uint64_t>(c - '0');
      }
      if (has_content_length && length != head_.content_length) return fail(400, "conflicting Content-Length");
      has_content_length = true;
      head_.content_length = length;
    } else if (iequals(f.name, "transfer-encoding")) {
      has_transfer_encoding = true;
      for_each_element(f.value, [&](std::string_view coding) {
        if (chunked_last) chunked_not_last = true;  // something after chunked
        if (iequals(coding, "chunked")) {
          chunked_last = true;
        } else {
          chunked_last = false;
          unknown_coding = true;
        }
      });
    } else if (iequals(f.name, "host")) {
      ++hosts;
      head_.host = f.value;
    } else if (iequals(f.name, "connection")) {
      for_each_element(f.value, [&](std::string_view option) {
        if (iequals(option, "close")) close = true;
        if (iequals(option, "keep-alive")) keep_alive_token = true;
      });
    } else if (iequals(f.name, "expect")) {
      if (!iequals(f.value, "100-continue")) return fail(417, "unsupported expectation");
      head_.expect_continue = true;
    }
  }
  if (has_transfer_encoding) {
    if (head_.version_minor == 0) return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (has_content_length) return fail(400, "both Transfer-Encoding and Content-Length");
    if (chunked_not_last || !chunked_last) return fail(400, "chunked is not the final transfer coding");
    if (unknown_coding) return fail(501, "unsupported transfer coding");
    head_.framing = BodyFraming::chunked;
  } else if (has_content_length) {
    head_.framing = BodyFraming::content_length;
  }
  if (head_.version_minor == 1 && hosts != 1) return fail(400, hosts == 0 ? "missing Host" : "more than one Host");
  if (hosts > 1) return fail(400, "more than one Host");
  head_.keep_alive = head_.version_minor == 1 ? !close : keep_alive_token && !close;
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
        } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
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
        } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
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
