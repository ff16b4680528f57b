// The HTTP/1.1 request parser and the chunked decoder: what they accept, what they refuse and with which
// status (the smuggling vectors of RFC 9112 among them), and that feeding bytes one at a time changes
// nothing.
#include "spindle/http/parser.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using spindle::http::BodyFraming;
using spindle::http::ChunkedDecoder;
using spindle::http::Method;
using spindle::http::ParserLimits;
using spindle::http::RequestParser;
using spindle::http::ResponseParser;

namespace {

TEST(HttpParser, ParsesARequestHeadWithViewsIntoTheBuffer) {
  const std::string request =
      "POST /users?x=1 HTTP/1.1\r\nHost: example.com\r\nContent-Type:  application/json \r\n"
      "Content-Length: 13\r\n\r\n{\"name\":\"x\"}!";
  RequestParser parser;
  ASSERT_EQ(parser.parse(request), RequestParser::Status::complete);
  const auto& head = parser.head();
  EXPECT_EQ(head.method, Method::post);
  EXPECT_EQ(head.target, "/users?x=1");
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.fields.size(), 3u);
  EXPECT_EQ(head.fields[1].name, "Content-Type");
  EXPECT_EQ(head.fields[1].value, "application/json");  // surrounding whitespace trimmed
  EXPECT_EQ(head.field("content-type"), "application/json");
  EXPECT_EQ(head.framing, BodyFraming::content_length);
  EXPECT_EQ(head.content_length, 13u);
  EXPECT_EQ(head.host, "example.com");
  EXPECT_TRUE(head.keep_alive);
  EXPECT_EQ(request.substr(parser.head_size()), "{\"name\":\"x\"}!");
  EXPECT_GE(head.target.data(), request.data());  // a view, not a copy
  EXPECT_LT(head.target.data(), request.data() + request.size());
}

TEST(HttpParser, ConnectionSemanticsPerVersion) {
  struct Case {
    std::string request;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, Close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    RequestParser parser;
    ASSERT_EQ(parser.parse(c.request), RequestParser::Status::complete) << c.request;
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << c.request;
  }
}

TEST(HttpParser, ChunkedExpectAndLeadingEmptyLines) {
  RequestParser parser;
  const std::string request =
      "\r\nPUT /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
  ASSERT_EQ(parser.parse(request), RequestParser::Status::complete);
  EXPECT_EQ(parser.head().framing, BodyFraming::chunked);
  EXPECT_TRUE(parser.head().expect_continue);
  EXPECT_EQ(parser.head_size(), request.size());
}

// Each request with the status it must get. A server that accepted any of the framing cases could be
// made to see a different request boundary than a proxy in front of it.
TEST(HttpParser, RefusesMalformedAndAmbiguousRequests) {
  struct Case {
    std::string request;
    int status;
  };
  const std::string big_target(9000, 'a');
  const std::vector<Case> cases = {
      // framing (smuggling)
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n", 400},  // space before colon
      {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\x0b"
       "chunked\r\n\r\n",
       400},
      {"POST / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked\r\n\r\n", 400},  // obs-fold
      {"POST / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400},                   // obs-fold
      // line ends and characters
      {"GET / HTTP/1.1\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400},
      {std::string("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n", 35), 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nBad[name]: v\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n", 400},
      {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400},
      {"GET / http/1.1\r\nHost: h\r\n\r\n", 400},
      {"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", 400},
      {"GET /\r\nHost: h\r\n\r\n", 400},
      // version and Host
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", 417},
      // limits
      {"GET /" + big_target + " HTTP/1.1\r\nHost: h\r\n\r\n", 414},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'v') + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    RequestParser parser;
    EXPECT_EQ(parser.parse(c.request), RequestParser::Status::error) << c.request;
    EXPECT_EQ(parser.error().status, c.status) << c.request << " -> " << parser.error().reason;
    EXPECT_FALSE(parser.error().reason.empty());
  }
}

// A method byte no method may have is refused at once, before the line ends: a TLS handshake sent to
// the plain port gets its 400 now, not at the header timeout. A head with a bad method gets the same
// answer whole or in pieces, and before the size checks.
TEST(HttpParser, ABadMethodByteIsRefusedBeforeTheLineEnds) {
  const std::string_view client_hello{"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11};
  RequestParser parser;
  EXPECT_EQ(parser.parse(client_hello), RequestParser::Status::error);
  EXPECT_EQ(parser.error().status, 400);
  EXPECT_EQ(parser.error().reason, "invalid method");

  RequestParser partial;
  EXPECT_EQ(partial.parse("GET"), RequestParser::Status::incomplete);  // so far, a method
  EXPECT_EQ(partial.parse("GET\r"), RequestParser::Status::incomplete);

  const std::string too_long = "G(T /" + std::string(10'000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  RequestParser whole;
  EXPECT_EQ(whole.parse(too_long), RequestParser::Status::error);
  EXPECT_EQ(whole.error().status, 400) << "the method is judged before the line's length";
}

TEST(HttpParser, TooManyFieldsIs431) {
  std::string request = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 100; ++i) request += "X" + std::to_string(i) + ": v\r\n";
  request += "\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.parse(request), RequestParser::Status::error);
  EXPECT_EQ(parser.error().status, 431);
}

// A head that never ends is refused as soon as it passes the limit, not when it is complete.
TEST(HttpParser, RefusesAnOversizedHeadBeforeItEnds) {
  RequestParser parser;
  EXPECT_EQ(parser.parse("GET /" + std::string(9000, 'a')), RequestParser::Status::error);
  EXPECT_EQ(parser.error().status, 414);
  RequestParser second;
  EXPECT_EQ(second.parse("GET / HTTP/1.1\r\nX: " + std::string(17000, 'a')), RequestParser::Status::error);
  EXPECT_EQ(second.error().status, 431);
}

// Fed one byte more at a time, the parser says incomplete until the last byte, then the same as at once.
TEST(HttpParser, IncrementalFeedingGivesTheSameResult) {
  const std::vector<std::string> requests = {
      "GET /a HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\n",
      "\r\n\r\nPOST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
      "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n",
  };
  for (const std::string& request : requests) {
    RequestParser whole;
    const auto expected = whole.parse(request);
    RequestParser parser;
    RequestParser::Status status = RequestParser::Status::incomplete;
    std::size_t fed = 0;
    while (status == RequestParser::Status::incomplete && fed < request.size()) {
      ++fed;
      status = parser.parse(std::string_view(request).substr(0, fed));
    }
    EXPECT_EQ(status, expected) << request;
    if (status == RequestParser::Status::complete) {
      EXPECT_EQ(parser.head_size(), whole.head_size());
      EXPECT_EQ(parser.head().target, std::string_view(request).substr(whole.head().target.data() - request.data(),
                                                                       whole.head().target.size()));
    }
  }
}

// Decodes `body` fed in pieces of `piece` bytes; returns the data, or "ERROR" / "INCOMPLETE".
std::string decode_chunked(const std::string& body, std::size_t piece, std::size_t* leftover = nullptr) {
  ChunkedDecoder decoder;
  std::string data;
  std::string pending;
  std::size_t next = 0;
  for (;;) {
    if (next < body.size()) {
      pending += body.substr(next, piece);
      next += piece;
    }
    for (;;) {
      const auto r = decoder.decode(pending);
      data += r.data;
      pending.erase(0, r.consumed);
      if (r.status == ChunkedDecoder::Status::error) return "ERROR";
      if (r.status == ChunkedDecoder::Status::done) {
        if (leftover != nullptr) *leftover = pending.size() + (next < body.size() ? body.size() - next : 0);
        return data;
      }
      if (r.consumed == 0 || pending.empty()) break;
    }
    if (next >= body.size() && (pending.empty() || decoder.decode(pending).consumed == 0)) return "INCOMPLETE";
  }
}

TEST(HttpParser, ChunkedBodiesDecodeInAnyPieces) {
  const std::string body = "5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\nNEXT";
  for (std::size_t piece = 1; piece <= body.size(); ++piece) {
    std::size_t leftover = 0;
    EXPECT_EQ(decode_chunked(body, piece, &leftover), "hello, world0123456789") << piece;
    EXPECT_EQ(leftover, 4u) << piece;  // "NEXT" belongs to the next request
  }
}

TEST(HttpParser, ChunkedDecoderRefusesMalformedFraming) {
  const std::vector<std::string> bad = {
      "g\r\nx\r\n0\r\n\r\n",              // not hex
      "\r\n",                             // no size
      "-1\r\nx\r\n0\r\n\r\n",             // sign
      " 5\r\nhello\r\n0\r\n\r\n",         // whitespace
      "5\nhello\r\n0\r\n\r\n",            // bare LF
      "5\r\nhello!\r\n0\r\n\r\n",         // more data than the size
      "5\r\nhelloXY0\r\n\r\n",            // no CRLF after data
      "10000000000000000\r\n",            // 2^64: overflows
      "0\r\n Trailer: folded\r\n\r\n",    // obs-fold in the trailer
      "0\r\nBad Name: v\r\n\r\n",         // invalid trailer name
      "0\r\nX: a\x01b\r\n\r\n",           // control in a trailer value
      "0\r\n\rX",                         // no final LF
      "5;ext\x01\r\nhello\r\n0\r\n\r\n",  // control in an extension
  };
  for (const std::string& body : bad) EXPECT_EQ(decode_chunked(body, body.size()), "ERROR") << body;
  EXPECT_EQ(decode_chunked("5\r\nhel", 100), "INCOMPLETE");
}

}  // namespace

namespace {

TEST(HttpParser, ParsesResponsesAndTheirFraming) {
  struct Case {
    std::string response;
    bool request_was_head;
    int status;
    BodyFraming framing;
    bool keep_alive;
  };
  const std::vector<Case> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, BodyFraming::content_length, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, 200, BodyFraming::chunked, true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, 200, BodyFraming::none, true},  // HEAD
      {"HTTP/1.1 204 No Content\r\n\r\n", false, 204, BodyFraming::none, true},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n", false, 304, BodyFraming::none, true},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, 100, BodyFraming::none, true},
      {"HTTP/1.1 200 OK\r\n\r\n", false, 200, BodyFraming::until_close, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 200, BodyFraming::until_close, false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, BodyFraming::content_length, false},
      {"HTTP/1.1 404 \r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false, 404, BodyFraming::content_length,
       false},
  };
  for (const Case& c : cases) {
    ResponseParser parser;
    ASSERT_EQ(parser.parse(c.response, c.request_was_head), ResponseParser::Status::complete) << c.response;
    EXPECT_EQ(parser.head().status, c.status) << c.response;
    EXPECT_EQ(parser.head().framing, c.framing) << c.response;
    EXPECT_EQ(parser.head().keep_alive, c.keep_alive) << c.response;
  }
  ResponseParser parser;
  ASSERT_EQ(parser.parse("HTTP/1.1 201 Created\r\nLocation: /users/7\r\n\r\n"), ResponseParser::Status::complete);
  EXPECT_EQ(parser.head().reason, "Created");
  EXPECT_EQ(parser.head().fields[0].value, "/users/7");
}

TEST(HttpParser, RefusesMalformedResponses) {
  const std::vector<std::string> bad = {
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",  // smuggling / splitting
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "HTTP/1.1 200\r\n\r\n",  // the SP after the code is required
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 abc OK\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\nX: y\r\n\r\n",
      "HTTP/1.1 200 OK\r\n X: folded\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
  };
  for (const std::string& response : bad) {
    ResponseParser parser;
    EXPECT_EQ(parser.parse(response), ResponseParser::Status::error) << response;
    EXPECT_EQ(parser.error().status, 502);
  }
  ResponseParser parser;
  EXPECT_EQ(parser.parse("HTTP/1.1 200 OK\r\nContent-"), ResponseParser::Status::incomplete);
}

}  // namespace

TEST(HttpParser, SaysWhenALimitWasTheReason) {
  RequestParser requests;
  ASSERT_EQ(requests.parse("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n"),
            RequestParser::Status::error);
  EXPECT_EQ(requests.error().status, 414);
  EXPECT_TRUE(requests.error().over_limit);
  requests.reset();
  ASSERT_EQ(requests.parse("GET / HTTP/1.1\r\nHost x\r\n\r\n"), RequestParser::Status::error);
  EXPECT_FALSE(requests.error().over_limit);

  ResponseParser responses(ParserLimits{.max_request_line = 8192, .max_header_bytes = 64, .max_fields = 100});
  ASSERT_EQ(responses.parse("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'v') + "\r\n\r\n"),
            ResponseParser::Status::error);
  EXPECT_EQ(responses.error().status, 502);
  EXPECT_TRUE(responses.error().over_limit);
  responses.reset();
  ASSERT_EQ(responses.parse("HTTP/1.1 2x0 OK\r\n\r\n"), ResponseParser::Status::error);
  EXPECT_FALSE(responses.error().over_limit);
}
