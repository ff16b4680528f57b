#pragma once
// HTTP status codes.

#include <cstdint>
#include <string_view>

namespace spindle::http {

/// A response status. The common codes have names; any other is Status{code}.
///
///   Response r = Response::text("created");
///   r.status = Status::created;
enum class Status : std::uint16_t {
  continue_ = 100,
  switching_protocols = 101,
  ok = 200,
  created = 201,
  accepted = 202,
  no_content = 204,
  moved_permanently = 301,
  found = 302,
  see_other = 303,
  not_modified = 304,
  temporary_redirect = 307,
  permanent_redirect = 308,
  bad_request = 400,
  unauthorized = 401,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  not_acceptable = 406,
  request_timeout = 408,
  conflict = 409,
  gone = 410,
  length_required = 411,
  payload_too_large = 413,
  uri_too_long = 414,
  unsupported_media_type = 415,
  expectation_failed = 417,
  unprocessable_entity = 422,
  upgrade_required = 426,
  too_many_requests = 429,
  request_header_fields_too_large = 431,
  internal_server_error = 500,
  not_implemented = 501,
  bad_gateway = 502,
  service_unavailable = 503,
  gateway_timeout = 504,
  http_version_not_supported = 505,
};

constexpr int code(Status status) noexcept { return static_cast<int>(status); }

/// The reason phrase for the status line ("Not Found"); "" for codes without a registered one.
std::string_view reason_phrase(Status status) noexcept;

/// Whether a response with this status never has a body (1xx, 204, 304: RFC 9112 6.3).
constexpr bool forbids_body(Status status) noexcept {
  const int c = code(status);
  return (c >= 100 && c < 200) || c == 204 || c == 304;
}

}  // namespace spindle::http
