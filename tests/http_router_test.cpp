// The router through a real server: parameters, catch-alls, nesting, merging, fallbacks, state, 404 and
// 405 answers; and the conflicts it refuses when routes are added.

#include <gtest/gtest.h>

#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
using spindle_test::exchange;
using spindle_test::TestServer;

namespace {

Response describe(Request request) {
  std::string text = std::string{request.method_name()} + " " + std::string{request.matched_route()};
  for (const PathParam& p : request.params()) text += " " + std::string{p.name} + "=" + std::string{p.value};
  return Response::text(text);
}

std::optional<spindle_test::RawResponse> call(int port, std::string_view method, std::string_view target) {
  return exchange(port, std::string{method} + " " + std::string{target} + " HTTP/1.1\r\nHost: t\r\n\r\n",
                  method == "HEAD");
}

struct Counter {
  int base = 0;
};

}  // namespace

TEST(HttpRouter, MatchesStaticParameterAndCatchAllRoutes) {
  TestServer server(Router<>{}
                        .route("/", get(describe))
                        .route("/users", get(describe).post(describe))
                        .route("/users/new", get(describe))
                        .route("/users/{id}", get(describe).put(describe).del(describe))
                        .route("/users/{id}/posts/{post}", get(describe))
                        .route("/files/{*path}", get(describe)));
  const int port = server.port();
  EXPECT_EQ(call(port, "GET", "/")->body, "GET /");
  EXPECT_EQ(call(port, "POST", "/users")->body, "POST /users");
  EXPECT_EQ(call(port, "GET", "/users/new")->body, "GET /users/new");
  EXPECT_EQ(call(port, "GET", "/users/42")->body, "GET /users/{id} id=42");
  EXPECT_EQ(call(port, "DELETE", "/users/42?force=1")->body, "DELETE /users/{id} id=42");
  EXPECT_EQ(call(port, "GET", "/users/7/posts/9")->body, "GET /users/{id}/posts/{post} id=7 post=9");
  EXPECT_EQ(call(port, "GET", "/files/a/b%20c.txt")->body, "GET /files/{*path} path=a/b%20c.txt");
  EXPECT_EQ(call(port, "GET", "http://example.com/users/5")->body, "GET /users/{id} id=5");  // absolute form
}

TEST(HttpRouter, AnswersUnknownPathsWith404AndWrongMethodsWith405) {
  TestServer server(Router<>{}.route("/users/{id}", get(describe).put(describe)));
  auto missing = call(server.port(), "GET", "/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->header("content-type"), "application/json");
  EXPECT_EQ(missing->body, R"({"error":"no route for /nope"})");
  auto wrong = call(server.port(), "POST", "/users/1");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(wrong->header("allow"), "GET, HEAD, PUT");
  EXPECT_NE(wrong->body.find("\"error\""), std::string::npos);
  // HEAD is served by the GET handler, without the body.
  auto head = call(server.port(), "HEAD", "/users/1");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(head->header("content-length"), std::to_string(std::string{"HEAD /users/{id} id=1"}.size()));
}

TEST(HttpRouter, NestsMergesAndFallsBack) {
  Router<> api = Router<>{}.route("/", get(describe)).route("/users/{id}", get(describe));
  Router<> admin = Router<>{}.route("/stats", get(describe)).fallback([](Request r) {
    return Response::text("admin fallback " + std::string{r.path()});
  });
  Router<> extra = Router<>{}.route("/health", get(describe));
  TestServer server(Router<>{}.nest("/api", api).nest("/admin", admin).merge(extra).fallback([](Request r) {
    return Response::error(Status::not_found, "nothing at " + std::string{r.path()});
  }));
  const int port = server.port();
  EXPECT_EQ(call(port, "GET", "/api")->body, "GET /api");
  EXPECT_EQ(call(port, "GET", "/api/users/3")->body, "GET /api/users/{id} id=3");
  EXPECT_EQ(call(port, "GET", "/admin/stats")->body, "GET /admin/stats");
  EXPECT_EQ(call(port, "GET", "/admin/other/thing")->body, "admin fallback /admin/other/thing");
  EXPECT_EQ(call(port, "GET", "/health")->body, "GET /health");
  auto fallback = call(port, "GET", "/elsewhere");
  EXPECT_EQ(fallback->status, 404);
  EXPECT_EQ(fallback->body, R"({"error":"nothing at /elsewhere"})");
}

TEST(HttpRouter, HandlersFindTheirState) {
  Router<> router = Router<Counter>{}
                        .route("/count", get([](Request r) {
                                 Counter* counter = r.state<Counter>();
                                 return Response::text(counter == nullptr ? "none" : std::to_string(counter->base));
                               }))
                        .with_state(Counter{41});
  TestServer server(std::move(router));
  EXPECT_EQ(call(server.port(), "GET", "/count")->body, "41");
}

TEST(HttpRouter, RefusesConflictingRoutesWhenAdded) {
  Router<> router;
  router.route("/users/{id}", get(describe));
  try {
    router.route("/users/{name}", get(describe));
    FAIL() << "a conflict was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string{e.what()}.find("/users/{id}"), std::string::npos) << e.what();
    EXPECT_NE(std::string{e.what()}.find("/users/{name}"), std::string::npos) << e.what();
  }
  EXPECT_THROW(router.route("/users/{id}", get(describe)), std::invalid_argument);  // GET twice
  EXPECT_NO_THROW(router.route("/users/{id}", post(describe)));                     // merged
  EXPECT_THROW(router.route("/files/{name}.txt", get(describe)), std::invalid_argument);
  EXPECT_THROW(router.route("no-slash", get(describe)), std::invalid_argument);
  EXPECT_THROW(Router<>{}.nest("/api/", Router<>{}), std::invalid_argument);
}

TEST(HttpRouter, NestServiceSeesTheTargetWithoutItsPrefix) {
  TestServer server{
      Router<>{}.nest_service("/svc", [](Request request) { return Response::text(std::string{request.target()}); })};
  auto deep = exchange(server.port(), "GET /svc/a/b?x=1 HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(deep);
  EXPECT_EQ(deep->body, "/a/b?x=1");
  auto root = exchange(server.port(), "POST /svc/ HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->body, "/");
  auto absolute = exchange(server.port(), "GET http://t/svc/z HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(absolute);
  EXPECT_EQ(absolute->body, "/z");
  auto bare = exchange(server.port(), "GET /svc HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->status, 308);
  EXPECT_EQ(bare->header("location"), "/svc/");
}
