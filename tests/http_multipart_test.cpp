// multipart/form-data: the parser alone (split at every position, the syntax it accepts and refuses, its
// limits), Multipart over a body that arrives in small pieces, and the extractor in handlers through
// TestClient.

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/http/detail/multipart_parser.hpp"
#include "spindle/spindle.hpp"
#include "support/co_assert.hpp"
#include "support/in_process.hpp"

using namespace spindle;
using namespace spindle::http;
using spindle_test::run;
using namespace std::string_literals;
using namespace std::string_view_literals;
using http::detail::MultipartParser;

namespace {

// ---------------------------------------------------------------------------------------------------
// The parser

struct ParserLimits {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_parts = 100;
};

// What the parser reported, one line per event, with consecutive data pieces joined (how the data is cut
// depends on how the input was): "part NAME[ file=F][ type=T]", "data BYTES", "end", "done",
// "error STATUS: MESSAGE".
std::vector<std::string> parse(std::string_view boundary, const std::vector<std::string_view>& pieces,
                               ParserLimits limits = {}) {
  MultipartParser parser{boundary, limits.max_header_bytes, limits.max_parts};
  std::vector<std::string> events;
  const auto record = [&](const MultipartParser::Step& step) {
    switch (step.event) {
      case MultipartParser::Event::part: {
        std::string line = "part " + parser.part().name;
        if (parser.part().file_name) line += " file=" + *parser.part().file_name;
        if (parser.part().content_type) line += " type=" + *parser.part().content_type;
        events.push_back(std::move(line));
        break;
      }
      case MultipartParser::Event::data:
        EXPECT_FALSE(step.data.empty());
        if (!events.empty() && events.back().starts_with("data "))
          events.back() += step.data;
        else
          events.push_back("data " + std::string{step.data});
        break;
      case MultipartParser::Event::part_end:
        events.push_back("end");
        break;
      case MultipartParser::Event::done:
        events.push_back("done");
        break;
      case MultipartParser::Event::error:
        events.push_back("error " + std::to_string(code(parser.error().status)) + ": " + parser.error().message);
        break;
      case MultipartParser::Event::more:
        ADD_FAILURE() << "more is not an event to record";
        break;
    }
    return step.event == MultipartParser::Event::done || step.event == MultipartParser::Event::error;
  };
  for (std::string_view input : pieces) {
    for (;;) {
      const MultipartParser::Step step = parser.step(input);
      EXPECT_LE(step.consumed, input.size());
      input.remove_prefix(std::min(step.consumed, input.size()));
      if (step.event == MultipartParser::Event::more) {
        EXPECT_TRUE(input.empty()) << "more with input left";
        break;
      }
      if (record(step)) return events;
    }
  }
  record(parser.finish());
  return events;
}

std::vector<std::string> parse_whole(std::string_view boundary, std::string_view body, ParserLimits limits = {}) {
  return parse(boundary, {body}, limits);
}

std::vector<std::string> parse_byte_by_byte(std::string_view boundary, std::string_view body) {
  std::vector<std::string_view> pieces;
  for (std::size_t i = 0; i < body.size(); ++i) pieces.push_back(body.substr(i, 1));
  return parse(boundary, pieces);
}

// Binary data with what looks like the delimiter but is not one: "--XyZ" without the CRLF before it,
// CRLF "--Xy" cut short, CRs before the real delimiter (a failed match restarts on the CR), NUL and 0xFF.
const std::string kBinary = "\x00\x01--XyZ\r\n--Xy\r\n-\r\r\n--X\xff\r\n\r\n--x\r"s;

// A form as a browser sends it, with a preamble and an epilogue to ignore, a text field, a file with a
// quoted (and escaped) name and a content type, transport padding after a boundary, and an empty field.
std::string sample_body() {
  return "preamble, ignored; --XyZ here is not at a line's start\r\n"
         "--XyZ\r\n"
         "Content-Disposition: form-data; name=\"title\"\r\n"
         "\r\n"
         "Hello, world"
         "\r\n--XyZ\r\n"
         "content-disposition: form-data; name=\"upload\"; filename=\"a \\\"quoted\\\" name.txt\"\r\n"
         "Content-Type: application/octet-stream\r\n"
         "X-Ignored: yes\r\n"
         "\r\n" +
         kBinary +
         "\r\n--XyZ \t \r\n"
         "Content-Disposition: form-data; name=empty\r\n"
         "\r\n"
         "\r\n--XyZ--\r\n"
         "epilogue, ignored\r\n--XyZ\r\nnot a part\r\n";
}

const std::vector<std::string> kSampleEvents = {
    "part title",
    "data Hello, world",
    "end",
    "part upload file=a \"quoted\" name.txt type=application/octet-stream",
    "data " + kBinary,
    "end",
    "part empty",
    "end",
    "done",
};

}  // namespace

TEST(MultipartParser, ParsesAFormWithTextAFileAndAnEmptyField) {
  EXPECT_EQ(parse_whole("XyZ", sample_body()), kSampleEvents);
}

TEST(MultipartParser, GivesTheSameEventsHoweverTheBodyIsSplit) {
  const std::string body = sample_body();
  EXPECT_EQ(parse_byte_by_byte("XyZ", body), kSampleEvents);
  for (std::size_t i = 0; i <= body.size(); ++i) {
    const std::string_view all{body};
    ASSERT_EQ(parse("XyZ", {all.substr(0, i), all.substr(i)}), kSampleEvents) << "split at " << i;
  }
  // Three pieces: every pair of split points.
  for (std::size_t i = 0; i <= body.size(); ++i) {
    for (std::size_t j = i; j <= body.size(); ++j) {
      const std::string_view all{body};
      ASSERT_EQ(parse("XyZ", {all.substr(0, i), all.substr(i, j - i), all.substr(j)}), kSampleEvents)
          << "split at " << i << " and " << j;
    }
  }
}

TEST(MultipartParser, DataThatContainsPrefixesOfTheDelimiterIsData) {
  // Each of these is data of a part, whole, at every split.
  const std::vector<std::string> datas = {
      "--XyZ",
      "a--XyZ--",
      "\r\n--Xy",
      "\r\n--XyQ",
      "\r",
      "\r\n",
      "\r\n-",
      "\r\r\r\n--X",
      "x\r\n--XyzZ",
      "\r\n\r\n--Xy",
      "\n--XyZ",
      "--XyZ\r\n",
      std::string(3000, '\r'),
      std::string("\0\r\0\n", 4),
  };
  for (const std::string& data : datas) {
    const std::string body = "--XyZ\r\nContent-Disposition: form-data; name=f\r\n\r\n" + data + "\r\n--XyZ--";
    const std::vector<std::string> expected = {"part f", "data " + data, "end", "done"};
    EXPECT_EQ(parse_whole("XyZ", body), expected) << data;
    EXPECT_EQ(parse_byte_by_byte("XyZ", body), expected) << data;
    for (std::size_t i = 0; i <= body.size(); ++i) {
      const std::string_view all{body};
      ASSERT_EQ(parse("XyZ", {all.substr(0, i), all.substr(i)}), expected) << data << " split at " << i;
    }
  }
}

TEST(MultipartParser, TheFirstBoundaryMayStartTheBody) {
  const std::string body = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--b--";
  const std::vector<std::string> expected = {"part a", "data 1", "end", "done"};
  EXPECT_EQ(parse_whole("b", body), expected);
  EXPECT_EQ(parse_byte_by_byte("b", body), expected);
}

TEST(MultipartParser, AFormWithoutFieldsIsJustTheCloseDelimiter) {
  EXPECT_EQ(parse_whole("b", "--b--\r\n"), std::vector<std::string>{"done"});
  EXPECT_EQ(parse_whole("b", "preamble\r\n--b--"), std::vector<std::string>{"done"});
}

TEST(MultipartParser, QuotedBoundariesAndTheContentType) {
  auto quoted = http::detail::form_data_boundary("multipart/form-data; boundary=\"a b:c?=\"");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(*quoted, "a b:c?=");
  const std::string body = "--a b:c?=\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n--a b:c?=--";
  EXPECT_EQ(parse_whole(*quoted, body), (std::vector<std::string>{"part x", "data v", "end", "done"}));

  EXPECT_EQ(http::detail::form_data_boundary("Multipart/Form-Data;BOUNDARY=abc").value_or(""), "abc");
  EXPECT_EQ(http::detail::form_data_boundary("multipart/form-data ; charset=utf-8; boundary=abc ").value_or(""), "abc");
  EXPECT_EQ(http::detail::form_data_boundary("multipart/form-data; boundary=\"a\\\"b\"").error().status,
            Status::bad_request);  // '"' is not a boundary character
  EXPECT_EQ(http::detail::form_data_boundary("multipart/form-data; boundary=" + std::string(70, 'x')).value_or(""),
            std::string(70, 'x'));

  const auto status_of = [](std::string_view content_type) {
    auto boundary = http::detail::form_data_boundary(content_type);
    return boundary ? Status::ok : boundary.error().status;
  };
  EXPECT_EQ(status_of("text/plain"), Status::unsupported_media_type);
  EXPECT_EQ(status_of("multipart/mixed; boundary=abc"), Status::unsupported_media_type);
  EXPECT_EQ(status_of("multipart/form-data"), Status::unsupported_media_type);
  EXPECT_EQ(status_of("multipart/form-data; charset=utf-8"), Status::unsupported_media_type);
  EXPECT_EQ(status_of("multipart/form-data; boundary="), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary=\"unterminated"), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary=" + std::string(71, 'x')), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary=\"ends with space \""), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary=\"\""), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary=a; boundary=b"), Status::bad_request);
  EXPECT_EQ(status_of("multipart/form-data; boundary = abc"), Status::bad_request);
}

TEST(MultipartParser, FileNames) {
  const auto file_name_of = [](std::string_view disposition) {
    const std::string body = "--b\r\nContent-Disposition: " + std::string{disposition} + "\r\n\r\n\r\n--b--";
    return parse_whole("b", body).front();
  };
  EXPECT_EQ(file_name_of("form-data; name=f; filename=plain.txt"), "part f file=plain.txt");
  EXPECT_EQ(file_name_of("form-data; filename=\"back\\\\slash; semi.txt\"; name=\"f\""),
            "part f file=back\\slash; semi.txt");
  EXPECT_EQ(file_name_of("FORM-DATA; NAME=\"f\"; FileName=\"\""), "part f file=");
  // filename* (RFC 8187), in UTF-8, wins over filename; another charset or a bad escape leaves filename.
  EXPECT_EQ(file_name_of("form-data; name=f; filename=\"fallback.txt\"; filename*=UTF-8''na%C3%AFve%20.txt"),
            "part f file=na\xC3\xAFve .txt");
  EXPECT_EQ(file_name_of("form-data; name=f; filename=\"fallback.txt\"; filename*=iso-8859-1''x.txt"),
            "part f file=fallback.txt");
  EXPECT_EQ(file_name_of("form-data; name=f; filename=\"fallback.txt\"; filename*=UTF-8''bad%zz"),
            "part f file=fallback.txt");
  EXPECT_EQ(file_name_of("form-data; name=\"caf\xC3\xA9\"; filename=\"\xE2\x82\xAC.txt\""),
            "part caf\xC3\xA9 file=\xE2\x82\xAC.txt");
}

TEST(MultipartParser, RefusesMalformedBodiesSayingWhatIsWrong) {
  const std::string field = "Content-Disposition: form-data; name=f\r\n";
  struct Case {
    std::string body;
    std::string_view message;  // a part of the error's message
  };
  const std::vector<Case> cases = {
      {"--b\r\n" + field + "\r\nx\r\n--bx\r\n", "must end with CRLF"},
      {"--b\r\n" + field + "\r\nx\r\n--b-x", "'-' instead of CRLF"},
      {"--b\r\n" + field + "\r\nx\r\n--b\rx", "CR without LF"},
      {"--b\n" + field + "\r\nx\r\n--b--", "must end with CRLF"},
      {"--b\r\nX: a\nb\r\n" + field + "\r\n\r\n--b--", "control character"},  // a bare LF ends no line
      {"--b\r\nContent-Disposition: form-data;\n name=f\r\n\r\n\r\n--b--", "control character"},
      {"--b\r\n" + field + " folded\r\n\r\n\r\n--b--", "obs-fold"},
      {"--b\r\nContent-Disposition form-data\r\n\r\n\r\n--b--", "no colon"},
      {"--b\r\nContent-Disposition : form-data; name=f\r\n\r\n\r\n--b--", "not a token"},
      {"--b\r\nX: a\x01z\r\n" + field + "\r\n\r\n--b--", "control character"},
      {"--b\r\n\r\nno headers\r\n--b--", "no Content-Disposition"},
      {"--b\r\nContent-Type: text/plain\r\n\r\n\r\n--b--", "no Content-Disposition"},
      {"--b\r\nContent-Disposition: attachment; name=f\r\n\r\n\r\n--b--", "not form-data"},
      {"--b\r\nContent-Disposition: form-data; filename=x\r\n\r\n\r\n--b--", "has no name"},
      {"--b\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\n\r\n--b--", "two name parameters"},
      {"--b\r\nContent-Disposition: form-data; name=\"a\r\n\r\n\r\n--b--", "malformed"},
      {"--b\r\nContent-Disposition: form-data; name=a b\r\n\r\n\r\n--b--", "malformed"},
      {"--b\r\n" + field + field + "\r\n\r\n--b--", "two Content-Disposition"},
      {"--b\r\n" + field + "Content-Type: a/b\r\ncontent-type: c/d\r\n\r\n\r\n--b--", "two Content-Type"},
  };
  for (const Case& c : cases) {
    for (const auto& events : {parse_whole("b", c.body), parse_byte_by_byte("b", c.body)}) {
      ASSERT_FALSE(events.empty());
      EXPECT_TRUE(events.back().starts_with("error 400: ")) << c.body << " gave " << events.back();
      EXPECT_NE(events.back().find(c.message), std::string::npos) << c.body << " gave " << events.back();
      EXPECT_EQ(std::count(events.begin(), events.end(), "done"), 0) << c.body;
    }
  }
}

TEST(MultipartParser, ABodyWithoutItsClosingBoundaryIsRefused) {
  const std::string body = sample_body();
  const std::size_t closed = body.find("\r\n--XyZ--") + "\r\n--XyZ--"sv.size();
  for (std::size_t size = 0; size <= body.size(); ++size) {
    const std::string_view prefix = std::string_view{body}.substr(0, size);
    const std::vector<std::string> events = parse_whole("XyZ", prefix);
    ASSERT_FALSE(events.empty());
    if (size >= closed) {
      EXPECT_EQ(events.back(), "done") << size;
    } else {
      EXPECT_TRUE(events.back().starts_with("error 400: the body ends")) << size << ": " << events.back();
      EXPECT_EQ(parse_byte_by_byte("XyZ", prefix).back(), events.back()) << size;
    }
  }
  EXPECT_EQ(parse_whole("b", "").back(), "error 400: the body ends before its first boundary line");
  EXPECT_EQ(parse_whole("b", "--b\r\nContent-Disposition: form-data; name=f\r\n\r\nabc").back(),
            "error 400: the body ends inside a part, without the closing boundary");
}

TEST(MultipartParser, AHeaderBlockOverTheLimitIs431) {
  const std::string line = "Content-Disposition: form-data; name=f\r\n";  // 40 bytes; the block is 42
  const std::string body = "--b\r\n" + line + "\r\ndata\r\n--b--";
  const std::vector<std::string> accepted = {"part f", "data data", "end", "done"};
  EXPECT_EQ(parse_whole("b", body, {.max_header_bytes = 42}), accepted);
  EXPECT_EQ(parse_whole("b", body, {.max_header_bytes = 41}).back(),
            "error 431: a part's header block is larger than 41 bytes");
  // Refused while it arrives, without waiting for its end.
  const std::string endless = "--b\r\n" + line + std::string(100000, 'x');
  EXPECT_EQ(parse_whole("b", endless, {.max_header_bytes = 1024}).back(),
            "error 431: a part's header block is larger than 1024 bytes");
}

TEST(MultipartParser, MoreFieldsThanTheLimitIs413) {
  std::string body;
  for (int i = 0; i < 3; ++i)
    body += "--b\r\nContent-Disposition: form-data; name=f" + std::to_string(i) + "\r\n\r\nv\r\n";
  body += "--b--";
  EXPECT_EQ(parse_whole("b", body, {.max_parts = 3}).back(), "done");
  const std::vector<std::string> refused = parse_whole("b", body, {.max_parts = 2});
  EXPECT_EQ(std::count(refused.begin(), refused.end(), "end"), 2);
  EXPECT_EQ(refused.back(), "error 413: the form has more than 2 fields");
}

// ---------------------------------------------------------------------------------------------------
// Multipart over a body that arrives in pieces

namespace {

/// A body handed out `piece` bytes at a time, each piece in the same buffer (as a connection's is), so a
/// view kept past the next read would show the wrong bytes; it yields before each, as a socket may.
class PiecewiseBody final : public http::detail::BodySource {
 public:
  PiecewiseBody(std::string body, std::size_t piece) : body_(std::move(body)), piece_(piece) {}
  Task<Result<std::string_view, BodyError>> next() override {
    co_await yield_now();
    const std::size_t size = std::min(piece_, body_.size() - at_);
    buffer_.assign(body_, at_, size);
    at_ += size;
    co_return std::string_view{buffer_};
  }

 private:
  std::string body_;
  std::size_t piece_;
  std::size_t at_ = 0;
  std::string buffer_;
};

// Every field as "name[ file=F][ type=T] = DATA (N chunks)", the file read by chunk() and the rest by text().
Task<Result<std::string, Rejection>> describe(Multipart& form) {
  std::string out;
  for (;;) {
    Result<std::optional<MultipartField>, Rejection> next = co_await form.next_field();
    if (!next) co_return Err{std::move(next).error()};
    if (!*next) break;
    MultipartField& field = **next;
    out += std::string{field.name()};
    if (const auto file = field.file_name()) out += " file=" + std::string{*file};
    if (const auto type = field.content_type()) out += " type=" + std::string{*type};
    if (field.file_name()) {
      std::string data;
      int chunks = 0;
      for (;;) {
        Result<std::optional<std::string>, Rejection> chunk = co_await field.chunk();
        if (!chunk) co_return Err{std::move(chunk).error()};
        if (!*chunk) break;
        EXPECT_FALSE((*chunk)->empty());
        data += **chunk;
        ++chunks;
      }
      out += " = " + data + " (" + std::to_string(chunks) + " chunks)";
      // Read to its end, a field has nothing more.
      Result<std::optional<std::string>, Rejection> after = co_await field.chunk();
      EXPECT_TRUE(after && !*after);
    } else {
      Result<std::string, Rejection> text = co_await field.text();
      if (!text) co_return Err{std::move(text).error()};
      out += " = " + *text;
    }
    out += "\n";
  }
  // After the end, still the end.
  Result<std::optional<MultipartField>, Rejection> again = co_await form.next_field();
  EXPECT_TRUE(again && !*again);
  co_return out;
}

}  // namespace

TEST(Multipart, ReadsFieldsFromABodyArrivingInPiecesOfAnySize) {
  run([]() -> Task<void> {
    for (const std::size_t piece : {1, 2, 3, 7, 64, 100000}) {
      PiecewiseBody source{sample_body(), piece};
      RequestBody body{&source, std::nullopt};
      Multipart form{body, "XyZ"};
      Result<std::string, Rejection> described = co_await describe(form);
      CO_ASSERT(described);
      const std::string_view text = *described;
      EXPECT_TRUE(
          text.starts_with("title = Hello, world\nupload file=a \"quoted\" name.txt "
                           "type=application/octet-stream = " +
                           kBinary + " ("))
          << piece << ": " << text;
      EXPECT_TRUE(text.ends_with("chunks)\nempty = \n")) << piece << ": " << text;
    }
  });
}

TEST(Multipart, ATruncatedBodyIsA400NamingTheFieldBeingRead) {
  run([]() -> Task<void> {
    const std::string whole = sample_body();
    PiecewiseBody source{whole.substr(0, whole.find("Hello") + 3), 5};
    RequestBody body{&source, std::nullopt};
    Multipart form{body, "XyZ"};
    Result<std::optional<MultipartField>, Rejection> title = co_await form.next_field();
    CO_ASSERT(title && *title);
    Result<std::string, Rejection> text = co_await (*title)->text();
    CO_ASSERT(!text);
    EXPECT_EQ(text.error().status, Status::bad_request);
    EXPECT_EQ(text.error().message, "the body ends inside a part, without the closing boundary");
    EXPECT_EQ(text.error().field, "title");
    // The failure stays.
    Result<std::optional<MultipartField>, Rejection> next = co_await form.next_field();
    CO_ASSERT(!next);
    EXPECT_EQ(next.error().message, text.error().message);
  });
}

// ---------------------------------------------------------------------------------------------------
// The extractor, in handlers

namespace {

Task<Result<std::string, Rejection>> describe_form(Multipart form) {
  Task<Result<std::string, Rejection>> describing = describe(form);
  Result<std::string, Rejection> described = co_await std::move(describing);
  co_return described;
}

// Reads each field with text() under a small limit.
Task<Result<std::string, Rejection>> small_fields(Multipart form) {
  form.set_limits({.max_field_bytes = 8});
  EXPECT_EQ(form.limits().max_field_bytes, 8u);
  std::string out;
  for (;;) {
    Result<std::optional<MultipartField>, Rejection> next = co_await form.next_field();
    if (!next) co_return Err{std::move(next).error()};
    if (!*next) co_return out;
    Result<std::string, Rejection> text = co_await (*next)->text();
    if (!text) co_return Err{std::move(text).error()};
    out += *text + ";";
  }
}

// Only the names: next_field() skips what a handler does not read, whole or in part.
Task<Result<std::string, Rejection>> names_only(Multipart form) {
  std::string out;
  for (;;) {
    Result<std::optional<MultipartField>, Rejection> next = co_await form.next_field();
    if (!next) co_return Err{std::move(next).error()};
    if (!*next) co_return out;
    out += std::string{(*next)->name()} + ";";
    if ((*next)->name() == "upload") {
      Result<std::optional<std::string>, Rejection> first = co_await (*next)->chunk();  // and leave the rest
      EXPECT_TRUE(first && *first);
    }
  }
}

Router<> routes() {
  return Router<>{}
      .route("/form", post(describe_form))
      .route("/small", post(small_fields))
      .route("/names", post(names_only))
      .route("/optional", post([](std::optional<Multipart> form) -> Task<std::string> {
               co_await yield_now();
               co_return form ? "multipart" : "something else";
             }));
}

Task<Response> send_form(TestClient& client, std::string_view target, std::string_view content_type, std::string body) {
  HeaderMap headers;
  if (!content_type.empty()) headers.set("content-type", content_type);
  Task<Response> sending = client.send(Method::post, target, std::move(headers), std::move(body));
  Response response = co_await std::move(sending);
  co_return response;
}

constexpr std::string_view kFormType = "multipart/form-data; boundary=XyZ";

std::string text_form(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string body;
  for (const auto& [name, value] : fields)
    body += "--XyZ\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
  return body + "--XyZ--\r\n";
}

}  // namespace

TEST(MultipartExtractor, TextFieldsAndAFileStreamedByChunks) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response form = co_await send_form(client, "/form", kFormType, sample_body());
    EXPECT_EQ(form.status, Status::ok);
    EXPECT_EQ(form.body.bytes(),
              "title = Hello, world\nupload file=a \"quoted\" name.txt "
              "type=application/octet-stream = " +
                  kBinary + " (1 chunks)\nempty = \n");
    Response quoted = co_await send_form(client, "/form", "multipart/form-data; boundary=\"a b\"",
                                         "--a b\r\nContent-Disposition: form-data; name=x\r\n\r\ny\r\n--a b--");
    EXPECT_EQ(quoted.body.bytes(), "x = y\n");
    Response names = co_await send_form(client, "/names", kFormType, sample_body());
    EXPECT_EQ(names.body.bytes(), "title;upload;empty;");
    Response optional = co_await send_form(client, "/optional", kFormType, sample_body());
    EXPECT_EQ(optional.body.bytes(), "multipart");
  });
}

TEST(MultipartExtractor, WithoutAMultipartContentTypeIs415) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response plain = co_await send_form(client, "/form", "text/plain", "hello");
    EXPECT_EQ(plain.status, Status::unsupported_media_type);
    EXPECT_EQ(plain.body.bytes(), R"({"error":"the content type must be multipart/form-data"})");
    // The bodies go to named locals: GCC 12 cannot compile an initializer list inside a co_await
    // expression ("array used as initializer").
    const std::string form = text_form({{"a", "b"}});
    Response none = co_await send_form(client, "/form", "", form);
    EXPECT_EQ(none.status, Status::unsupported_media_type);
    Response no_boundary = co_await send_form(client, "/form", "multipart/form-data", form);
    EXPECT_EQ(no_boundary.status, Status::unsupported_media_type);
    EXPECT_EQ(no_boundary.body.bytes(), R"({"error":"multipart/form-data needs a boundary parameter"})");
    Response bad_boundary = co_await send_form(client, "/form", "multipart/form-data; boundary=\"a\\\"b\"", form);
    EXPECT_EQ(bad_boundary.status, Status::bad_request);
    Response optional = co_await send_form(client, "/optional", "application/json", "{}");
    EXPECT_EQ(optional.body.bytes(), "something else");
  });
}

TEST(MultipartExtractor, AFieldOverTheLimitIs413NamingIt) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    const std::string fitting = text_form({{"a", "12345678"}, {"b", ""}});
    const std::string too_big = text_form({{"a", "1"}, {"big", "123456789"}});
    Response fits = co_await send_form(client, "/small", kFormType, fitting);
    EXPECT_EQ(fits.status, Status::ok);
    EXPECT_EQ(fits.body.bytes(), "12345678;;");
    Response over = co_await send_form(client, "/small", kFormType, too_big);
    EXPECT_EQ(over.status, Status::payload_too_large);
    EXPECT_EQ(over.body.bytes(), R"({"error":"the field is larger than 8 bytes","field":"big"})");
  });
}

TEST(MultipartExtractor, AMalformedBodyIs400) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    std::string truncated = text_form({{"a", "b"}});
    truncated.resize(truncated.size() - "--\r\n"sv.size());  // "--XyZ" without its "--"
    Response unfinished = co_await send_form(client, "/form", kFormType, truncated);
    EXPECT_EQ(unfinished.status, Status::bad_request);
    EXPECT_EQ(unfinished.body.bytes(), R"({"error":"the body ends without the closing boundary","field":"a"})");
    Response empty = co_await send_form(client, "/form", kFormType, "");
    EXPECT_EQ(empty.status, Status::bad_request);
    EXPECT_EQ(empty.body.bytes(), R"({"error":"the body ends before its first boundary line"})");
    Response no_name =
        co_await send_form(client, "/form", kFormType, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--");
    EXPECT_EQ(no_name.status, Status::bad_request);
    EXPECT_EQ(no_name.body.bytes(), R"({"error":"a part's Content-Disposition has no name"})");
    const std::string not_utf8 = text_form({{"t", "\xFF"}});
    Response bad_text = co_await send_form(client, "/form", kFormType, not_utf8);
    EXPECT_EQ(bad_text.status, Status::bad_request);
    EXPECT_EQ(bad_text.body.bytes(), R"({"error":"the field is not valid UTF-8","field":"t"})");
    const std::string name_not_utf8 = text_form({{"\xFF", "x"}});
    Response bad_name = co_await send_form(client, "/form", kFormType, name_not_utf8);
    EXPECT_EQ(bad_name.status, Status::bad_request);
    EXPECT_EQ(bad_name.body.bytes(), R"({"error":"a field name is not valid UTF-8"})");
    Response junk = co_await send_form(client, "/form", kFormType,
                                       "--XyZ\r\nContent-Disposition: form-data; name=t\r\n\r\nx\r\n--XyZjunk");
    EXPECT_EQ(junk.status, Status::bad_request);
    EXPECT_NE(junk.body.bytes().find("\"field\":\"t\""), std::string_view::npos) << junk.body.bytes();
  });
}
