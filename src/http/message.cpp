// The message types: status phrases, header maps, bodies, requests and responses.

#include <sys/socket.h>

#include <cstdio>
#include <stdexcept>

#include "spindle/http/body.hpp"
#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/http/detail/handler.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/http/status.hpp"
#include "spindle/json.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::http {

std::string_view reason_phrase(Status status) noexcept {
  switch (code(status)) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

namespace {
void check_field(std::string_view name, std::string_view value) {
  if (!detail::is_token(name)) throw std::invalid_argument("invalid header field name: " + std::string{name});
  if (!detail::is_field_value(value))
    throw std::invalid_argument("invalid character in the value of header field " + std::string{name});
}
}  // namespace

HeaderMap::Field::Field(std::string_view n, std::string_view v, bool copy) {
  if (!copy) {
    name = n;
    value = v;
    return;
  }
  storage_ = std::make_unique_for_overwrite<char[]>(n.size() + v.size());
  std::copy(n.begin(), n.end(), storage_.get());
  std::copy(v.begin(), v.end(), storage_.get() + n.size());
  name = {storage_.get(), n.size()};
  value = {storage_.get() + n.size(), v.size()};
}

void HeaderMap::replace(std::string_view name, Field field) {
  for (auto it = fields_.begin(); it != fields_.end(); ++it) {
    if (!detail::iequals(it->name, name)) continue;
    *it = std::move(field);
    fields_.erase(std::remove_if(it + 1, fields_.end(), [&](const Field& f) { return detail::iequals(f.name, name); }),
                  fields_.end());
    return;
  }
  fields_.push_back(std::move(field));
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  check_field(name, value);
  replace(name, Field{name, value, true});
}

void HeaderMap::set_static(StaticName name, StaticValue value) {
  replace(name.view(), Field{name.view(), value.view(), false});
}

void HeaderMap::append(std::string_view name, std::string_view value) {
  check_field(name, value);
  fields_.push_back(Field{name, value, true});
}

std::optional<std::string_view> HeaderMap::get(std::string_view name) const noexcept {
  for (const Field& f : fields_)
    if (detail::iequals(f.name, name)) return std::string_view{f.value};
  return std::nullopt;
}

std::size_t HeaderMap::remove(std::string_view name) noexcept {
  const auto old_size = fields_.size();
  fields_.erase(
      std::remove_if(fields_.begin(), fields_.end(), [&](const Field& f) { return detail::iequals(f.name, name); }),
      fields_.end());
  return old_size - fields_.size();
}

std::pair<BodySender, Body> Body::channel(std::size_t capacity) {
  auto [tx, rx] = mpsc::channel<std::string>(capacity);
  return {BodySender{std::move(tx)}, Body{std::make_unique<Stream>(Stream{std::move(rx), {}, {}})}};
}

Task<std::optional<std::string>> Body::next_chunk() {
  auto* box = std::get_if<StreamBox>(&content_);
  if (box == nullptr) co_return std::nullopt;
  Stream& stream = **box;
  if (stream.keep_alive_interval <= std::chrono::nanoseconds::zero()) {
    std::optional<std::string> chunk = co_await stream.receiver.recv();
    co_return chunk;
  }
  // recv() is cancellation-safe (a value leaves the queue only when the receiver resumes), so a chunk
  // that arrives as the timer fires stays queued for the next call.
  auto receiving = spindle::timeout(stream.keep_alive_interval, stream.receiver.recv());
  Result<std::optional<std::string>, TimedOut> chunk = co_await receiving;
  if (!chunk) co_return stream.keep_alive_bytes;
  co_return std::move(*chunk);
}

void Body::keep_alive(std::chrono::nanoseconds interval, std::string bytes) {
  auto* box = std::get_if<StreamBox>(&content_);
  if (box == nullptr) return;
  (*box)->keep_alive_interval = interval;
  (*box)->keep_alive_bytes = std::move(bytes);
}

Task<bool> BodySender::send(std::string chunk) const {
  auto sent = co_await sender_.send(std::move(chunk));
  co_return sent.has_value();
}

std::string json_quote(std::string_view text) {
  std::string out;
  json::write_string(out, text);
  return out;
}

namespace {
Response with_type(std::string body, Status status, HeaderMap::StaticValue type) {
  Response r{status, {}, Body{std::move(body)}};
  r.headers.set_static("content-type", type);
  return r;
}
}  // namespace

Response Response::text(std::string body, Status status) {
  return with_type(std::move(body), status, "text/plain; charset=utf-8");
}
Response Response::json(std::string body, Status status) {
  return with_type(std::move(body), status, "application/json");
}
Response Response::html(std::string body, Status status) {
  return with_type(std::move(body), status, "text/html; charset=utf-8");
}
Response Response::empty(Status status) { return Response{status, {}, Body{}}; }
Response Response::error(Status status, std::string_view message) {
  return json("{\"error\":" + json_quote(message) + "}", status);
}

std::string detail::describe_exception(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "something that is not a std::exception";
  }
}

std::string_view target_path(std::string_view target) noexcept {
  if (!target.empty() && target.front() != '/' && target != "*") {
    // absolute-form (RFC 9112 3.2.2): scheme "://" authority path
    const std::size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      const std::size_t path_start = target.find_first_of("/?", scheme_end + 3);
      target = path_start == std::string_view::npos ? std::string_view{"/"} : target.substr(path_start);
      if (!target.empty() && target.front() == '?') return "/";
    }
  }
  return target.substr(0, target.find('?'));
}

Request::Request(const RequestHead& head, RequestBody body) noexcept
    : method_(head.method),
      version_minor_(static_cast<std::uint8_t>(head.version_minor)),
      method_name_(head.method_name),
      target_(head.target),
      fields_(head.fields),
      body_(body) {}

std::string_view Request::path() const noexcept { return target_path(target_); }

std::string_view Request::query() const noexcept {
  const std::size_t question = target_.find('?');
  return question == std::string_view::npos ? std::string_view{} : target_.substr(question + 1);
}

void Request::relocate(const char* from, std::size_t size, const char* to, std::span<const HeaderField> fields,
                       std::span<const PathParam> params) noexcept {
  auto move = [&](std::string_view& view) {
    if (view.data() >= from && view.data() + view.size() <= from + size)
      view = {to + (view.data() - from), view.size()};
  };
  move(method_name_);
  move(target_);
  fields_ = fields;
  params_ = params;
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const HeaderField& f : fields_)
    if (detail::iequals(f.name, name)) return f.value;
  return std::nullopt;
}

std::optional<std::string_view> Request::param(std::string_view name) const noexcept {
  for (const PathParam& p : params_)
    if (p.name == name) return p.value;
  return std::nullopt;
}

std::optional<SocketAddr> Request::peer_addr() const noexcept {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (fd_ < 0 || ::getpeername(fd_, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return std::nullopt;
  return SocketAddr::from_native(reinterpret_cast<const sockaddr*>(&storage), length);
}

Task<Result<std::string_view, BodyError>> RequestBody::next() {
  if (source_ == nullptr) co_return std::string_view{};  // no body
  Result<std::string_view, BodyError> piece = co_await source_->next();
  if (piece && piece->size() > allowed_) {
    allowed_ = 0;
    co_return Err{BodyError{Status::payload_too_large, "request body larger than the route allows"}};
  }
  if (piece) allowed_ -= piece->size();
  co_return piece;
}

Task<Result<std::string, BodyError>> RequestBody::collect(std::size_t limit) {
  std::string whole;
  if (content_length() && *content_length() > limit)
    co_return Err{BodyError{Status::payload_too_large, "request body larger than " + std::to_string(limit) + " bytes"}};
  if (content_length()) whole.reserve(*content_length());
  for (;;) {
    Result<std::string_view, BodyError> piece = co_await next();
    if (!piece) co_return Err{std::move(piece).error()};
    if (piece->empty()) co_return whole;
    if (whole.size() + piece->size() > limit)
      co_return Err{
          BodyError{Status::payload_too_large, "request body larger than " + std::to_string(limit) + " bytes"}};
    whole.append(*piece);
  }
}

}  // namespace spindle::http
