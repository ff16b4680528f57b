// The in-process test client: the same routing, extractors, rejections and failures as over a socket.

#include <gtest/gtest.h>

#include <stdexcept>

#include "spindle/http.hpp"
#include "spindle/spindle.hpp"
#include "support/co_assert.hpp"
#include "support/in_process.hpp"

using namespace spindle;
using namespace spindle::http;
using spindle_test::run;

namespace {

struct Greeting {
  std::string word = "hello";
};

Router<> routes() {
  return Router<Greeting>{}
      .route("/greet/{name}",
             get([](State<Greeting> greeting, Path<std::string> name) { return greeting->word + ", " + *name; }))
      .route("/echo", post([](Headers headers, std::string body) -> Task<std::string> {
               co_await yield_now();
               co_return std::string{headers.get("content-type").value_or("?")} + ":" + body;
             }))
      .route("/fails", get([](Request) -> Task<Response> {
               co_await yield_now();
               throw std::runtime_error("database is down");
             }))
      .with_state(Greeting{});
}

}  // namespace

TEST(HttpTestClient, RoutesExtractsAndAnswersWithoutASocket) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response greeted = co_await client.get("/greet/Ada%20L");
    EXPECT_EQ(greeted.status, Status::ok);
    EXPECT_EQ(greeted.body.bytes(), "hello, Ada L");
    Response echoed = co_await client.post("/echo", R"({"a":1})");
    EXPECT_EQ(echoed.body.bytes(), R"(application/json:{"a":1})");
  });
}

TEST(HttpTestClient, AnswersLikeTheServerWhenThingsGoWrong) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response missing = co_await client.get("/nope");
    EXPECT_EQ(missing.status, Status::not_found);
    Response wrong_method = co_await client.send(Method::del, "/echo");
    EXPECT_EQ(wrong_method.status, Status::method_not_allowed);
    EXPECT_EQ(wrong_method.headers.get("allow"), "POST");
    Response bad_escape = co_await client.get("/greet/%zz");
    EXPECT_EQ(bad_escape.status, Status::bad_request);
    EXPECT_EQ(bad_escape.body.bytes(), R"({"error":"'%' must be followed by two hex digits","field":"name"})");
    Response failed = co_await client.get("/fails");
    EXPECT_EQ(failed.status, Status::internal_server_error);
    EXPECT_NE(failed.body.bytes().find("database is down"), std::string_view::npos);
    Response malformed = co_await client.get("/with space");
    EXPECT_EQ(malformed.status, Status::bad_request);
  });
}
