// Parses requests with Spindle's RequestParser and ChunkedDecoder and prints what it made of each, for
// http_parser_differential_test.py, which gives the same bytes to a parser that is not ours (h11) and
// compares.
//
// Input on stdin: cases, each a 4-byte big-endian length and that many bytes (one request, or several
// pipelined, or garbage). Output on stdout: one JSON object per case, byte strings in hex:
//   {"outcome":"error","status":400,"reason":"..."}
//   {"outcome":"incomplete"}
//   {"outcome":"complete","method":"..","target":"..","version":1,"headers":[["..",".."]],
//    "body_outcome":"complete|incomplete|error","body":"..","rest":N}
// where rest is the number of bytes after the first message (the start of a pipelined one).
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>
#include <string_view>

#include "spindle/http/parser.hpp"

namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    out += kDigits[static_cast<unsigned char>(c) >> 4];
    out += kDigits[static_cast<unsigned char>(c) & 15];
  }
  return out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned char>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe(std::string_view input) {
  using spindle::http::BodyFraming;
  using spindle::http::ChunkedDecoder;
  using spindle::http::RequestParser;
  RequestParser parser;
  const RequestParser::Status status = parser.parse(input);
  if (status == RequestParser::Status::error) {
    return "{\"outcome\":\"error\",\"status\":" + std::to_string(parser.error().status) +
           ",\"reason\":" + json_string(parser.error().reason) + "}";
  }
  if (status == RequestParser::Status::incomplete) return "{\"outcome\":\"incomplete\"}";

  const auto& head = parser.head();
  std::string out = "{\"outcome\":\"complete\",\"method\":\"" + hex(head.method_name) + "\",\"target\":\"" +
                    hex(head.target) + "\",\"version\":" + std::to_string(head.version_minor) + ",\"headers\":[";
  for (std::size_t i = 0; i < head.fields.size(); ++i) {
    if (i > 0) out += ',';
    out += "[\"" + hex(head.fields[i].name) + "\",\"" + hex(head.fields[i].value) + "\"]";
  }
  out += "]";

  std::string_view after = input.substr(parser.head_size());
  std::string body;
  std::string body_outcome = "complete";
  if (head.framing == BodyFraming::content_length) {
    if (after.size() < head.content_length) {
      body_outcome = "incomplete";
    } else {
      body = after.substr(0, head.content_length);
      after.remove_prefix(head.content_length);
    }
  } else if (head.framing == BodyFraming::chunked) {
    ChunkedDecoder decoder;
    for (;;) {
      const ChunkedDecoder::Result r = decoder.decode(after);
      body += r.data;
      after.remove_prefix(r.consumed);
      if (r.status == ChunkedDecoder::Status::done) break;
      if (r.status == ChunkedDecoder::Status::error) {
        body_outcome = "error";
        break;
      }
      if (r.consumed == 0) {
        body_outcome = "incomplete";
        break;
      }
    }
  }
  out += ",\"body_outcome\":\"" + body_outcome + "\",\"body\":\"" + hex(body) + "\"";
  if (body_outcome == "complete") out += ",\"rest\":" + std::to_string(after.size());
  return out + "}";
}

}  // namespace

int main() {
  const std::string input{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  std::string_view rest = input;
  while (rest.size() >= 4) {
    const std::size_t size = (static_cast<std::size_t>(static_cast<unsigned char>(rest[0])) << 24) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(rest[1])) << 16) |
                             (static_cast<std::size_t>(static_cast<unsigned char>(rest[2])) << 8) |
                             static_cast<std::size_t>(static_cast<unsigned char>(rest[3]));
    rest.remove_prefix(4);
    if (size > rest.size()) return 2;
    std::cout << describe(rest.substr(0, size)) << '\n';
    rest.remove_prefix(size);
  }
  return rest.empty() ? 0 : 2;
}
