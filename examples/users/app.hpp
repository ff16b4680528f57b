#pragma once
// The users service's routes: the API, the event feeds, the probes, the metrics and the page.
//
//   POST   /users                 {"name", "email"} -> 201 + Location; 422 {"error","field"}; 409 email taken
//   GET    /users?limit=&offset=  {"users": [...], "total", "limit", "offset"}, by id; limit 1-500 (50)
//   GET    /users/{id}            200, 404; 400 for an id that is not an integer
//   PUT    /users/{id}            replace (both members) -> 200, 404, 409, 422
//   PATCH  /users/{id}            the members given -> 200, 404, 409, 422
//   DELETE /users/{id}            204, 404
//   GET    /ws/events             WebSocket: {"type": "user_created"|"user_updated"|"user_deleted", "user"}
//   GET    /events                the same as server-sent events
//   GET    /healthz, /readyz      alive; database reachable (503 otherwise)
//   GET    /metrics               Prometheus text
//   GET    /                      the page (web/, embedded in the binary)

#include <spindle/http.hpp>
#include <spindle/http/metrics.hpp>

#include <functional>
#include <memory>
#include <string>

#include "events.hpp"
#include "store.hpp"

namespace users {

struct App {
  std::shared_ptr<UserStore> store;
  std::shared_ptr<Events> events;
  std::shared_ptr<spindle::http::HttpMetrics> http_metrics = std::make_shared<spindle::http::HttpMetrics>();
  /// Appends what only the running process knows (open connections, live tasks) to /metrics.
  std::function<void(std::string&)> process_metrics;
  /// Requests slower than this are answered 504.
  spindle::Duration request_timeout = std::chrono::seconds(30);
  /// One access-log line per request on standard error.
  bool access_log = true;
};

/// The service's router, with its layers (request id, access log, metrics, timeout).
spindle::http::Router<> routes(App app);

/// What a handler fails with: a status and the JSON body {"error": message, "field": field}.
struct AppError {
  spindle::http::Status status;
  std::string message;
  std::string field;
};

}  // namespace users

template <>
struct spindle::http::IntoResponse<users::AppError> {
  static Response into(users::AppError error) {
    return Rejection{error.status, std::move(error.message), std::move(error.field)}.into_response();
  }
};
