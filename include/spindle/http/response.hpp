#pragma once
// Response: what a handler returns.

#include <memory>
#include <string>
#include <string_view>

#include "spindle/http/body.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/http/status.hpp"

namespace spindle::http {

class Upgrade;

/// An HTTP response. The server adds Date, Content-Length or Transfer-Encoding, and Connection itself;
/// the handler sets the status, its own header fields and the body.
///
///   Response ok = Response::text("Hello, World!");
///   Response created{Status::created, {}, Body{R"({"id":7})"}};
///   created.headers.set("content-type", "application/json");
///   created.headers.set("location", "/users/7");
struct Response {
  Response() = default;
  Response(Status status_code, HeaderMap fields = {}, Body content = {})  // NOLINT: implicit from a Status
      : status(status_code), headers(std::move(fields)), body(std::move(content)) {}

  Status status = Status::ok;
  HeaderMap headers;
  Body body;
  /// With status 101 Switching Protocols: what takes the connection over once the 101 is written
  /// (http/upgrade.hpp). Ignored with any other status; a 101 without it is answered as a 500.
  std::shared_ptr<Upgrade> upgrade;

  /// 200 with a text/plain body.
  static Response text(std::string body, Status status = Status::ok);
  /// 200 with an application/json body, given already serialized.
  static Response json(std::string body, Status status = Status::ok);
  /// 200 with a text/html body.
  static Response html(std::string body, Status status = Status::ok);
  /// Just a status, no body.
  static Response empty(Status status);
  /// The error shape every Spindle error response has: {"error": "<message>"} as JSON.
  static Response error(Status status, std::string_view message);
};

/// `text` as the contents of a JSON string literal, quotes included ("a\"b" for a"b).
std::string json_quote(std::string_view text);

}  // namespace spindle::http
