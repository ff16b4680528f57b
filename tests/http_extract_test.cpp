// Typed handlers through a real server: each extractor, each rejection, and the return types.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>

#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;
using spindle_test::TestServer;

namespace {

struct Counter {
  int base = 0;
};

std::optional<spindle_test::RawResponse> call(int port, std::string_view method, std::string_view target,
                                              std::string_view body = {}) {
  std::string request = std::string{method} + " " + std::string{target} + " HTTP/1.1\r\nHost: t\r\n";
  if (!body.empty() || method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n";
  request += body;
  return spindle_test::exchange(port, request);
}

// Handlers as a user writes them: plain functions and lambdas, synchronous and Task.
std::string user_by_id(Path<int> id) { return "user " + std::to_string(*id); }

Task<std::string> post_of_user(Path<std::tuple<int, std::string>> path) {
  co_await yield_now();
  auto [user, slug] = *path;
  co_return std::to_string(user) + "/" + slug;
}

std::string search(Query<std::map<std::string, std::string>> query) {
  std::string out;
  for (const auto& [name, value] : *query) out += name + "=" + value + ";";
  return out;
}

Task<std::pair<Status, std::string>> create(State<Counter> counter, Headers headers, std::string body) {
  co_await yield_now();
  const std::string type{headers.get("content-type").value_or("none")};
  co_return std::pair{Status::created, std::to_string(counter->base) + " " + type + " " + body};
}

Result<std::string, Rejection> checked(std::optional<Path<int>> id) {
  if (!id) return Err{Rejection{Status::unprocessable_entity, "give me a number", "id"}};
  if (**id < 0) return Err{Rejection{Status::unprocessable_entity, "must not be negative", "id"}};
  return std::to_string(**id);
}

std::string own_rejection(Result<Path<int>, Rejection> id) {
  return id ? "ok " + std::to_string(**id) : "refused: " + id.error().message;
}

Router<> routes() {
  return Router<Counter>{}
      .route("/users/{id}", get(user_by_id))
      .route("/users/{id}/posts/{slug}", get(post_of_user))
      .route("/search", get(search))
      .route("/items", post(create))
      .route("/checked/{id}", get(checked))
      .route("/own/{id}", get(own_rejection))
      .route("/status", get([] { return Status::no_content; }))
      .route("/peer", get([](ConnectInfo info) { return info.peer.to_string(); }))
      .route("/raw", post([](Request request) -> Task<std::string> {
               auto body = co_await request.body().collect();
               co_return std::string{request.method_name()} + " " + (body ? *body : std::string{"?"});
             }))
      .with_state(Counter{7});
}

}  // namespace

TEST(HttpExtract, PathValuesAreDecodedAndConverted) {
  TestServer server(routes());
  EXPECT_EQ(call(server.port(), "GET", "/users/42")->body, "user 42");
  EXPECT_EQ(call(server.port(), "GET", "/users/7/posts/caf%C3%A9%20au%20lait")->body, "7/caf\xC3\xA9 au lait");
}

TEST(HttpExtract, APathValueOfTheWrongTypeIs400NamingTheParameter) {
  TestServer server(routes());
  auto response = call(server.port(), "GET", "/users/abc");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(response->body, R"({"error":"must be an integer","field":"id"})");
  auto bad_escape = call(server.port(), "GET", "/users/7/posts/%zz");
  ASSERT_TRUE(bad_escape);
  EXPECT_EQ(bad_escape->status, 400);
  EXPECT_NE(bad_escape->body.find("\"field\":\"slug\""), std::string::npos) << bad_escape->body;
  auto overflow = call(server.port(), "GET", "/users/99999999999999999999");
  EXPECT_EQ(overflow->status, 400);
}

TEST(HttpExtract, QueryStrings) {
  TestServer server(routes());
  EXPECT_EQ(call(server.port(), "GET", "/search?q=a+b&lang=fr&q=last")->body, "lang=fr;q=last;");
  EXPECT_EQ(call(server.port(), "GET", "/search")->body, "");
  EXPECT_EQ(call(server.port(), "GET", "/search?q=%FF")->status, 400);  // not UTF-8
}

TEST(HttpExtract, StateHeadersAndABodyTogether) {
  TestServer server(routes());
  spindle_test::RawConnection connection(server.port());
  connection.send("POST /items HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello");
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 201);
  EXPECT_EQ(response->body, "7 text/plain hello");
  // A body that is not UTF-8 is refused before the handler runs.
  auto binary = call(server.port(), "POST", "/items", "\xFF\xFE");
  EXPECT_EQ(binary->status, 400);
  EXPECT_EQ(binary->body, R"({"error":"the body is not valid UTF-8"})");
}

TEST(HttpExtract, HandlersCanDecideAboutRejections) {
  TestServer server(routes());
  EXPECT_EQ(call(server.port(), "GET", "/checked/5")->body, "5");
  auto negative = call(server.port(), "GET", "/checked/-5");
  EXPECT_EQ(negative->status, 422);
  EXPECT_EQ(negative->body, R"({"error":"must not be negative","field":"id"})");
  EXPECT_EQ(call(server.port(), "GET", "/checked/x")->body, R"({"error":"give me a number","field":"id"})");
  EXPECT_EQ(call(server.port(), "GET", "/own/x")->body, "refused: must be an integer");
  EXPECT_EQ(call(server.port(), "GET", "/own/3")->body, "ok 3");
}

TEST(HttpExtract, OtherReturnTypesAndExtractors) {
  TestServer server(routes());
  auto status = call(server.port(), "GET", "/status");
  EXPECT_EQ(status->status, 204);
  EXPECT_EQ(call(server.port(), "GET", "/peer")->body.rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(call(server.port(), "POST", "/raw", "body")->body, "POST body");
}

TEST(HttpExtract, AMissingStateIsAServerError) {
  TestServer server(
      Router<>{}.route("/count", get([](State<Counter> counter) { return std::to_string(counter->base); })));
  auto response = call(server.port(), "GET", "/count");
  EXPECT_EQ(response->status, 500);
}
