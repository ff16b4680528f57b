#pragma once
// TestClient: requests through a Router in the same process, without sockets (Axum's `oneshot`), for
// testing handlers. The request is parsed by the same strict parser as on a connection, routed, and
// the handler's Response is handed back as it is, before any serialization.

#include <string>
#include <string_view>

#include "spindle/http/header_map.hpp"
#include "spindle/http/parser.hpp"
#include "spindle/http/response.hpp"
#include "spindle/http/router.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// Sends requests to a router in process.
///
///   TestClient client{app_routes().with_state(test_state())};
///   Response created = co_await client.post("/users", R"({"name":"Ada"})");
///   EXPECT_EQ(created.status, Status::created);
class TestClient {
 public:
  explicit TestClient(Router<> router) : router_(std::move(router)) {}

  /// One request; a request the parser refuses gets the server's answer (400, 414, ...).
  Task<Response> send(Method method, std::string_view target, HeaderMap headers = {}, std::string body = {});
  Task<Response> get(std::string_view target) { return send(Method::get, target); }
  Task<Response> post(std::string_view target, std::string body, std::string_view content_type = "application/json");

 private:
  Router<> router_;
};

}  // namespace spindle::http
