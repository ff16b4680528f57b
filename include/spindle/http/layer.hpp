#pragma once
// Layers: middleware that wraps handlers, composing like tower's. A layer turns a handler into another
// that does something before it (check, refuse, attach), after it (headers, compression, logging), or
// instead of it.
//
//   auto app = Router<>{}
//                  .route("/users", get(list_users))
//                  .layer(from_fn(require_api_key))   // applies to the routes above, the 404 and 405
//                  .layer(middleware::request_id());  // the outermost runs first
//
// Most layers keep a synchronous handler synchronous (no coroutine frame per request); from_fn's
// middleware is a coroutine, so the handlers it wraps become tasks.

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>

#include "spindle/http/detail/handler.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// Wraps handlers. Provided layers are in middleware.hpp; from_fn makes one from a coroutine.
class Layer {
 public:
  using Wrap = std::function<detail::Handler(detail::Handler)>;
  explicit Layer(Wrap wrap) : wrap_(std::move(wrap)) {}

  detail::Handler apply(detail::Handler inner) const { return wrap_(std::move(inner)); }

 private:
  Wrap wrap_;
};

/// The rest of the chain, handed to a from_fn middleware: the inner layers and the handler.
class Next {
 public:
  explicit Next(std::shared_ptr<const detail::Handler> inner) noexcept : inner_(std::move(inner)) {}

  /// Runs the rest of the chain on `request` and gives back its response.
  Task<Response> run(Request request) const;

 private:
  std::shared_ptr<const detail::Handler> inner_;
};

/// A layer from a coroutine `Task<Response>(Request, Next)`. It may refuse (answer without calling
/// next), change the request, or change the response.
///
///   Task<Response> require_api_key(Request request, Next next) {
///     if (request.header("x-api-key") != "secret") co_return Response::error(Status::unauthorized, "no key");
///     request.extensions().insert(Caller{"ops"});
///     Response response = co_await next.run(std::move(request));
///     response.headers.set("x-checked", "1");
///     co_return response;
///   }
///   router.layer(from_fn(require_api_key));
template <class F>
Layer from_fn(F middleware) {
  static_assert(std::is_invocable_r_v<Task<Response>, F&, Request, Next>,
                "from_fn takes a middleware callable as Task<Response>(Request, Next)");
  auto shared = std::make_shared<F>(std::move(middleware));
  return Layer{[shared](detail::Handler inner) {
    auto rest = std::make_shared<const detail::Handler>(std::move(inner));
    return detail::Handler{[shared, rest](Request& request) -> detail::Reply {
                             return detail::Reply{std::in_place_index<1>, (*shared)(std::move(request), Next{rest})};
                           },
                           true};
  }};
}

namespace detail {

template <class F>
Task<Response> map_later(Task<Response> pending, F change) {
  Response response = co_await std::move(pending);
  change(response);
  co_return response;
}

/// Applies `change(Response&)` to a reply's response: now for a response, once it is ready for a task.
/// Whatever `change` owns lives until then (a permit, a timer start).
template <class F>
Reply map_reply(Reply reply, F change) {
  if (reply.index() == 0) {
    change(std::get<0>(reply));
    return reply;
  }
  return Reply{std::in_place_index<1>, map_later(std::move(std::get<1>(reply)), std::move(change))};
}

/// A layer whose wrapper is `wrap(shared inner handler) -> call`, keeping the inner handler's
/// may_suspend: the wrapper suspends only if the handler does.
template <class Wrap>
Layer keeping_sync(Wrap wrap) {
  return Layer{[wrap = std::move(wrap)](Handler inner) {
    const bool may_suspend = inner.may_suspend;
    return Handler{wrap(std::make_shared<const Handler>(std::move(inner))), may_suspend};
  }};
}

}  // namespace detail
}  // namespace spindle::http
