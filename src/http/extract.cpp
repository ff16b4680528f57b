// The non-template parts of the typed extractors.

#include "spindle/http/extract.hpp"

#include "spindle/http/detail/field_syntax.hpp"

namespace spindle::http {

Response Rejection::into_response() const {
  std::string body = "{\"error\":" + json_quote(message);
  if (!field.empty()) body += ",\"field\":" + json_quote(field);
  body += "}";
  return Response::json(std::move(body), status);
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

Task<Result<std::string, Rejection>> Extract<std::string>::from_request(Request& request) {
  Task<Result<std::string, BodyError>> collecting = request.body().collect();
  Result<std::string, BodyError> body = co_await std::move(collecting);
  if (!body) co_return Err{Rejection{body.error().status, std::move(body.error().message), ""}};
  if (!is_valid_utf8(*body)) co_return Err{Rejection{Status::bad_request, "the body is not valid UTF-8", ""}};
  co_return std::move(*body);
}

}  // namespace spindle::http
