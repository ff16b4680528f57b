#pragma once
// Typed handlers, after Axum: a handler's parameters are extractors that the framework fills from the
// request, and what it returns becomes a response.
//
//   Task<std::string> show_post(State<App> app, Path<std::tuple<int, std::string>> path) {
//     auto [user, slug] = *path;                                    // "/users/{id}/posts/{slug}"
//     co_return co_await app->posts.render(user, slug);
//   }
//   router.route("/users/{id}/posts/{slug}", get(show_post));
//
// An extractor is a type T with a specialization of Extract<T>: either `from_parts(Request&)`, which
// reads the head (path, query, headers, state) and cannot wait, or `from_request(Request&)`, a task
// that consumes the body; at most one parameter may consume the body, and it must be the last, as in
// Axum. A parameter that is not an extractor, a body extractor that is not last, or a return type that
// cannot become a response stops the compilation with a static_assert saying which.
//
// When an extractor refuses a request, the handler does not run and the rejection is the answer:
// 400 for malformed input (bad JSON, a bad percent-escape, a path parameter of the wrong type), 422 for
// well-formed input of the wrong shape (a missing or mistyped JSON member or query parameter), 415 for
// the wrong Content-Type, 413 over a limit, 500 for a misconfigured router; the body is
// {"error": ..., "field": ...}. A handler that wants to decide itself takes std::optional<X> or
// Result<X, Rejection> instead of X; Router::on_rejection replaces the rendering of them all.

#include <charconv>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/http/detail/handler.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/http/url.hpp"
#include "spindle/json.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// Why an extractor refused a request: the status, what was wrong, and the field (or parameter) at fault.
///
///   return Err{Rejection{Status::unprocessable_entity, "must be positive", "limit"}};
struct Rejection {
  Rejection() = default;
  Rejection(Status status_code, std::string text, std::string field_name = {})
      : status(status_code), message(std::move(text)), field(std::move(field_name)) {}

  Status status = Status::bad_request;
  std::string message;
  std::string field;
  /// Fields the protocol requires with this status (WWW-Authenticate with a 401, Sec-WebSocket-Version
  /// with a 426): every rendering keeps them, a Router::on_rejection renderer's too.
  HeaderMap headers;

  /// {"error": message} or {"error": message, "field": field}, as JSON.
  Response into_response() const;
};

/// Specialized for each extractor type (see the top of this file).
template <class T>
struct Extract;

template <class T>
concept PartsExtractor = requires(Request& request) {
  { Extract<T>::from_parts(request) } -> std::same_as<Result<T, Rejection>>;
};
template <class T>
concept BodyExtractor = requires(Request& request) {
  { Extract<T>::from_request(request) } -> std::same_as<Task<Result<T, Rejection>>>;
};
/// A type a handler can take as a parameter.
template <class T>
concept Extractor = PartsExtractor<T> || BodyExtractor<T> || std::same_as<T, Request>;

// ---------------------------------------------------------------------------------------------------
// Extractors

/// The application state given to Router<S>::with_state.
///
///   std::string count(State<Counter> counter) { return std::to_string(counter->hits++); }
template <class S>
class State {
 public:
  explicit State(S& state) noexcept : state_(&state) {}
  S& operator*() const noexcept { return *state_; }
  S* operator->() const noexcept { return state_; }

 private:
  S* state_;
};

template <class S>
struct Extract<State<S>> {
  static Result<State<S>, Rejection> from_parts(Request& request) {
    if (S* state = request.state<S>()) return State<S>{*state};
    return Err{Rejection{Status::internal_server_error, "the router was not given a state of the handler's type", ""}};
  }
};

namespace detail {

/// Converts one decoded text value to T (integers, floating point, bool, std::string).
template <class T>
std::optional<T> convert_text(std::string_view text) {
  if constexpr (std::is_same_v<T, std::string>) {
    return std::string{text};
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "true") return true;
    if (text == "false") return false;
    return std::nullopt;
  } else if constexpr (std::is_arithmetic_v<T>) {
    T value{};
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
  } else if constexpr (json::detail::is_described_enum<T>) {
    T value{};
    if (!boost::describe::enum_from_string(std::string{text}.c_str(), value)) return std::nullopt;
    return value;
  } else {
    static_assert(sizeof(T) == 0,
                  "this type cannot be read from text: use an integer, a floating-point type, bool, "
                  "std::string or an enum declared with BOOST_DESCRIBE_ENUM");
  }
}

template <class T>
std::string kind_of() {
  if constexpr (json::detail::is_described_enum<T>) return "one of " + json::detail::enumerator_names<T>();
  if constexpr (std::is_same_v<T, bool>) return "true or false";
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>) return "an integer";
  if constexpr (std::is_integral_v<T>) return "a non-negative integer";
  if constexpr (std::is_floating_point_v<T>) return "a number";
  return "text";
}

template <class T>
struct is_tuple : std::false_type {};
template <class... Ts>
struct is_tuple<std::tuple<Ts...>> : std::true_type {};

using Pairs = std::vector<std::pair<std::string, std::string>>;

/// A described struct from name/value pairs (a query string, a form, path parameters): each member by
/// its name, std::optional members may be absent, std::vector members collect every repeat. A value of
/// the wrong type is refused with `status`, a missing member with `missing` (a path parameter the route
/// does not have is the server's mistake, not the client's), each naming the member.
template <class T>
Result<T, Rejection> from_pairs(const Pairs& pairs, Status status, Status missing) {
  T value{};
  std::optional<Rejection> refused;
  boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto d) {
    if (refused) return;
    using Member = std::remove_cvref_t<decltype(value.*d.pointer)>;
    auto convert = [&]<class V>(std::string_view text, V& into) {
      auto converted = convert_text<V>(text);
      if (!converted) {
        refused = Rejection{status, "must be " + kind_of<V>(), d.name};
        return;
      }
      into = std::move(*converted);
    };
    const auto find = [&]() -> const std::string* {
      for (const auto& [name, text] : pairs)
        if (name == d.name) return &text;
      return nullptr;
    };
    if constexpr (json::detail::is_vector<Member>::value) {
      for (const auto& [name, text] : pairs)
        if (name == d.name && !refused) convert(text, (value.*d.pointer).emplace_back());
    } else if constexpr (json::detail::is_optional<Member>::value) {
      if (const std::string* text = find()) convert(*text, (value.*d.pointer).emplace());
    } else {
      if (const std::string* text = find())
        convert(*text, value.*d.pointer);
      else
        refused = Rejection{missing, "is missing", d.name};
    }
  });
  if (refused) return Err{std::move(*refused)};
  return value;
}

/// The rejection's response, rendered by the router's on_rejection if it has one.
Response render_rejection(const Request& request, const Rejection& rejection);

}  // namespace detail

/// The route's path parameters, percent-decoded and converted: one value (`Path<int>` for "/users/{id}"),
/// a tuple of them in the route's order (`Path<std::tuple<int, std::string>>`), or a described struct
/// whose members are named like the parameters. A value of the wrong type or a bad escape is a 400
/// naming the parameter.
template <class T>
struct Path {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
};

template <class T>
struct Extract<Path<T>> {
  static Result<Path<T>, Rejection> from_parts(Request& request) {
    const auto params = request.params();
    if constexpr (json::detail::is_described_struct<T> && !detail::is_tuple<T>::value) {
      detail::Pairs pairs;
      for (const PathParam& param : params) {
        auto decoded = percent_decode(param.value);
        if (!decoded)
          return Err{Rejection{Status::bad_request, std::string{decoded.error().reason}, std::string{param.name}}};
        pairs.emplace_back(std::string{param.name}, std::move(*decoded));
      }
      auto value = detail::from_pairs<T>(pairs, Status::bad_request, Status::internal_server_error);
      if (!value) return Err{std::move(value).error()};
      return Path<T>{std::move(*value)};
    } else if constexpr (detail::is_tuple<T>::value) {
      constexpr std::size_t count = std::tuple_size_v<T>;
      if (params.size() != count) return Err{wrong_count(params.size(), count)};
      T values;
      std::optional<Rejection> refused;
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        ((refused ? void() : convert_into(params[I], std::get<I>(values), refused)), ...);
      }
      (std::make_index_sequence<count>{});
      if (refused) return Err{std::move(*refused)};
      return Path<T>{std::move(values)};
    } else {
      if (params.size() != 1) return Err{wrong_count(params.size(), 1)};
      T value{};
      std::optional<Rejection> refused;
      convert_into(params[0], value, refused);
      if (refused) return Err{std::move(*refused)};
      return Path<T>{std::move(value)};
    }
  }

 private:
  static Rejection wrong_count(std::size_t found, std::size_t wanted) {
    return Rejection{
        Status::internal_server_error,
        "the handler wants " + std::to_string(wanted) + " path parameters and the route has " + std::to_string(found),
        ""};
  }
  template <class V>
  static void convert_into(const PathParam& param, V& into, std::optional<Rejection>& refused) {
    auto decoded = percent_decode(param.value);
    if (!decoded) {
      refused = Rejection{Status::bad_request, std::string{decoded.error().reason}, std::string{param.name}};
      return;
    }
    auto value = detail::convert_text<V>(*decoded);
    if (!value) {
      refused = Rejection{Status::bad_request, "must be " + detail::kind_of<V>(), std::string{param.name}};
      return;
    }
    into = std::move(*value);
  }
};

/// The decoded query string: a described struct (`Query<Page>` for "?limit=10&offset=20"; a missing or
/// mistyped member is a 422 naming it), or the raw name/value pairs (`Query<std::map<std::string,
/// std::string>>`, or a vector of pairs to keep repeats and order). A bad escape is a 400.
///
///   struct Page { std::optional<int> limit; std::optional<int> offset; };
///   BOOST_DESCRIBE_STRUCT(Page, (), (limit, offset))
///   std::string list(Query<Page> page) { return std::to_string(page->limit.value_or(50)); }
template <class T>
struct Query {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
};

template <class T>
struct Extract<Query<T>> {
  static_assert(json::detail::is_described_struct<T> || std::is_same_v<T, std::map<std::string, std::string>> ||
                    std::is_same_v<T, std::vector<std::pair<std::string, std::string>>>,
                "Query<T> takes a struct declared with BOOST_DESCRIBE_STRUCT, std::map<std::string, std::string> "
                "or std::vector<std::pair<std::string, std::string>>");
  static Result<Query<T>, Rejection> from_parts(Request& request) {
    auto pairs = parse_query(request.query());
    if (!pairs) return Err{Rejection{Status::bad_request, std::string{pairs.error().reason}, ""}};
    if constexpr (json::detail::is_described_struct<T>) {
      auto value = detail::from_pairs<T>(*pairs, Status::unprocessable_entity, Status::unprocessable_entity);
      if (!value) return Err{std::move(value).error()};
      return Query<T>{std::move(*value)};
    } else if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
      T map;
      for (auto& [name, value] : *pairs) map.insert_or_assign(std::move(name), std::move(value));  // the last wins
      return Query<T>{std::move(map)};
    } else {
      return Query<T>{std::move(*pairs)};
    }
  }
};

/// The request's header fields (views valid while the handler runs).
class Headers {
 public:
  explicit Headers(std::span<const HeaderField> fields) noexcept : fields_(fields) {}
  /// The first field named `name` (case-insensitive).
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }
  std::size_t size() const noexcept { return fields_.size(); }

 private:
  std::span<const HeaderField> fields_;
};

template <>
struct Extract<Headers> {
  static Result<Headers, Rejection> from_parts(Request& request) { return Headers{request.headers()}; }
};

/// The client's address.
struct ConnectInfo {
  SocketAddr peer;
};

template <>
struct Extract<ConnectInfo> {
  static Result<ConnectInfo, Rejection> from_parts(Request& request);
};

/// The whole body as text: 413 over the server's body limit, 400 if it is not UTF-8.
template <>
struct Extract<std::string> {
  static Task<Result<std::string, Rejection>> from_request(Request& request);
};

/// The whole body as bytes, whatever they are: 413 over the server's body limit.
struct Bytes {
  std::string value;
  std::string& operator*() noexcept { return value; }
  std::string* operator->() noexcept { return &value; }
};

template <>
struct Extract<Bytes> {
  static Task<Result<Bytes, Rejection>> from_request(Request& request);
};

/// The body as it arrives, piece by piece (uploads too large to hold, proxies). Each piece is a view
/// valid until the next call; an empty one marks the end.
///
///   Task<Response> upload(BodyStream body) {
///     for (;;) {
///       Result<std::string_view, BodyError> piece = co_await body.next();
///       if (!piece) co_return Response::error(piece.error().status, piece.error().message);
///       if (piece->empty()) break;
///       co_await file.write(*piece);
///     }
///     co_return Response::empty(Status::no_content);
///   }
class BodyStream {
 public:
  // The request lives in the handler's frame for the handler's whole run, so this pointer stays valid.
  explicit BodyStream(RequestBody& body) noexcept : body_(&body) {}
  Task<Result<std::string_view, BodyError>> next() { return body_->next(); }
  std::optional<std::uint64_t> content_length() const noexcept { return body_->content_length(); }

 private:
  RequestBody* body_;
};

template <>
struct Extract<BodyStream> {
  static Task<Result<BodyStream, Rejection>> from_request(Request& request);
};

namespace detail {
/// The body of a request that must be JSON: 415 for another Content-Type, 413 over the limit.
Task<Result<std::string, Rejection>> read_json_body(Request& request);
/// The body of a request that must be a urlencoded form, decoded into pairs (415, 413, 400).
Task<Result<Pairs, Rejection>> read_form_body(Request& request);
/// A JSON error as a rejection: 400 for bad syntax, 422 naming the member for the wrong shape.
Rejection json_rejection(json::Error error);
}  // namespace detail

/// A JSON body read into T (a struct declared with BOOST_DESCRIBE_STRUCT, a vector, a map, ...), or a
/// JSON response written from one. The request needs `Content-Type: application/json` (or `+json`):
/// 415 otherwise; malformed JSON (or nested deeper than 64) is a 400, a missing or mistyped member a
/// 422 naming it ("items[2].price").
///
///   Task<Json<User>> create_user(State<App> app, Json<NewUser> body) {
///     User user = co_await app->users.create(std::move(*body));   // into a local: GCC 12 (architecture.md)
///     co_return Json{std::move(user)};
///   }
template <class T>
struct Json {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};
template <class T>
Json(T) -> Json<T>;

template <class T>
struct Extract<Json<T>> {
  static Task<Result<Json<T>, Rejection>> from_request(Request& request) {
    Task<Result<std::string, Rejection>> reading = detail::read_json_body(request);
    Result<std::string, Rejection> body = co_await std::move(reading);
    if (!body) co_return Err{std::move(body).error()};
    Result<T, json::Error> parsed = json::from_string<T>(*body);
    if (!parsed) co_return Err{detail::json_rejection(std::move(parsed).error())};
    co_return Json<T>{std::move(*parsed)};
  }
};

/// An `application/x-www-form-urlencoded` body (an HTML form) read into a described struct, member by
/// name as for Query<T>: 415 for another Content-Type, 400 for a bad escape, 422 naming a missing or
/// mistyped member.
template <class T>
struct Form {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
};

template <class T>
struct Extract<Form<T>> {
  static_assert(json::detail::is_described_struct<T>, "Form<T> takes a struct declared with BOOST_DESCRIBE_STRUCT");
  static Task<Result<Form<T>, Rejection>> from_request(Request& request) {
    Task<Result<detail::Pairs, Rejection>> reading = detail::read_form_body(request);
    Result<detail::Pairs, Rejection> pairs = co_await std::move(reading);
    if (!pairs) co_return Err{std::move(pairs).error()};
    Result<T, Rejection> value =
        detail::from_pairs<T>(*pairs, Status::unprocessable_entity, Status::unprocessable_entity);
    if (!value) co_return Err{std::move(value).error()};
    co_return Form<T>{std::move(*value)};
  }
};

/// A value a middleware attached to the request (request.extensions().insert(...)), copied. Missing is
/// a 500: the layer that provides it is not on this route.
///
///   std::string whoami(Extension<CurrentUser> user) { return user->name; }
template <class T>
struct Extension {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
  const T* operator->() const noexcept { return &value; }
};

template <class T>
struct Extract<Extension<T>> {
  static Result<Extension<T>, Rejection> from_parts(Request& request) {
    if (const T* found = request.extension<T>()) return Extension<T>{*found};
    return Err{Rejection{Status::internal_server_error,
                         "a handler wants an extension that no layer on its route provides", ""}};
  }
};

/// A header name as a template argument: Header<"x-api-key">.
template <std::size_t N>
struct HeaderName {
  char text[N]{};
  constexpr HeaderName(const char (&name)[N]) noexcept {  // NOLINT: implicit by design
    for (std::size_t i = 0; i < N; ++i) text[i] = name[i];
  }
  constexpr std::string_view view() const noexcept { return {text, N - 1}; }
};

/// One header field's value by name, required: a 400 naming it when absent (take
/// std::optional<Header<"...">> when it may be). The view is valid while the handler runs.
///
///   std::string key(Header<"x-api-key"> key) { return std::string{key.value}; }
template <HeaderName Name>
struct Header {
  std::string_view value;
};

template <HeaderName Name>
struct Extract<Header<Name>> {
  static Result<Header<Name>, Rejection> from_parts(Request& request) {
    if (auto value = request.header(Name.view())) return Header<Name>{*value};
    return Err{Rejection{Status::bad_request, "missing header", std::string{Name.view()}}};
  }
};

/// The token of `Authorization: Bearer <token>`: a 401 when absent or of another scheme.
struct BearerToken {
  std::string_view token;
};

template <>
struct Extract<BearerToken> {
  static Result<BearerToken, Rejection> from_parts(Request& request);
};

/// The media type of the request body, lower case and without parameters ("application/json" for
/// "Application/JSON; charset=utf-8"): a 415 when the request has none.
struct ContentType {
  std::string mime;
};

template <>
struct Extract<ContentType> {
  static Result<ContentType, Rejection> from_parts(Request& request);
};

/// Any extractor, made optional: nullopt instead of a rejection.
template <Extractor X>
struct Extract<std::optional<X>> {
  static Result<std::optional<X>, Rejection> from_parts(Request& request) requires PartsExtractor<X> {
    auto got = Extract<X>::from_parts(request);
    if (!got) return std::optional<X>{};
    return std::optional<X>{std::move(*got)};
  }
  static Task<Result<std::optional<X>, Rejection>> from_request(Request& request) requires BodyExtractor<X> {
    Task<Result<X, Rejection>> extracting = Extract<X>::from_request(request);
    Result<X, Rejection> got = co_await std::move(extracting);
    if (!got) co_return std::optional<X>{};
    co_return std::optional<X>{std::move(*got)};
  }
};

/// Any extractor with its rejection handed to the handler, which decides what to answer.
template <Extractor X>
struct Extract<Result<X, Rejection>> {
  static Result<Result<X, Rejection>, Rejection> from_parts(Request& request) requires PartsExtractor<X> {
    return Extract<X>::from_parts(request);
  }
  static Task<Result<Result<X, Rejection>, Rejection>> from_request(Request& request) requires BodyExtractor<X> {
    Task<Result<X, Rejection>> extracting = Extract<X>::from_request(request);
    Result<X, Rejection> got = co_await std::move(extracting);
    co_return Result<Result<X, Rejection>, Rejection>{std::move(got)};
  }
};

// ---------------------------------------------------------------------------------------------------
// Responses

/// Specialized for each type a handler may return.
template <class T>
struct IntoResponse;

template <class T>
concept Responder = requires(T value) {
  { IntoResponse<T>::into(std::move(value)) } -> std::same_as<Response>;
};

template <>
struct IntoResponse<Response> {
  static Response into(Response response) { return response; }
};
/// Text: 200, text/plain.
template <>
struct IntoResponse<std::string> {
  static Response into(std::string text) { return Response::text(std::move(text)); }
};
template <>
struct IntoResponse<const char*> {
  static Response into(const char* text) { return Response::text(text); }
};
/// Just a status, no body.
template <>
struct IntoResponse<Status> {
  static Response into(Status status) { return Response::empty(status); }
};
template <>
struct IntoResponse<Rejection> {
  static Response into(Rejection rejection) { return rejection.into_response(); }
};
/// A status with a body: `return std::pair{Status::created, std::string{"made"}};`
template <Responder T>
struct IntoResponse<std::pair<Status, T>> {
  static Response into(std::pair<Status, T> value) {
    Response response = IntoResponse<T>::into(std::move(value.second));
    response.status = value.first;
    return response;
  }
};
/// Headers on top of a body's response (they replace the body's own of the same name):
/// `return std::tuple{Status::created, headers, Json{user}};` or `std::pair{headers, text}`.
template <Responder T>
struct IntoResponse<std::tuple<Status, HeaderMap, T>> {
  static Response into(std::tuple<Status, HeaderMap, T> value) {
    Response response = IntoResponse<T>::into(std::move(std::get<2>(value)));
    response.status = std::get<0>(value);
    for (const auto& field : std::get<1>(value)) response.headers.set(field.name, field.value);
    return response;
  }
};
template <Responder T>
struct IntoResponse<std::pair<HeaderMap, T>> {
  static Response into(std::pair<HeaderMap, T> value) {
    Response response = IntoResponse<T>::into(std::move(value.second));
    for (const auto& field : value.first) response.headers.set(field.name, field.value);
    return response;
  }
};
/// JSON written from the value straight into the body's buffer: 200, application/json.
template <class T>
struct IntoResponse<Json<T>> {
  static Response into(const Json<T>& value) { return Response::json(json::to_string(value.value)); }
};
/// Bytes: 200, application/octet-stream.
template <>
struct IntoResponse<Bytes> {
  static Response into(Bytes bytes);
};
/// A body as it is (a stream from Body::channel, say): 200, application/octet-stream unless the
/// handler wraps it with headers of its own.
template <>
struct IntoResponse<Body> {
  static Response into(Body body);
};

/// An HTML page: 200, text/html.
struct Html {
  std::string value;
};
template <>
struct IntoResponse<Html> {
  static Response into(Html html) { return Response::html(std::move(html.value)); }
};

/// A redirect: `return Redirect::to("/login");`
struct Redirect {
  Status status;
  std::string location;
  /// 303 See Other: the client follows with a GET (after a form's POST).
  static Redirect to(std::string_view location) { return {Status::see_other, std::string{location}}; }
  /// 307: the client repeats the same method and body at the new place.
  static Redirect temporary(std::string_view location) { return {Status::temporary_redirect, std::string{location}}; }
  /// 308: the same, and the client may remember it.
  static Redirect permanent(std::string_view location) { return {Status::permanent_redirect, std::string{location}}; }
};
template <>
struct IntoResponse<Redirect> {
  static Response into(Redirect redirect);
};

/// The value's response, or the error's: the AppError pattern.
template <Responder T, Responder E>
struct IntoResponse<Result<T, E>> {
  static Response into(Result<T, E> result) {
    if (result) return IntoResponse<T>::into(std::move(*result));
    return IntoResponse<E>::into(std::move(result).error());
  }
};

// ---------------------------------------------------------------------------------------------------
// Turning a typed handler into the router's erased one

namespace detail {

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<Task<T>> : std::true_type {
  using value_type = T;
};

/// A handler's parameter and result types, from a function pointer or a lambda's call operator.
template <class F>
struct HandlerSignature : HandlerSignature<decltype(&F::operator())> {};
template <class R, class... A>
struct HandlerSignature<R (*)(A...)> {
  using result = R;
  using parameters = std::tuple<std::remove_cvref_t<A>...>;
};
template <class C, class R, class... A>
struct HandlerSignature<R (C::*)(A...)> : HandlerSignature<R (*)(A...)> {};
template <class C, class R, class... A>
struct HandlerSignature<R (C::*)(A...) const> : HandlerSignature<R (*)(A...)> {};

template <class... Ps>
constexpr bool only_the_last_consumes_the_body() {
  constexpr bool consumes[] = {false, (BodyExtractor<Ps> || std::same_as<Ps, Request>)...};
  for (std::size_t i = 1; i + 1 < sizeof...(Ps) + 1; ++i)
    if (consumes[i]) return false;
  return true;
}

/// Instantiated for the first parameter that is not an extractor, so that its position and type show
/// in the compiler's notes under the message.
template <std::size_t Position, class Parameter>
struct ParameterIsNotAnExtractor {
  static_assert(Extractor<Parameter>,
                "a handler parameter is not an extractor (its position, counted from 0, and its type are in "
                "the note above this line): take State<S>, Path<T>, Query<T>, Json<T>, Form<T>, Headers, "
                "Header<\"name\">, BearerToken, ContentType, ConnectInfo, Extension<T>, std::string, Bytes, "
                "BodyStream, Multipart, Request, or std::optional / Result<X, Rejection> of one of them "
                "(or specialize Extract<T>)");
  static constexpr bool ok = true;
};

template <class... Ps>
constexpr bool check_parameters() {
  return []<std::size_t... I>(std::index_sequence<I...>) { return (ParameterIsNotAnExtractor<I, Ps>::ok && ...); }
  (std::index_sequence_for<Ps...>{});
}

template <class P>
bool extract_part(Request& request, std::optional<P>& into, Response& rejected) {
  if constexpr (std::same_as<P, Request>) {
    into.emplace(std::move(request));
    return true;
  } else {
    Result<P, Rejection> got = Extract<P>::from_parts(request);
    if (!got) {
      rejected = render_rejection(request, got.error());
      return false;
    }
    into.emplace(std::move(*got));
    return true;
  }
}

/// A handler that cannot wait: every parameter from the head, a result that is not a task.
template <class F, class R, class... Ps>
Response call_now(F& handler, Request& request) {
  std::tuple<std::optional<Ps>...> arguments;
  Response rejected;
  const bool extracted = [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (extract_part(request, std::get<I>(arguments), rejected) && ...);
  }
  (std::index_sequence_for<Ps...>{});
  if (!extracted) return rejected;
  return std::apply([&](auto&... argument) { return IntoResponse<R>::into(handler(std::move(*argument)...)); },
                    arguments);
}

/// A handler that may wait: a body extractor, or a task result. Takes the Request by value, so it owns
/// what its extractors point into for as long as it runs.
template <class F, class R, class... Ps>
Task<Response> call_later(std::shared_ptr<F> handler, Request request) {
  std::tuple<std::optional<Ps>...> arguments;
  Response rejected;
  constexpr std::size_t count = sizeof...(Ps);
  using Last = std::tuple_element_t<count == 0 ? 0 : count - 1, std::tuple<Ps..., void>>;
  constexpr bool body_last = count > 0 && BodyExtractor<Last>;
  // The head's extractors, in order (the last too unless it consumes the body).
  const bool parts_extracted = [&]<std::size_t... I>(std::index_sequence<I...>) {
    return (extract_part(request, std::get<I>(arguments), rejected) && ...);
  }
  (std::make_index_sequence < body_last ? count - 1 : count > {});
  if (!parts_extracted) co_return rejected;
  if constexpr (body_last) {
    Task<Result<Last, Rejection>> extracting = Extract<Last>::from_request(request);
    Result<Last, Rejection> got = co_await std::move(extracting);
    if (!got) co_return render_rejection(request, got.error());
    std::get<count - 1>(arguments).emplace(std::move(*got));
  }
  if constexpr (is_task<R>::value) {
    using Value = typename is_task<R>::value_type;
    R running = std::apply([&](auto&... argument) { return (*handler)(std::move(*argument)...); }, arguments);
    Value value = co_await std::move(running);
    co_return IntoResponse<Value>::into(std::move(value));
  } else {
    co_return std::apply([&](auto&... argument) { return IntoResponse<R>::into((*handler)(std::move(*argument)...)); },
                         arguments);
  }
}

template <class F, class R, class... Ps>
Handler typed_handler(F handler, std::tuple<Ps...>*) {
  static_assert(check_parameters<Ps...>());
  static_assert(only_the_last_consumes_the_body<Ps...>(),
                "only a handler's last parameter may consume the body (Request, std::string, ...): move it last");
  if constexpr (is_task<R>::value) {
    static_assert(Responder<typename is_task<R>::value_type>,
                  "the handler's Task result cannot become a response: return Response, std::string, Json<T>, Html, "
                  "Redirect, Bytes, Body, Sse, Status, std::pair<Status, X>, std::tuple<Status, HeaderMap, X> or "
                  "Result<X, E> of those (or specialize IntoResponse)");
  } else {
    static_assert(Responder<R>,
                  "the handler's result cannot become a response: return Response, std::string, Json<T>, Html, "
                  "Redirect, Bytes, Body, Sse, Status, std::pair<Status, X>, std::tuple<Status, HeaderMap, X> or "
                  "Result<X, E> of those (or specialize IntoResponse)");
  }
  constexpr bool waits = is_task<R>::value || (BodyExtractor<Ps> || ...);
  auto shared = std::make_shared<F>(std::move(handler));
  if constexpr (waits) {
    return Handler{[shared](Request& request) -> Reply {
                     return Reply{std::in_place_index<1>, call_later<F, R, Ps...>(shared, std::move(request))};
                   },
                   true};
  } else {
    return Handler{[shared](Request& request) -> Reply {
                     return Reply{std::in_place_index<0>, call_now<F, R, Ps...>(*shared, request)};
                   },
                   false};
  }
}

}  // namespace detail
}  // namespace spindle::http
