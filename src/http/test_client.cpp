// The in-process test client.

#include "spindle/http/test_client.hpp"

#include <exception>

namespace spindle::http {
namespace {

/// A body that is all there already.
class MemoryBody final : public detail::BodySource {
 public:
  explicit MemoryBody(std::string_view bytes) noexcept : bytes_(bytes) {}
  Task<Result<std::string_view, BodyError>> next() override { co_return std::exchange(bytes_, std::string_view{}); }

 private:
  std::string_view bytes_;
};

// As the server answers it, with what was thrown in the message for the test's benefit.
Response failed(const std::exception_ptr& error) {
  return Response::error(Status::internal_server_error, "internal server error: " + detail::describe_exception(error));
}

}  // namespace

Task<Response> TestClient::post(std::string_view target, std::string body, std::string_view content_type) {
  HeaderMap headers;
  headers.set("content-type", content_type);
  Task<Response> sending = send(Method::post, target, std::move(headers), std::move(body));
  Response response = co_await std::move(sending);
  co_return response;
}

Task<Response> TestClient::send(Method method, std::string_view target, HeaderMap headers, std::string body) {
  // The request as it would come over a connection, parsed by the server's parser.
  std::string head = std::string{method_name(method)} + " " + std::string{target} + " HTTP/1.1\r\nHost: test\r\n";
  for (const auto& field : headers) head += std::string{field.name} + ": " + std::string{field.value} + "\r\n";
  if (!body.empty() || method == Method::post || method == Method::put || method == Method::patch)
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += "\r\n";
  RequestParser parser;
  if (parser.parse(head) != RequestParser::Status::complete) {
    const ParseError& refused = parser.error();
    co_return Response::error(static_cast<Status>(refused.status), refused.reason);
  }
  MemoryBody source{body};
  Request request{parser.head(), RequestBody{body.empty() ? nullptr : &source, body.size()}};
  std::vector<PathParam> params;
  Response response;
  std::exception_ptr error;
  Task<Response> pending;
  try {
    detail::Reply reply = router_.core().route(request, params).call(request);
    if (reply.index() == 0)
      response = std::move(std::get<0>(reply));
    else
      pending = std::move(std::get<1>(reply));
  } catch (...) {
    error = std::current_exception();
  }
  if (pending.valid()) {
    try {
      Response answered = co_await std::move(pending);
      response = std::move(answered);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (error) co_return failed(error);
  co_return response;
}

}  // namespace spindle::http
