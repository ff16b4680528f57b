#pragma once
// Multipart: a multipart/form-data request body (RFC 7578, what an HTML form with a file input sends),
// read field by field as it arrives, after Axum's Multipart. A file is streamed chunk by chunk, so an
// upload larger than memory can go to disk or elsewhere; small fields are read whole with text().
//
// The body is parsed by detail::MultipartParser (detail/multipart_parser.hpp), which is where the syntax
// and its strictness are described. The server's body limit (ServerConfig::max_body) bounds the whole
// body; MultipartLimits bounds what the server holds for one part's header fields, how many fields a
// form may have, and what bytes() and text() collect of one field.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "spindle/http/extract.hpp"
#include "spindle/http/request.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

namespace detail {
struct MultipartReader;
}  // namespace detail

/// Limits of a Multipart body; set them with Multipart::set_limits before reading the fields.
///
///   form.set_limits({.max_fields = 10, .max_field_bytes = 16 * 1024});
struct MultipartLimits {
  /// A part's header block (431 beyond). A browser sends two short lines; 8 KiB leaves room for long file
  /// names and is what the server holds per part at most.
  std::size_t max_header_bytes = 8 * 1024;
  /// Fields in the form (413 beyond): as many as ParserLimits allows header fields in a request.
  std::size_t max_fields = 100;
  /// What bytes() and text() collect of one field (413 beyond). chunk() streams without this limit, so a
  /// file larger than memory goes through it; the server's body limit still bounds the whole body.
  std::size_t max_field_bytes = 1024 * 1024;
};

/// One field of a multipart/form-data body: its name, the file name and content type a file upload
/// carries, and its data, read once, in pieces (chunk) or whole (bytes, text). It reads from its
/// Multipart, which must outlive it; once Multipart::next_field has moved on, a field has no more data.
///
///   auto field = co_await form.next_field();         // Result<std::optional<MultipartField>, Rejection>
///   if (field && *field && (*field)->name() == "title") {
///     auto title = co_await (*field)->text();          // Result<std::string, Rejection>
///   }
class MultipartField {
 public:
  /// The field's name (Content-Disposition's name parameter).
  std::string_view name() const noexcept { return name_; }
  /// The file name a file upload gives (filename, or filename* decoded); nullopt for a plain field.
  std::optional<std::string_view> file_name() const noexcept {
    return file_name_ ? std::optional<std::string_view>{*file_name_} : std::nullopt;
  }
  /// The part's Content-Type, as sent ("image/png"); nullopt if it has none (text/plain, RFC 7578 4.4).
  std::optional<std::string_view> content_type() const noexcept {
    return content_type_ ? std::optional<std::string_view>{*content_type_} : std::nullopt;
  }

  /// The next piece of the field's data, as it arrives; nullopt at its end. A malformed body is a 400.
  Task<Result<std::optional<std::string>, Rejection>> chunk();
  /// The rest of the field's data; 413 beyond MultipartLimits::max_field_bytes.
  Task<Result<std::string, Rejection>> bytes();
  /// The rest of the field's data as text: bytes(), and 400 if it is not UTF-8.
  Task<Result<std::string, Rejection>> text();

 private:
  friend class Multipart;
  MultipartField(detail::MultipartReader* reader, std::size_t index, std::string name,
                 std::optional<std::string> file_name, std::optional<std::string> content_type) noexcept
      : reader_(reader),
        index_(index),
        name_(std::move(name)),
        file_name_(std::move(file_name)),
        content_type_(std::move(content_type)) {}

  detail::MultipartReader* reader_;
  std::size_t index_;  // which field of the body this is (1 for the first), to tell a field that is past
  std::string name_;
  std::optional<std::string> file_name_;
  std::optional<std::string> content_type_;
};

/// A multipart/form-data request body, read field by field. As an extractor it consumes the body (so it
/// is a handler's last parameter); a request without a multipart/form-data Content-Type and a boundary
/// is refused with 415 before the handler runs. Errors in the body come from next_field() and from the
/// field's reads: 400 for a malformed or truncated body, 413 and 431 over the limits.
///
///   router.route("/upload", post([](Multipart form) -> Task<Result<std::string, Rejection>> {
///     std::string report;
///     for (;;) {
///       auto next = co_await form.next_field();
///       if (!next) co_return Err{std::move(next).error()};
///       if (!*next) break;                                 // no more fields
///       MultipartField& field = **next;
///       if (field.file_name()) {                           // a file: stream it
///         std::size_t size = 0;
///         for (;;) {
///           auto chunk = co_await field.chunk();
///           if (!chunk) co_return Err{std::move(chunk).error()};
///           if (!*chunk) break;
///           size += (*chunk)->size();                      // or write it somewhere
///         }
///         report += std::string{field.name()} + ": " + std::to_string(size) + " bytes\n";
///       } else {
///         auto text = co_await field.text();
///         if (!text) co_return Err{std::move(text).error()};
///         report += std::string{field.name()} + " = " + *text + "\n";
///       }
///     }
///     co_return report;
///   }));
class Multipart {
 public:
  /// Reads `body`, delimited by `boundary` (valid per RFC 2046: see detail::form_data_boundary), which
  /// must outlive this. The extractor makes one from the request; this is for code that has a body
  /// in hand.
  Multipart(RequestBody& body, std::string_view boundary, MultipartLimits limits = {});
  Multipart(Multipart&&) noexcept;
  Multipart& operator=(Multipart&&) noexcept;
  ~Multipart();

  /// The next field, skipping what is left of the current one; nullopt after the last.
  Task<Result<std::optional<MultipartField>, Rejection>> next_field();

  /// Limits for what is read from now on.
  void set_limits(MultipartLimits limits) noexcept;
  const MultipartLimits& limits() const noexcept;

 private:
  std::unique_ptr<detail::MultipartReader> reader_;  // on the heap: fields point to it, and a Multipart moves
};

/// 415 unless the request's Content-Type is multipart/form-data with a boundary (400 for a boundary that
/// RFC 2046 does not allow); the body is read later, by the handler, through the Multipart, so a request
/// refused here never makes a client that expects 100 Continue send its body.
template <>
struct Extract<Multipart> {
  static Task<Result<Multipart, Rejection>> from_request(Request& request);
};

}  // namespace spindle::http
