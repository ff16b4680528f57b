// The non-template parts of the typed extractors.

#include "spindle/http/extract.hpp"

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/text/utf8.hpp"

namespace spindle::http {

Response Rejection::into_response() const {
  std::string body = "{\"error\":" + json_quote(message);
  if (!field.empty()) body += ",\"field\":" + json_quote(field);
  body += "}";
  Response response = Response::json(std::move(body), status);
  for (const auto& required : headers) response.headers.set(required.name, required.value);
  return response;
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  for (const HeaderField& field : fields_)
    if (detail::iequals(field.name, name)) return field.value;
  return std::nullopt;
}

Result<ConnectInfo, Rejection> Extract<ConnectInfo>::from_parts(Request& request) {
  std::optional<SocketAddr> peer = request.peer_addr();
  if (!peer) return Err{Rejection{Status::internal_server_error, "the connection's peer address is unknown", ""}};
  return ConnectInfo{*peer};
}

namespace {

Task<Result<std::string, Rejection>> collect_body(Request& request) {
  Task<Result<std::string, BodyError>> collecting = request.body().collect();
  Result<std::string, BodyError> body = co_await std::move(collecting);
  if (!body) co_return Err{Rejection{body.error().status, std::move(body.error().message), ""}};
  co_return std::move(*body);
}

bool is_json_type(std::string_view mime) {
  using detail::iequals;
  return iequals(mime, "application/json") || (mime.size() > 17 && iequals(mime.substr(0, 12), "application/") &&
                                               iequals(mime.substr(mime.size() - 5), "+json"));
}

}  // namespace

Task<Result<std::string, Rejection>> Extract<std::string>::from_request(Request& request) {
  Task<Result<std::string, Rejection>> collecting = collect_body(request);
  Result<std::string, Rejection> body = co_await std::move(collecting);
  if (body && !utf8::is_valid(*body)) co_return Err{Rejection{Status::bad_request, "the body is not valid UTF-8", ""}};
  co_return body;
}

Task<Result<Bytes, Rejection>> Extract<Bytes>::from_request(Request& request) {
  Task<Result<std::string, Rejection>> collecting = collect_body(request);
  Result<std::string, Rejection> body = co_await std::move(collecting);
  if (!body) co_return Err{std::move(body).error()};
  co_return Bytes{std::move(*body)};
}

Task<Result<BodyStream, Rejection>> Extract<BodyStream>::from_request(Request& request) {
  co_return BodyStream{request.body()};
}

namespace {
/// A 401 says how to authenticate (RFC 9110 11.6.1).
Err<Rejection> unauthorized(std::string message) {
  Rejection rejection{Status::unauthorized, std::move(message), "authorization"};
  rejection.headers.set_static("www-authenticate", "Bearer");
  return Err{std::move(rejection)};
}
}  // namespace

Result<BearerToken, Rejection> Extract<BearerToken>::from_parts(Request& request) {
  const std::optional<std::string_view> authorization = request.header("authorization");
  if (!authorization) return unauthorized("missing credentials");
  // The scheme is case-insensitive (RFC 9110 §11.1); the token is not.
  if (authorization->size() <= 7 || !detail::iequals(authorization->substr(0, 7), "bearer "))
    return unauthorized("expected a bearer token");
  std::string_view token = authorization->substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (token.empty()) return unauthorized("expected a bearer token");
  return BearerToken{token};
}

Result<ContentType, Rejection> Extract<ContentType>::from_parts(Request& request) {
  const std::optional<std::string_view> type = request.header("content-type");
  if (!type) return Err{Rejection{Status::unsupported_media_type, "missing Content-Type", "content-type"}};
  std::string mime{detail::media_type_essence(*type)};
  for (char& c : mime) c = detail::ascii_lower(c);
  return ContentType{std::move(mime)};
}

namespace detail {

Task<Result<std::string, Rejection>> read_json_body(Request& request) {
  const std::optional<std::string_view> type = request.header("content-type");
  if (!type || !is_json_type(detail::media_type_essence(*type)))
    co_return Err{Rejection{Status::unsupported_media_type, "expected Content-Type: application/json", "content-type"}};
  Task<Result<std::string, Rejection>> collecting = collect_body(request);
  Result<std::string, Rejection> body = co_await std::move(collecting);
  co_return body;
}

Task<Result<Pairs, Rejection>> read_form_body(Request& request) {
  const std::optional<std::string_view> type = request.header("content-type");
  if (!type || !detail::iequals(detail::media_type_essence(*type), "application/x-www-form-urlencoded"))
    co_return Err{Rejection{Status::unsupported_media_type, "expected Content-Type: application/x-www-form-urlencoded",
                            "content-type"}};
  Task<Result<std::string, Rejection>> collecting = collect_body(request);
  Result<std::string, Rejection> body = co_await std::move(collecting);
  if (!body) co_return Err{std::move(body).error()};
  auto pairs = parse_query(*body);
  if (!pairs) co_return Err{Rejection{Status::bad_request, std::string{pairs.error().reason}, ""}};
  co_return std::move(*pairs);
}

Rejection json_rejection(json::Error error) {
  const Status status = error.kind == json::Error::Kind::syntax ? Status::bad_request : Status::unprocessable_entity;
  return Rejection{status, std::move(error.message), std::move(error.path)};
}

Response render_rejection(const Request& request, const Rejection& rejection) {
  if (const RejectionRenderer* render = request.rejection_renderer()) {
    Response response = (*render)(rejection);
    for (const auto& required : rejection.headers)
      if (!response.headers.contains(required.name)) response.headers.set(required.name, required.value);
    return response;
  }
  return rejection.into_response();
}

}  // namespace detail

Response IntoResponse<Bytes>::into(Bytes bytes) {
  Response response{Status::ok, {}, Body{std::move(bytes.value)}};
  response.headers.set_static("content-type", "application/octet-stream");
  return response;
}

Response IntoResponse<Body>::into(Body body) {
  Response response{Status::ok, {}, std::move(body)};
  response.headers.set_static("content-type", "application/octet-stream");
  return response;
}

Response IntoResponse<Redirect>::into(Redirect redirect) {
  Response response = Response::empty(redirect.status);
  response.headers.set("location", redirect.location);
  return response;
}

}  // namespace spindle::http
