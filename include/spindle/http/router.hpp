#pragma once
// Router: maps a method and a path to a handler, after Axum's Router.
//
// Paths are matched by a radix tree (detail/path_tree.hpp): static segments, `{name}` parameters (one
// segment) and `{*name}` catch-alls (the rest of the path), static text winning over a parameter and a
// parameter over a catch-all. Conflicting routes are refused when they are added, with a message naming
// both. No route: 404; a route without a handler for the method: 405 with Allow; both with a JSON error
// body, unless a fallback handles them.

#include <array>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>
#include <vector>

#include "spindle/http/detail/handler.hpp"
#include "spindle/http/extract.hpp"
#include "spindle/http/layer.hpp"
#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

namespace detail {

/// A handler that takes the raw Request and returns a Response or a Task of one: no extraction.
template <class F>
concept RawHandler = std::is_invocable_v<F&, Request&&> &&
    (std::is_same_v<std::invoke_result_t<F&, Request&&>, Response> ||
     std::is_same_v<std::invoke_result_t<F&, Request&&>, Task<Response>>);

template <class F>
Handler make_handler(F handler) {
  if constexpr (RawHandler<F>) {
    using R = std::invoke_result_t<F&, Request&&>;
    // A task runs after the call returns, when the server may have reused the request's storage for
    // another connection (a waiting request is moved out of the connection's buffers): it must own its
    // Request.
    static_assert(std::is_same_v<R, Response> || !std::is_invocable_v<F&, Request&>,
                  "a handler that returns a Task must take its spindle::http::Request by value, not by reference");
    return Handler{[handler = std::move(handler)](Request& request) mutable -> Reply {
                     if constexpr (std::is_same_v<R, Response>)
                       return Reply{std::in_place_index<0>, handler(std::move(request))};
                     else
                       return Reply{std::in_place_index<1>, handler(std::move(request))};
                   },
                   !std::is_same_v<R, Response>};
  } else {
    using Signature = HandlerSignature<std::decay_t<F>>;
    return typed_handler<std::decay_t<F>, typename Signature::result>(
        std::move(handler), static_cast<typename Signature::parameters*>(nullptr));
  }
}

class RouterCore;

}  // namespace detail

/// The handlers of one path, by method.
///
///   router.route("/users/{id}", get(show_user).put(replace_user).del(delete_user));
class MethodRouter {
 public:
  /// Adds `handler` for `method`; a method given twice is a programming error (std::invalid_argument).
  template <class F>
  MethodRouter& on(Method method, F handler) & {
    set(method, detail::make_handler(std::move(handler)));
    return *this;
  }
  template <class F>
  MethodRouter&& on(Method method, F handler) && {
    return std::move(on(method, std::move(handler)));
  }
  template <class F>
  decltype(auto) get(F h) && {
    return std::move(*this).on(Method::get, std::move(h));
  }
  template <class F>
  decltype(auto) head(F h) && {
    return std::move(*this).on(Method::head, std::move(h));
  }
  template <class F>
  decltype(auto) post(F h) && {
    return std::move(*this).on(Method::post, std::move(h));
  }
  template <class F>
  decltype(auto) put(F h) && {
    return std::move(*this).on(Method::put, std::move(h));
  }
  template <class F>
  decltype(auto) del(F h) && {
    return std::move(*this).on(Method::del, std::move(h));
  }
  template <class F>
  decltype(auto) patch(F h) && {
    return std::move(*this).on(Method::patch, std::move(h));
  }
  template <class F>
  decltype(auto) options(F h) && {
    return std::move(*this).on(Method::options, std::move(h));
  }
  /// Wraps the handlers added so far in `layer` (per-route middleware).
  MethodRouter&& layer(const Layer& layer) && {
    wrap([&](detail::Handler inner) { return layer.apply(std::move(inner)); });
    return std::move(*this);
  }
  /// `any` for a handler already erased (nest_service).
  void on_any(detail::Handler handler) { set_any(std::move(handler)); }
  /// A handler for every method that has none of its own.
  template <class F>
  MethodRouter&& any(F h) && {
    set_any(detail::make_handler(std::move(h)));
    return std::move(*this);
  }

  /// The handler for a request's method: its own, GET's for HEAD, or `any`'s; null if none.
  const detail::Handler* find(Method method) const noexcept;
  /// The Allow field value: the methods with a handler ("GET, HEAD, POST").
  std::string allow() const;
  bool empty() const noexcept;

  /// Adds every handler of `other`; a method both have is a programming error.
  void merge(MethodRouter other);
  /// Wraps every handler (the router binds state this way).
  void wrap(const std::function<detail::Handler(detail::Handler)>& wrapper);

 private:
  friend class detail::RouterCore;
  void set(Method method, detail::Handler handler);
  void set_any(detail::Handler handler);
  static constexpr std::size_t kMethods = static_cast<std::size_t>(Method::other);
  std::array<detail::Handler, kMethods> by_method_;
  detail::Handler any_;
};

template <class F>
MethodRouter on(Method method, F h) {
  return MethodRouter{}.on(method, std::move(h));
}
template <class F>
MethodRouter get(F h) {
  return MethodRouter{}.get(std::move(h));
}
template <class F>
MethodRouter head(F h) {
  return MethodRouter{}.head(std::move(h));
}
template <class F>
MethodRouter post(F h) {
  return MethodRouter{}.post(std::move(h));
}
template <class F>
MethodRouter put(F h) {
  return MethodRouter{}.put(std::move(h));
}
template <class F>
MethodRouter del(F h) {
  return MethodRouter{}.del(std::move(h));
}
template <class F>
MethodRouter patch(F h) {
  return MethodRouter{}.patch(std::move(h));
}
template <class F>
MethodRouter options(F h) {
  return MethodRouter{}.options(std::move(h));
}
template <class F>
MethodRouter any(F h) {
  return MethodRouter{}.any(std::move(h));
}

namespace detail {

/// The untyped router behind Router<S>.
class RouterCore {
 public:
  RouterCore();
  RouterCore(const RouterCore&);
  RouterCore& operator=(const RouterCore&);
  RouterCore(RouterCore&&) noexcept;
  RouterCore& operator=(RouterCore&&) noexcept;
  ~RouterCore();

  void route(std::string_view pattern, MethodRouter methods);
  void nest(std::string_view prefix, const RouterCore& inner);
  void merge(const RouterCore& other);
  void set_fallback(Handler handler);
  void bind_state(std::shared_ptr<void> state, const std::type_info& type);
  /// Wraps every route's handlers, and unless `matched_routes_only` the 405s and the fallback too.
  void wrap(const std::function<Handler(Handler)>& wrapper, bool matched_routes_only);

  /// Routes `request` (sets its parameters and matched route): the handler to run, which is the 404 or
  /// 405 answer when nothing matches. `params` is scratch space the request's parameters point into.
  const Handler& route(Request& request, std::vector<PathParam>& params) const;

 private:
  struct Routes;
  std::unique_ptr<Routes> routes_;
};

}  // namespace detail

/// An HTTP router. `S` is the type of the application state its handlers need; a Router<S> becomes
/// servable (Router<>) once with_state gives it that state.
///
///   auto app = Router<App>{}
///                  .route("/users", get(list_users).post(create_user))
///                  .route("/users/{id}", get(show_user).del(delete_user))
///                  .nest("/admin", admin_routes)
///                  .fallback([](Request) { return Response::error(Status::not_found, "no such page"); })
///                  .with_state(App{...});
///   co_await serve(std::move(listener), std::move(app));
template <class S = void>
class Router {
 public:
  Router() = default;

  /// Adds a route; a pattern that conflicts with one already added throws std::invalid_argument naming
  /// both. Adding the same pattern again merges the methods.
  Router& route(std::string_view pattern, MethodRouter methods) & {
    core_.route(pattern, std::move(methods));
    return *this;
  }
  Router&& route(std::string_view pattern, MethodRouter methods) && {
    return std::move(route(pattern, std::move(methods)));
  }
  /// Serves every route of `inner` under `prefix` ("/api" + "/users" = "/api/users").
  Router& nest(std::string_view prefix, const Router& inner) & {
    core_.nest(prefix, inner.core_);
    return *this;
  }
  Router&& nest(std::string_view prefix, const Router& inner) && { return std::move(nest(prefix, inner)); }
  /// Adds every route of `other`.
  Router& merge(const Router& other) & {
    core_.merge(other.core_);
    return *this;
  }
  Router&& merge(const Router& other) && { return std::move(merge(other)); }
  /// The handler for requests no route matches (instead of the 404).
  template <class F>
  Router& fallback(F handler) & {
    core_.set_fallback(detail::make_handler(std::move(handler)));
    return *this;
  }
  template <class F>
  Router&& fallback(F handler) && {
    return std::move(fallback(std::move(handler)));
  }
  /// Serves every path under `prefix` with one handler (ServeDir, a proxied service), which sees the
  /// target without the prefix, as Axum's nest_service: "/static/app.css" reaches it as "/app.css".
  /// "/static" itself is redirected (308) to "/static/", so that relative links in what it serves there
  /// resolve under the prefix.
  template <class F>
  Router& nest_service(std::string_view prefix, F handler) & {
    if (prefix.empty() || prefix.front() != '/' || prefix.back() == '/')
      throw std::invalid_argument("nest_service prefix must start with '/' and not end with one: " +
                                  std::string{prefix});
    detail::Handler service = detail::make_handler(std::move(handler));
    const std::size_t strip = prefix.size();
    auto stripped = [strip, call = service.call](Request& request) {
      const std::string_view path = request.path();  // a view into the target
      request.set_target(std::string_view{
          path.data() + strip,
          static_cast<std::size_t>(request.target().data() + request.target().size() - (path.data() + strip))});
      return call(request);
    };
    MethodRouter below, root;
    below.on_any(detail::Handler{stripped, service.may_suspend});
    root.on_any(detail::Handler{stripped, service.may_suspend});
    core_.route(std::string{prefix} + "/{*path}", std::move(below));
    core_.route(std::string{prefix} + "/", std::move(root));
    core_.route(prefix, MethodRouter{}.any([location = std::string{prefix} + "/"](Request request) {
      std::string target = location;
      if (!request.query().empty()) target += "?" + std::string{request.query()};
      Response redirect = Response::empty(Status::permanent_redirect);
      redirect.headers.set("location", target);
      return redirect;
    }));
    return *this;
  }
  template <class F>
  Router&& nest_service(std::string_view prefix, F handler) && {
    return std::move(nest_service(prefix, std::move(handler)));
  }
  /// Wraps everything the router has so far in `layer`: its routes, its 405 answers and its fallback
  /// (the 404), so logging, CORS or a request id see every request. Routes added later are not wrapped.
  /// The last layer added is the outermost: it runs first.
  Router& layer(const Layer& layer) & {
    core_.wrap([&](detail::Handler inner) { return layer.apply(std::move(inner)); }, false);
    return *this;
  }
  Router&& layer(const Layer& layer) && { return std::move(this->layer(layer)); }
  /// Like layer, but only for requests that match a route and method: an authentication layer added this
  /// way lets unknown paths get their 404 rather than a 401.
  Router& route_layer(const Layer& layer) & {
    core_.wrap([&](detail::Handler inner) { return layer.apply(std::move(inner)); }, true);
    return *this;
  }
  Router&& route_layer(const Layer& layer) && { return std::move(route_layer(layer)); }
  /// Renders every rejection of the extractors of the handlers the router has so far (instead of
  /// {"error": ..., "field": ...}): one place for an application's own error shape. A nested router's own
  /// renderer wins for its routes.
  ///
  ///   router.on_rejection([](const Rejection& r) {
  ///     return Response::json(fmt::format(R"({{"problem":{}}})", json_quote(r.message)), r.status);
  ///   });
  Router& on_rejection(RejectionRenderer render) & {
    auto shared = std::make_shared<const RejectionRenderer>(std::move(render));
    core_.wrap(
        [shared](detail::Handler inner) {
          return detail::Handler{[shared, call = std::move(inner.call)](Request& request) {
                                   // Outer wrappers run first: the innermost renderer, the one closest to
                                   // the handler, is the one left set.
                                   request.set_rejection_renderer(shared.get());
                                   return call(request);
                                 },
                                 inner.may_suspend};
        },
        false);
    return *this;
  }
  Router&& on_rejection(RejectionRenderer render) && { return std::move(on_rejection(std::move(render))); }
  /// Gives the handlers their state; request.state<S>() finds it.
  template <class T = S>
  requires(!std::is_void_v<T> && std::is_same_v<T, S>) Router<> with_state(T state) && {
    Router<> bound;
    bound.core_ = std::move(core_);
    bound.core_.bind_state(std::make_shared<T>(std::move(state)), typeid(T));
    return bound;
  }

  const detail::RouterCore& core() const noexcept { return core_; }

 private:
  template <class>
  friend class Router;
  detail::RouterCore core_;
};

}  // namespace spindle::http
