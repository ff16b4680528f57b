// Fuzzes the HTTP/1.1 request and response parsers and the chunked decoder. Besides the sanitizers'
// checks, two oracles: a head fed in two pieces must parse exactly as the whole, and a chunked body
// decoded a byte at a time must give the same data and outcome as decoded at once.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spindle/http/parser.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

void fuzz_request(std::string_view input, std::size_t split) {
  spindle::http::RequestParser whole;
  const auto expected = whole.parse(input);
  spindle::http::RequestParser pieces;
  auto status = pieces.parse(input.substr(0, split));
  if (status == spindle::http::RequestParser::Status::incomplete) status = pieces.parse(input);
  check(status == expected);
  if (status == spindle::http::RequestParser::Status::complete) {
    check(pieces.head_size() == whole.head_size() && whole.head_size() <= input.size());
    check(pieces.head().fields.size() == whole.head().fields.size());
    check(pieces.head().framing == whole.head().framing);
    check(pieces.head().content_length == whole.head().content_length);
    for (const auto& field : whole.head().fields) {
      check(field.name.data() >= input.data() && field.name.data() + field.name.size() <= input.data() + input.size());
    }
  } else if (status == spindle::http::RequestParser::Status::error) {
    check(whole.error().status == pieces.error().status);
  }
}

void fuzz_response(std::string_view input, std::size_t split, bool request_was_head) {
  spindle::http::ResponseParser whole;
  const auto expected = whole.parse(input, request_was_head);
  spindle::http::ResponseParser pieces;
  auto status = pieces.parse(input.substr(0, split), request_was_head);
  if (status == spindle::http::ResponseParser::Status::incomplete) status = pieces.parse(input, request_was_head);
  check(status == expected);
  if (status == spindle::http::ResponseParser::Status::complete) {
    check(pieces.head_size() == whole.head_size() && whole.head_size() <= input.size());
    check(pieces.head().status == whole.head().status && whole.head().status >= 100 && whole.head().status <= 999);
    check(pieces.head().framing == whole.head().framing);
  }
}

struct Decoded {
  std::string data;
  spindle::http::ChunkedDecoder::Status status;
  std::size_t consumed = 0;
};

Decoded decode(std::string_view input, std::size_t step) {
  spindle::http::ChunkedDecoder decoder;
  Decoded out{{}, spindle::http::ChunkedDecoder::Status::more, 0};
  std::size_t available = 0;
  while (true) {
    available = std::min(input.size(), available + step);
    const auto r = decoder.decode(input.substr(out.consumed, available - out.consumed));
    out.data += r.data;
    out.consumed += r.consumed;
    out.status = r.status;
    if (r.status != spindle::http::ChunkedDecoder::Status::more) return out;
    if (available == input.size() && r.consumed == 0) return out;
  }
}

void fuzz_chunked(std::string_view input) {
  const Decoded at_once = decode(input, input.size() + 1);
  const Decoded byte_by_byte = decode(input, 1);
  check(at_once.status == byte_by_byte.status);
  if (at_once.status != spindle::http::ChunkedDecoder::Status::error) {
    check(at_once.data == byte_by_byte.data);
    check(at_once.consumed == byte_by_byte.consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The first byte picks the mode and the split point; the rest is the message.
  const std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t split = data[0] % (input.size() + 1);
  switch (data[0] % 3) {
    case 0:
      fuzz_request(input, split);
      break;
    case 1:
      fuzz_chunked(input);
      break;
    default:
      fuzz_response(input, split, (data[0] & 8) != 0);
      break;
  }
  return 0;
}
