// How a user tests a Spindle application: the routes go through TestClient in the same process, no
// socket, no server thread, with the framework's real parser, router, extractors and rejections.
// Each test builds a fresh app (its own store) and runs on a Runtime of its own.

#include <gtest/gtest.h>

#include <spindle/http.hpp>
#include <spindle/spindle.hpp>

#include "todos.hpp"

using namespace spindle;
using namespace spindle::http;

namespace {

/// Runs a coroutine test body to completion. (GoogleTest's ASSERT_* macros `return`, which a coroutine
/// cannot: use EXPECT_* and co_return. With GCC 12, await into a named local rather than inside a call's
/// arguments or a condition: docs/handlers.md says why.)
template <class Body>
void run(Body body) {
  Runtime runtime;
  runtime.block_on(body());
}

/// Parses a response body as JSON into T, failing the test if it does not fit.
template <class T>
T read(const Response& response) {
  auto value = json::from_string<T>(response.body.bytes());
  EXPECT_TRUE(value) << response.body.bytes();
  return value ? std::move(*value) : T{};
}

}  // namespace

TEST(Todos, CreateThenFetch) {
  run([]() -> Task<void> {
    TestClient client{todos::app()};
    Response created = co_await client.post("/todos", R"({"title":"  write the docs  "})");
    EXPECT_EQ(created.status, Status::created);
    EXPECT_EQ(created.headers.get("location"), "/todos/1");
    const auto todo = read<todos::Todo>(created);
    EXPECT_EQ(todo.title, "write the docs");
    EXPECT_FALSE(todo.done);

    Response fetched = co_await client.get("/todos/1");
    EXPECT_EQ(fetched.status, Status::ok);
    EXPECT_EQ(read<todos::Todo>(fetched).title, "write the docs");
  });
}

TEST(Todos, ValidationNamesTheField) {
  run([]() -> Task<void> {
    TestClient client{todos::app()};
    Response blank = co_await client.post("/todos", R"({"title":"   "})");
    EXPECT_EQ(blank.status, Status::unprocessable_entity);
    EXPECT_EQ(blank.body.bytes(), R"({"error":"must not be empty","field":"title"})");
    Response wrong_type = co_await client.post("/todos", R"({"title":"x","done":"yes"})");
    EXPECT_EQ(wrong_type.status, Status::unprocessable_entity);
    EXPECT_EQ(wrong_type.body.bytes(), R"({"error":"must be true or false","field":"done"})");
    Response not_json = co_await client.post("/todos", "title=x", "application/x-www-form-urlencoded");
    EXPECT_EQ(not_json.status, Status::unsupported_media_type);
    Response broken = co_await client.post("/todos", R"({"title":)");
    EXPECT_EQ(broken.status, Status::bad_request);
  });
}

TEST(Todos, ListPagesAndRefusesBadLimits) {
  run([]() -> Task<void> {
    TestClient client{todos::app()};
    for (int i = 0; i < 5; ++i) co_await client.post("/todos", R"({"title":"t)" + std::to_string(i) + R"("})");
    Response listed = co_await client.get("/todos?limit=2&offset=3");
    const auto page = read<todos::TodoList>(listed);
    EXPECT_EQ(page.total, 5u);
    EXPECT_EQ(page.todos.size(), 2u);
    if (page.todos.size() == 2) {
      EXPECT_EQ(page.todos[0].title, "t3");
    }
    Response too_many = co_await client.get("/todos?limit=501");
    EXPECT_EQ(too_many.status, Status::unprocessable_entity);
    Response not_a_number = co_await client.get("/todos?offset=abc");
    EXPECT_EQ(not_a_number.body.bytes(), R"({"error":"must be an integer","field":"offset"})");
  });
}

TEST(Todos, ReplaceAndDelete) {
  run([]() -> Task<void> {
    TestClient client{todos::app()};
    co_await client.post("/todos", R"({"title":"a"})");
    HeaderMap json_type;
    json_type.set("content-type", "application/json");
    Response replaced =
        co_await client.send(Method::put, "/todos/1", std::move(json_type), R"({"title":"b","done":true})");
    EXPECT_EQ(read<todos::Todo>(replaced).done, true);
    Response deleted = co_await client.send(Method::del, "/todos/1");
    EXPECT_EQ(deleted.status, Status::no_content);
    Response gone = co_await client.get("/todos/1");
    EXPECT_EQ(gone.status, Status::not_found);
    Response bad_id = co_await client.get("/todos/one");
    EXPECT_EQ(bad_id.status, Status::bad_request);
    Response wrong_method = co_await client.send(Method::patch, "/todos/1");
    EXPECT_EQ(wrong_method.status, Status::method_not_allowed);
    EXPECT_EQ(wrong_method.headers.get("allow"), "GET, HEAD, PUT, DELETE");
  });
}
