#pragma once
// Response: what a handler returns.

#include <string>
#include <string_view>

#include "spindle/http/body.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/http/status.hpp"

namespace spindle::http {

/// An HTTP response. The server adds Date, Content-Length or Transfer-Encoding, and Connection itself;
/// the handler sets the status, its own header fields and the body.
///
///   Response ok = Response::text("Hello, World!");
///   Response created{Status::created, {}, Body{R"({"id":7})"}};
///   created.headers.set("content-type", "application/json");
///   created.headers.set("location", "/users/7");
struct Response {
  Status status = Status::ok;
  HeaderMap headers;
  Body body;

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
