#pragma once
// Request: what a handler receives. Zero-copy: the method, target, header fields and path parameters are
// views into the connection's read buffer, valid until the handler's task completes. A handler that
// keeps anything past that copies it (std::string{request.path()}).

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "spindle/http/detail/path_tree.hpp"
#include "spindle/http/parser.hpp"
#include "spindle/http/status.hpp"
#include "spindle/net/socket_address.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// Why a request body could not be read: the status to answer and a short message.
struct BodyError {
  Status status = Status::bad_request;
  std::string message;
};

/// A path parameter captured by the router: `{id}` in "/users/{id}" matched against "/users/42" gives
/// {"id", "42"}. The value is raw (still percent-encoded).
using PathParam = detail::PathParam;

namespace detail {
/// Where a request body comes from (the server's connection). next() returns views valid until the next
/// call; an empty view at the end.
class BodySource {
 public:
  virtual Task<Result<std::string_view, BodyError>> next() = 0;

 protected:
  ~BodySource() = default;
};
}  // namespace detail

/// The body of a request as it arrives: read it piece by piece (streaming) or whole (collect). Reading
/// it is what sends "100 Continue" to a client that asked for one, so a handler that refuses a request
/// without reading its body never makes the client send it.
///
///   auto body = co_await request.body().collect(1 << 20);
///   if (!body) co_return Response::error(body.error().status, body.error().message);
class RequestBody {
 public:
  RequestBody() noexcept = default;
  RequestBody(detail::BodySource* source, std::optional<std::uint64_t> content_length) noexcept
      : source_(source), content_length_(content_length.value_or(kUnknown)) {}

  /// Content-Length when the request declared one (nullopt for a chunked body).
  std::optional<std::uint64_t> content_length() const noexcept {
    return content_length_ == kUnknown ? std::nullopt : std::optional<std::uint64_t>{content_length_};
  }
  /// The next piece of the body, a view valid until the next call; empty once the body has ended.
  Task<Result<std::string_view, BodyError>> next();
  /// The whole body, or 413 once it exceeds `limit` bytes (the server's body limit applies too).
  Task<Result<std::string, BodyError>> collect(std::size_t limit = std::numeric_limits<std::size_t>::max());
  /// Lowers the number of bytes still allowed to `limit`: reading past it is a 413 (the body_limit
  /// layer sets this for the handlers it wraps).
  void limit(std::uint64_t limit) noexcept {
    if (limit < allowed_) allowed_ = limit;
  }

 private:
  detail::BodySource* source_ = nullptr;
  std::uint64_t allowed_ = UINT64_MAX;
  // Not an optional: a Request is in every waiting handler's frame, and this saves 8 of its bytes.
  static constexpr std::uint64_t kUnknown = UINT64_MAX;
  std::uint64_t content_length_ = kUnknown;
};

struct Rejection;
struct Response;
/// Renders every rejection of a router's extractors (Router::on_rejection).
using RejectionRenderer = std::function<Response(const Rejection&)>;

/// Values attached to a request by middleware (an authenticated user, a request id), one per type,
/// read by handlers with the Extension<T> extractor.
///
///   request.extensions().insert(CurrentUser{42});
///   const CurrentUser* user = request.extensions().get<CurrentUser>();
class Extensions {
 public:
  /// Sets the value of type T (replacing an earlier one).
  template <class T>
  void insert(T value) {
    for (Entry& entry : entries_)
      if (*entry.type == typeid(T)) {
        entry.value = std::make_shared<T>(std::move(value));
        return;
      }
    entries_.push_back(Entry{&typeid(T), std::make_shared<T>(std::move(value))});
  }
  /// The value of type T, or null.
  template <class T>
  T* get() const noexcept {
    for (const Entry& entry : entries_)
      if (*entry.type == typeid(T)) return static_cast<T*>(entry.value.get());
    return nullptr;
  }

 private:
  struct Entry {
    const std::type_info* type;
    std::shared_ptr<void> value;
  };
  std::vector<Entry> entries_;
};

/// An HTTP request as a handler sees it.
///
///   Response show_user(Request request) {
///     auto id = request.param("id");                       // from the route "/users/{id}"
///     auto agent = request.header("user-agent").value_or("?");
///     return Response::text(fmt::format("user {} seen by {}", *id, agent));
///   }
class Request {
 public:
  Request() = default;
  Request(const RequestHead& head, RequestBody body) noexcept;
  Request(Request&&) noexcept = default;
  Request& operator=(Request&&) noexcept = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;

  Method method() const noexcept { return method_; }
  std::string_view method_name() const noexcept { return method_name_; }
  /// The request target as sent ("/users?limit=10").
  std::string_view target() const noexcept { return target_; }
  /// The path part of the target, percent-encoded as sent ("/users").
  std::string_view path() const noexcept;
  /// The query after '?', without it ("limit=10"); empty if none.
  std::string_view query() const noexcept;
  int version_minor() const noexcept { return version_minor_; }

  std::span<const HeaderField> headers() const noexcept { return fields_; }
  /// The first header field named `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const noexcept;

  /// The path parameter `name` captured by the route, raw (percent-encoded).
  std::optional<std::string_view> param(std::string_view name) const noexcept;
  std::span<const PathParam> params() const noexcept { return params_; }
  /// The route pattern that matched ("/users/{id}"), empty before routing or for the fallback.
  std::string_view matched_route() const noexcept { return matched_route_; }

  RequestBody& body() noexcept { return body_; }

  /// The client's address (asked of the socket when called).
  std::optional<SocketAddr> peer_addr() const noexcept;

  /// What middleware attached to this request (created on first use: most requests have none).
  Extensions& extensions() {
    if (!extensions_) extensions_ = std::make_unique<Extensions>();
    return *extensions_;
  }
  /// The extension of type T, or null.
  template <class T>
  T* extension() const noexcept {
    return extensions_ ? extensions_->get<T>() : nullptr;
  }

  /// The application state given to Router::with_state, if it is a T.
  template <class T>
  T* state() const noexcept {
    return state_type_ != nullptr && *state_type_ == typeid(T) ? static_cast<T*>(state_) : nullptr;
  }

  // Set by the server and the router.
  /// Replaces the target with `target`, which must point into the same storage as the request's head or
  /// into static storage (nest_service strips its prefix this way).
  void set_target(std::string_view target) noexcept { target_ = target; }
  void set_params(std::span<const PathParam> params, std::string_view route) noexcept {
    params_ = params;
    matched_route_ = route;
  }
  void set_state(void* state, const std::type_info* type) noexcept {
    state_ = state;
    state_type_ = type;
  }
  void set_socket(int fd) noexcept { fd_ = fd; }
  void set_rejection_renderer(const RejectionRenderer* renderer) noexcept { rejection_renderer_ = renderer; }
  const RejectionRenderer* rejection_renderer() const noexcept { return rejection_renderer_; }
  /// Points the request's views at a copy of the `size` bytes they pointed into (from `from` to `to`),
  /// and its field and parameter arrays at copies: the server moves a request out of its read buffer
  /// this way before a handler that may wait, so the buffer can serve other connections meanwhile.
  void relocate(const char* from, std::size_t size, const char* to, std::span<const HeaderField> fields,
                std::span<const PathParam> params) noexcept;

 private:
  Method method_ = Method::get;
  std::uint8_t version_minor_ = 1;
  int fd_ = -1;
  std::string_view method_name_;
  std::string_view target_;
  std::span<const HeaderField> fields_;
  std::span<const PathParam> params_;
  std::string_view matched_route_;
  RequestBody body_;
  void* state_ = nullptr;
  const std::type_info* state_type_ = nullptr;
  std::unique_ptr<Extensions> extensions_;
  const RejectionRenderer* rejection_renderer_ = nullptr;
};

/// The path part of a request target: the origin form's path, or the path of an absolute form
/// ("http://host/a?b" gives "/a"). "*" stays "*".
std::string_view target_path(std::string_view target) noexcept;

}  // namespace spindle::http
