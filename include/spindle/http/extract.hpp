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
// 400 for malformed input (a bad percent-escape, a path parameter of the wrong type), 422 for
// well-formed input of the wrong shape (a query parameter of the wrong type), 413 over a limit,
// 500 for a misconfigured router; the body is {"error": ..., "field": ...}. A handler that wants to
// decide itself takes std::optional<X> or Result<X, Rejection> instead of X.

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
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// Why an extractor refused a request: the status, what was wrong, and the field (or parameter) at fault.
///
///   return Err{Rejection{Status::unprocessable_entity, "must be positive", "limit"}};
struct Rejection {
  Status status = Status::bad_request;
  std::string message;
  std::string field;

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
  } else {
    static_assert(sizeof(T) == 0,
                  "this type cannot be read from text: use an integer, a floating-point type, bool "
                  "or std::string");
  }
}

template <class T>
constexpr std::string_view kind_of() {
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

}  // namespace detail

/// The route's path parameters, percent-decoded and converted: one value (`Path<int>` for "/users/{id}")
/// or a tuple of them in the route's order (`Path<std::tuple<int, std::string>>`). A value of the wrong
/// type or a bad escape is a 400 naming the parameter.
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
    if constexpr (detail::is_tuple<T>::value) {
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
      refused = Rejection{Status::bad_request, "must be " + std::string{detail::kind_of<V>()}, std::string{param.name}};
      return;
    }
    into = std::move(*value);
  }
};

/// The decoded query string as name/value pairs (`Query<std::map<std::string, std::string>>`, or a
/// vector of pairs to keep repeats and order). A bad escape is a 400.
template <class T>
struct Query {
  T value;
  T& operator*() noexcept { return value; }
  const T& operator*() const noexcept { return value; }
  T* operator->() noexcept { return &value; }
};

template <class T>
struct Extract<Query<T>> {
  static_assert(
      std::is_same_v<T, std::map<std::string, std::string>> ||
          std::is_same_v<T, std::vector<std::pair<std::string, std::string>>>,
      "Query<T> takes std::map<std::string, std::string> or std::vector<std::pair<std::string, std::string>>");
  static Result<Query<T>, Rejection> from_parts(Request& request) {
    auto pairs = parse_query(request.query());
    if (!pairs) return Err{Rejection{Status::bad_request, std::string{pairs.error().reason}, ""}};
    if constexpr (std::is_same_v<T, std::map<std::string, std::string>>) {
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
                "the note above this line): take Request, State<S>, Path<T>, Query<T>, Headers, ConnectInfo, "
                "std::string, or std::optional / Result<X, Rejection> of one of them");
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
      rejected = got.error().into_response();
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
    if (!got) co_return got.error().into_response();
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
                  "the handler's Task result cannot become a response: return Response, std::string, Status, "
                  "std::pair<Status, X> or Result<X, E> of those (or specialize IntoResponse)");
  } else {
    static_assert(Responder<R>,
                  "the handler's result cannot become a response: return Response, std::string, Status, "
                  "std::pair<Status, X> or Result<X, E> of those (or specialize IntoResponse)");
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
