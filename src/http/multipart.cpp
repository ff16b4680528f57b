// The Multipart extractor: the multipart parser driven by the request body, read as the handler asks.

#include "spindle/http/multipart.hpp"

#include <stdexcept>
#include <utility>

#include "spindle/http/detail/multipart_parser.hpp"
#include "spindle/text/utf8.hpp"

namespace spindle::http {
namespace detail {

/// What a Multipart and its fields share: the body, the parser, and where the reading stands.
struct MultipartReader {
  MultipartReader(RequestBody& request_body, std::string_view boundary, MultipartLimits multipart_limits)
      : body(&request_body),
        parser(boundary, multipart_limits.max_header_bytes, multipart_limits.max_fields),
        limits(multipart_limits) {}

  RequestBody* body;
  MultipartParser parser;
  MultipartLimits limits;
  std::string_view input;  // what the parser has not used of the body's last piece (valid until the next)
  bool body_ended = false;
  bool finished = false;             // the close delimiter was read
  std::size_t field_index = 0;       // the current field's, counted from 1
  bool field_open = false;           // the current field's data has not all been read
  std::string field_name;            // the current field's, for rejections
  std::optional<Rejection> failure;  // a malformed or unreadable body stays so: every later read says why
};

}  // namespace detail

namespace {

using detail::MultipartParser;
using detail::MultipartReader;
using Event = MultipartParser::Event;

/// The parser's next event other than Event::more, reading the body when the parser needs more of it.
/// Event::data's view is valid until the next call.
Task<Result<MultipartParser::Step, Rejection>> pull(MultipartReader& reader) {
  for (;;) {
    if (reader.failure) co_return Err{*reader.failure};
    const MultipartParser::Step step = reader.body_ended ? reader.parser.finish() : reader.parser.step(reader.input);
    reader.input.remove_prefix(step.consumed);
    if (step.event == Event::error) {
      const detail::MultipartError& error = reader.parser.error();
      reader.failure = Rejection{error.status, error.message, reader.field_open ? reader.field_name : ""};
      co_return Err{*reader.failure};
    }
    if (step.event != Event::more) co_return step;
    // Event::more means the parser used all of the last piece, so nothing still points into it.
    Task<Result<std::string_view, BodyError>> reading = reader.body->next();
    Result<std::string_view, BodyError> piece = co_await std::move(reading);
    if (!piece) {
      reader.failure = Rejection{piece.error().status, std::move(piece.error().message), ""};
      co_return Err{*reader.failure};
    }
    if (piece->empty()) reader.body_ended = true;
    reader.input = *piece;
  }
}

}  // namespace

Multipart::Multipart(RequestBody& body, std::string_view boundary, MultipartLimits limits)
    : reader_(std::make_unique<MultipartReader>(body, boundary, limits)) {}
Multipart::Multipart(Multipart&&) noexcept = default;
Multipart& Multipart::operator=(Multipart&&) noexcept = default;
Multipart::~Multipart() = default;

void Multipart::set_limits(MultipartLimits limits) noexcept {
  reader_->limits = limits;
  reader_->parser.set_limits(limits.max_header_bytes, limits.max_fields);
}

const MultipartLimits& Multipart::limits() const noexcept { return reader_->limits; }

Task<Result<std::optional<MultipartField>, Rejection>> Multipart::next_field() {
  MultipartReader& reader = *reader_;
  if (reader.failure) co_return Err{*reader.failure};
  if (reader.finished) co_return std::optional<MultipartField>{};
  // What the handler left of the current field is read and dropped: the next field comes after it.
  while (reader.field_open) {
    Task<Result<MultipartParser::Step, Rejection>> pulling = pull(reader);
    Result<MultipartParser::Step, Rejection> step = co_await std::move(pulling);
    if (!step) co_return Err{std::move(step).error()};
    if (step->event == Event::part_end) reader.field_open = false;
  }
  Task<Result<MultipartParser::Step, Rejection>> pulling = pull(reader);
  Result<MultipartParser::Step, Rejection> step = co_await std::move(pulling);
  if (!step) co_return Err{std::move(step).error()};
  if (step->event == Event::done) {
    reader.finished = true;
    co_return std::optional<MultipartField>{};
  }
  if (step->event != Event::part) throw std::logic_error("multipart parser: data outside a part");
  const detail::PartHead& head = reader.parser.part();
  // Names are text to a handler, as Path and Query values are (url.hpp).
  if (!utf8::is_valid(head.name)) {
    reader.failure = Rejection{Status::bad_request, "a field name is not valid UTF-8", ""};
    co_return Err{*reader.failure};
  }
  if (head.file_name && !utf8::is_valid(*head.file_name)) {
    reader.failure = Rejection{Status::bad_request, "the file name is not valid UTF-8", head.name};
    co_return Err{*reader.failure};
  }
  ++reader.field_index;
  reader.field_open = true;
  reader.field_name = head.name;
  co_return std::optional<MultipartField>{
      MultipartField{&reader, reader.field_index, head.name, head.file_name, head.content_type}};
}

Task<Result<std::optional<std::string>, Rejection>> MultipartField::chunk() {
  MultipartReader& reader = *reader_;
  // A field the reading has moved past has ended, even if a later field failed.
  if (reader.field_index != index_ || !reader.field_open) co_return std::optional<std::string>{};
  Task<Result<MultipartParser::Step, Rejection>> pulling = pull(reader);
  Result<MultipartParser::Step, Rejection> step = co_await std::move(pulling);
  if (!step) co_return Err{std::move(step).error()};
  if (step->event == Event::part_end) {
    reader.field_open = false;
    co_return std::optional<std::string>{};
  }
  co_return std::optional<std::string>{std::string{step->data}};
}

Task<Result<std::string, Rejection>> MultipartField::bytes() {
  MultipartReader& reader = *reader_;
  std::string all;
  // Appends the parser's views directly rather than through chunk(), which would copy each piece twice.
  while (reader.field_index == index_ && reader.field_open) {
    Task<Result<MultipartParser::Step, Rejection>> pulling = pull(reader);
    Result<MultipartParser::Step, Rejection> step = co_await std::move(pulling);
    if (!step) co_return Err{std::move(step).error()};
    if (step->event == Event::part_end) {
      reader.field_open = false;
      break;
    }
    if (step->data.size() > reader.limits.max_field_bytes - all.size())
      co_return Err{Rejection{Status::payload_too_large,
                              "the field is larger than " + std::to_string(reader.limits.max_field_bytes) + " bytes",
                              name_}};
    all.append(step->data);
  }
  co_return std::move(all);
}

Task<Result<std::string, Rejection>> MultipartField::text() {
  Task<Result<std::string, Rejection>> reading = bytes();
  Result<std::string, Rejection> all = co_await std::move(reading);
  if (!all) co_return std::move(all);
  if (!utf8::is_valid(*all)) co_return Err{Rejection{Status::bad_request, "the field is not valid UTF-8", name_}};
  co_return std::move(all);
}

Task<Result<Multipart, Rejection>> Extract<Multipart>::from_request(Request& request) {
  const std::optional<std::string_view> content_type = request.header("content-type");
  if (!content_type)
    co_return Err{Rejection{Status::unsupported_media_type, "the content type must be multipart/form-data", ""}};
  Result<std::string, detail::MultipartError> boundary = detail::form_data_boundary(*content_type);
  if (!boundary) co_return Err{Rejection{boundary.error().status, std::move(boundary.error().message), ""}};
  // The Multipart keeps a pointer to the request's body. That is safe because a handler that takes a
  // body extractor runs inside detail::call_later, whose frame holds the Request (taken by value) until
  // the handler's task has finished: the body outlives every read the handler makes.
  co_return Multipart{request.body(), *boundary};
}

}  // namespace spindle::http
