// MethodRouter and the untyped router core: routes in a path tree, dispatch with 404/405 answers.

#include <stdexcept>
#include <unordered_map>

#include "spindle/http/detail/path_tree.hpp"
#include "spindle/http/router.hpp"

namespace spindle::http {

void MethodRouter::set(Method method, detail::Handler handler) {
  if (method == Method::other) throw std::invalid_argument("MethodRouter: a handler needs a standard method");
  auto& slot = by_method_[static_cast<std::size_t>(method)];
  if (slot) throw std::invalid_argument("MethodRouter: two handlers for " + std::string{method_name(method)});
  slot = std::move(handler);
}

void MethodRouter::set_any(detail::Handler handler) {
  if (any_) throw std::invalid_argument("MethodRouter: two `any` handlers");
  any_ = std::move(handler);
}

const detail::Handler* MethodRouter::find(Method method) const noexcept {
  if (method != Method::other) {
    if (const auto& own = by_method_[static_cast<std::size_t>(method)]) return &own;
    if (method == Method::head) {
      if (const auto& get = by_method_[static_cast<std::size_t>(Method::get)]) return &get;
    }
  }
  return any_ ? &any_ : nullptr;
}

std::string MethodRouter::allow() const {
  std::string allowed;
  for (std::size_t i = 0; i < kMethods; ++i) {
    const bool has = by_method_[i] || (static_cast<Method>(i) == Method::head && by_method_[0]);
    if (!has) continue;
    if (!allowed.empty()) allowed += ", ";
    allowed += method_name(static_cast<Method>(i));
  }
  return allowed;
}

bool MethodRouter::empty() const noexcept {
  if (any_) return false;
  for (const auto& h : by_method_)
    if (h) return false;
  return true;
}

void MethodRouter::merge(MethodRouter other) {
  for (std::size_t i = 0; i < kMethods; ++i)
    if (other.by_method_[i]) set(static_cast<Method>(i), std::move(other.by_method_[i]));
  if (other.any_) set_any(std::move(other.any_));
}

void MethodRouter::wrap(const std::function<detail::Handler(detail::Handler)>& wrapper) {
  for (auto& h : by_method_)
    if (h) h = wrapper(std::move(h));
  if (any_) any_ = wrapper(std::move(any_));
}

namespace detail {

namespace {

// The router's own answers are handlers like any other, so that a router's layers (logging, CORS,
// request ids) see them too.
Handler not_found() {
  return Handler{[](Request& request) -> Reply {
                   return Reply{std::in_place_index<0>,
                                Response::error(Status::not_found, "no route for " + std::string{request.path()})};
                 },
                 false};
}

Handler method_not_allowed(const std::string& pattern, std::string allow) {
  return Handler{[pattern, allow = std::move(allow)](Request& request) -> Reply {
                   Response refusal =
                       Response::error(Status::method_not_allowed,
                                       "method " + std::string{request.method_name()} + " not allowed on " + pattern);
                   refusal.headers.set("allow", allow);
                   return Reply{std::in_place_index<0>, std::move(refusal)};
                 },
                 false};
}

}  // namespace

struct RouterCore::Routes {
  struct Route {
    std::string pattern;
    MethodRouter methods;
    Handler refused_method;  // the 405
  };
  // The tree is rebuilt from `routes` when a router is copied (it maps patterns to indices here).
  PathTree tree;
  std::vector<Route> routes;
  std::unordered_map<std::string, std::uint32_t> index;
  Handler fallback = not_found();
  bool custom_fallback = false;

  Route& add(std::string_view pattern, MethodRouter methods) {
    if (auto it = index.find(std::string{pattern}); it != index.end()) {
      Route& route = routes[it->second];
      route.methods.merge(std::move(methods));
      // Layers already applied to this route's 405 are not applied again: layers apply to what the
      // router had when layer() was called.
      route.refused_method = method_not_allowed(route.pattern, route.methods.allow());
      return route;
    }
    const auto id = static_cast<std::uint32_t>(routes.size());
    if (auto inserted = tree.insert(pattern, id); !inserted) throw std::invalid_argument(inserted.error());
    std::string allow = methods.allow();
    routes.push_back({std::string{pattern}, std::move(methods), method_not_allowed(std::string{pattern}, allow)});
    index.emplace(std::string{pattern}, id);
    return routes.back();
  }
  /// Adds a copy of another router's route, keeping its layered 405 when the pattern is new here.
  void add_copy(const std::string& pattern, const Route& from) {
    const bool is_new = !index.contains(pattern);
    Route& added = add(pattern, from.methods);
    if (is_new) added.refused_method = from.refused_method;
  }
};

RouterCore::RouterCore() : routes_(std::make_unique<Routes>()) {}
RouterCore::RouterCore(const RouterCore& other) : RouterCore() {
  merge(other);
  // The 404 handler too, with the layers wrapped around it (merge takes only a custom fallback).
  routes_->fallback = other.routes_->fallback;
  routes_->custom_fallback = other.routes_->custom_fallback;
}
RouterCore& RouterCore::operator=(const RouterCore& other) {
  if (this != &other) *this = RouterCore{other};
  return *this;
}
RouterCore::RouterCore(RouterCore&&) noexcept = default;
RouterCore& RouterCore::operator=(RouterCore&&) noexcept = default;
RouterCore::~RouterCore() = default;

void RouterCore::route(std::string_view pattern, MethodRouter methods) {
  if (methods.empty()) throw std::invalid_argument("route " + std::string{pattern} + " has no handler");
  routes_->add(pattern, std::move(methods));
}

void RouterCore::nest(std::string_view prefix, const RouterCore& inner) {
  if (prefix.empty() || prefix.front() != '/' || prefix.back() == '/')
    throw std::invalid_argument("nest prefix must start with '/' and not end with one: " + std::string{prefix});
  for (const auto& r : inner.routes_->routes) {
    // "/api" + "/" is "/api" itself, as in Axum.
    std::string pattern = r.pattern == "/" ? std::string{prefix} : std::string{prefix} + r.pattern;
    routes_->add_copy(pattern, r);
  }
  if (inner.routes_->custom_fallback) {
    // Paths under the prefix that no inner route matches go to the inner router's fallback.
    for (std::string pattern : {std::string{prefix}, std::string{prefix} + "/{*rest}"}) {
      if (routes_->index.contains(pattern)) continue;
      MethodRouter fallback;
      fallback.set_any(inner.routes_->fallback);
      routes_->add(pattern, std::move(fallback));
    }
  }
}

void RouterCore::merge(const RouterCore& other) {
  for (const auto& r : other.routes_->routes) routes_->add_copy(r.pattern, r);
  if (other.routes_->custom_fallback) {
    if (routes_->custom_fallback) throw std::invalid_argument("merge: both routers have a fallback");
    routes_->fallback = other.routes_->fallback;
    routes_->custom_fallback = true;
  }
}

void RouterCore::set_fallback(Handler handler) {
  routes_->fallback = std::move(handler);
  routes_->custom_fallback = true;
}

void RouterCore::wrap(const std::function<Handler(Handler)>& wrapper, bool matched_routes_only) {
  for (auto& r : routes_->routes) {
    r.methods.wrap(wrapper);
    if (!matched_routes_only) r.refused_method = wrapper(std::move(r.refused_method));
  }
  if (!matched_routes_only) routes_->fallback = wrapper(std::move(routes_->fallback));
}

void RouterCore::bind_state(std::shared_ptr<void> state, const std::type_info& type) {
  auto bind = [&](Handler inner) -> Handler {
    const bool may_suspend = inner.may_suspend;
    return Handler{[state, type = &type, call = std::move(inner.call)](Request& request) {
                     request.set_state(state.get(), type);
                     return call(request);
                   },
                   may_suspend};
  };
  wrap(bind, false);
}

const Handler& RouterCore::route(Request& request, std::vector<PathParam>& params) const {
  const std::optional<std::uint32_t> id = routes_->tree.match(request.path(), params);
  if (!id) {
    request.set_params({}, {});
    return routes_->fallback;
  }
  const Routes::Route& route = routes_->routes[*id];
  request.set_params(params, route.pattern);
  if (const Handler* handler = route.methods.find(request.method())) return *handler;
  if (routes_->custom_fallback) return routes_->fallback;
  return route.refused_method;
}

}  // namespace detail
}  // namespace spindle::http
