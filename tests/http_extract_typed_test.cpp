// The typed extractors over TestClient: Json, Form, Query and Path of structs, header extractors,
// Extension, the raw body, and one place to render every rejection.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/spindle.hpp"
#include "support/in_process.hpp"

using namespace spindle;
using namespace spindle::http;
using spindle_test::run;
using spindle_test::with;

namespace {

enum class Plan { free, pro };
BOOST_DESCRIBE_ENUM(Plan, free, pro)

struct Item {
  std::string sku;
  int quantity = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (sku, quantity))

struct Order {
  std::string customer;
  Plan plan = Plan::free;
  std::vector<Item> items;
  std::optional<std::string> note;
};
BOOST_DESCRIBE_STRUCT(Order, (), (customer, plan, items, note))

struct Page {
  std::optional<int> limit;
  std::optional<int> offset;
  std::vector<std::string> tag;
};
BOOST_DESCRIBE_STRUCT(Page, (), (limit, offset, tag))

struct Signup {
  std::string name;
  Plan plan = Plan::free;
  bool newsletter = false;
};
BOOST_DESCRIBE_STRUCT(Signup, (), (name, plan, newsletter))

struct PostAddress {
  int user = 0;
  std::string slug;
};
BOOST_DESCRIBE_STRUCT(PostAddress, (), (user, slug))

struct Caller {
  std::string name;
};

Json<Order> echo_order(Json<Order> order) {
  order->note = "seen";
  return order;
}

Router<> routes() {
  return Router<>{}
      .route("/orders", post(echo_order))
      .route("/signup", post([](Form<Signup> form) {
               return form->name + (form->plan == Plan::pro ? " pro" : " free") + (form->newsletter ? " +news" : "");
             }))
      .route("/page", get([](Query<Page> page) {
               std::string tags;
               for (const auto& t : page->tag) tags += t + ",";
               return std::to_string(page->limit.value_or(50)) + " " + std::to_string(page->offset.value_or(0)) + " " +
                      tags;
             }))
      .route("/users/{user}/posts/{slug}",
             get([](Path<PostAddress> at) { return std::to_string(at->user) + ":" + at->slug; }))
      .route("/key", get([](Header<"x-api-key"> key, std::optional<Header<"x-trace">> trace) {
               return std::string{key.value} + (trace ? "+" + std::string{trace->value} : "");
             }))
      .route("/me", get([](BearerToken bearer) { return std::string{bearer.token}; }))
      .route("/type", post([](ContentType type, Bytes body) { return type.mime + " " + std::to_string(body->size()); }))
      .route("/count", post([](BodyStream body) -> Task<std::string> {
               std::size_t total = 0;
               for (;;) {
                 Result<std::string_view, BodyError> piece = co_await body.next();
                 if (!piece) co_return "error";
                 if (piece->empty()) break;
                 total += piece->size();
               }
               co_return std::to_string(total);
             }))
      .route("/whoami", get([](Extension<Caller> caller) {
                          return caller->name;
                        }).layer(from_fn([](Request request, Next next) -> Task<Response> {
        request.extensions().insert(Caller{"ops"});
        Response response = co_await next.run(std::move(request));
        co_return response;
      })))
      .route("/nobody", get([](Extension<Caller> caller) { return caller->name; }))
      .route("/misnamed/{user}", get([](Path<PostAddress> at) { return at->slug; }));
}

}  // namespace

TEST(HttpExtractTyped, JsonInAndOut) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response answered =
        co_await client.post("/orders", R"({"customer":"Ada","plan":"pro","items":[{"sku":"A1","quantity":2}],"x":1})");
    EXPECT_EQ(answered.status, Status::ok);
    EXPECT_EQ(answered.headers.get("content-type"), "application/json");
    EXPECT_EQ(answered.body.bytes(),
              R"({"customer":"Ada","plan":"pro","items":[{"sku":"A1","quantity":2}],"note":"seen"})");
    // A +json media type with parameters is JSON too.
    Response vendor = co_await client.post("/orders", R"({"customer":"B","plan":"free","items":[]})",
                                           "application/vnd.api+json; charset=utf-8");
    EXPECT_EQ(vendor.status, Status::ok);
  });
}

TEST(HttpExtractTyped, JsonRejectionsFollowAxumsStatuses) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    struct Case {
      std::string body;
      std::string content_type;
      Status status;
      std::string field;
    };
    const std::vector<Case> cases = {
        {R"({"customer":"Ada")", "application/json", Status::bad_request, ""},
        {R"({"customer":"Ada","plan":"pro","items":[{"sku":"A1","quantity":"2"}]})", "application/json",
         Status::unprocessable_entity, "items[0].quantity"},
        {R"({"plan":"pro","items":[]})", "application/json", Status::unprocessable_entity, "customer"},
        {R"({"customer":"Ada","plan":"gold","items":[]})", "application/json", Status::unprocessable_entity, "plan"},
        {R"({"customer":"Ada","plan":"pro","items":[]})", "text/plain", Status::unsupported_media_type, "content-type"},
        {std::string(100'000, '[') + std::string(100'000, ']'), "application/json", Status::bad_request, ""},
    };
    for (const Case& c : cases) {
      Response refused = co_await client.post("/orders", c.body, c.content_type);
      EXPECT_EQ(refused.status, c.status) << c.body.substr(0, 60);
      Result<boost::json::value, json::Error> body = json::from_string<boost::json::value>(refused.body.bytes());
      EXPECT_TRUE(body && body->as_object().contains("error")) << refused.body.bytes();
      if (!c.field.empty()) {
        EXPECT_EQ(body->as_object().at("field").as_string(), c.field) << refused.body.bytes();
      }
    }
    Response missing_type = co_await client.send(Method::post, "/orders", {}, R"({"customer":"A"})");
    EXPECT_EQ(missing_type.status, Status::unsupported_media_type);
  });
}

TEST(HttpExtractTyped, FormsQueriesAndPathsIntoStructs) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response signed_up = co_await client.post("/signup", "name=Ada+L%C3%B3pez&plan=pro&newsletter=true",
                                              "application/x-www-form-urlencoded");
    EXPECT_EQ(signed_up.body.bytes(), "Ada López pro +news");
    Response bad_plan =
        co_await client.post("/signup", "name=A&plan=gold&newsletter=false", "application/x-www-form-urlencoded");
    EXPECT_EQ(bad_plan.status, Status::unprocessable_entity);
    EXPECT_NE(bad_plan.body.bytes().find(R"("field":"plan")"), std::string_view::npos) << bad_plan.body.bytes();
    Response no_name = co_await client.post("/signup", "plan=pro&newsletter=true", "application/x-www-form-urlencoded");
    EXPECT_EQ(no_name.status, Status::unprocessable_entity);
    EXPECT_NE(no_name.body.bytes().find(R"("field":"name")"), std::string_view::npos);
    Response as_json = co_await client.post("/signup", R"({"name":"A"})");
    EXPECT_EQ(as_json.status, Status::unsupported_media_type);

    Response page = co_await client.get("/page?limit=10&tag=a&tag=b%20c");
    EXPECT_EQ(page.body.bytes(), "10 0 a,b c,");
    Response defaults = co_await client.get("/page");
    EXPECT_EQ(defaults.body.bytes(), "50 0 ");
    Response not_a_number = co_await client.get("/page?limit=ten");
    EXPECT_EQ(not_a_number.status, Status::unprocessable_entity);
    EXPECT_NE(not_a_number.body.bytes().find(R"("field":"limit")"), std::string_view::npos);
    Response bad_escape = co_await client.get("/page?limit=%zz");
    EXPECT_EQ(bad_escape.status, Status::bad_request);

    Response post = co_await client.get("/users/7/posts/hello%20world");
    EXPECT_EQ(post.body.bytes(), "7:hello world");
    Response bad_user = co_await client.get("/users/x/posts/a");
    EXPECT_EQ(bad_user.status, Status::bad_request);
    EXPECT_NE(bad_user.body.bytes().find(R"("field":"user")"), std::string_view::npos);
    Response misconfigured = co_await client.get("/misnamed/7");  // the route has no {slug}
    EXPECT_EQ(misconfigured.status, Status::internal_server_error);
  });
}

TEST(HttpExtractTyped, HeaderExtractors) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response keyed = co_await client.send(Method::get, "/key", with("X-Api-Key", "k1"));
    EXPECT_EQ(keyed.body.bytes(), "k1");
    HeaderMap both = with("x-api-key", "k1");
    both.set("x-trace", "t9");
    Response traced = co_await client.send(Method::get, "/key", std::move(both));
    EXPECT_EQ(traced.body.bytes(), "k1+t9");
    Response keyless = co_await client.get("/key");
    EXPECT_EQ(keyless.status, Status::bad_request);
    EXPECT_NE(keyless.body.bytes().find(R"("field":"x-api-key")"), std::string_view::npos);

    Response me = co_await client.send(Method::get, "/me", with("authorization", "Bearer abc.DEF"));
    EXPECT_EQ(me.body.bytes(), "abc.DEF");
    Response lower = co_await client.send(Method::get, "/me", with("authorization", "bearer xyz"));
    EXPECT_EQ(lower.body.bytes(), "xyz");
    Response basic = co_await client.send(Method::get, "/me", with("authorization", "Basic dTpw"));
    EXPECT_EQ(basic.status, Status::unauthorized);
    Response anonymous = co_await client.get("/me");
    EXPECT_EQ(anonymous.status, Status::unauthorized);
    EXPECT_EQ(anonymous.headers.get("www-authenticate"), "Bearer");  // RFC 9110 11.6.1

    Response typed = co_await client.post("/type", std::string("\0\1\2", 3), "Application/Octet-Stream; x=1");
    EXPECT_EQ(typed.body.bytes(), "application/octet-stream 3");
    Response counted = co_await client.post("/count", std::string(70'000, 'x'), "text/plain");
    EXPECT_EQ(counted.body.bytes(), "70000");
  });
}

TEST(HttpExtractTyped, ExtensionsComeFromLayers) {
  run([]() -> Task<void> {
    TestClient client{routes()};
    Response known = co_await client.get("/whoami");
    EXPECT_EQ(known.body.bytes(), "ops");
    Response unknown = co_await client.get("/nobody");
    EXPECT_EQ(unknown.status, Status::internal_server_error);
  });
}

TEST(HttpExtractTyped, OnePlaceRendersEveryRejection) {
  run([]() -> Task<void> {
    auto problem = [](const Rejection& rejection) {
      Response response = Response::json(
          R"({"title":)" + json_quote(rejection.message) + R"(,"invalid":)" + json_quote(rejection.field) + "}",
          rejection.status);
      response.headers.set("content-type", "application/problem+json");
      return response;
    };
    TestClient client{routes().on_rejection(problem)};
    Response refused = co_await client.post("/orders", R"({"customer":1})");
    EXPECT_EQ(refused.status, Status::unprocessable_entity);
    EXPECT_EQ(refused.headers.get("content-type"), "application/problem+json");
    EXPECT_EQ(refused.body.bytes(), R"({"title":"must be a string","invalid":"customer"})");
    Response query = co_await client.get("/page?offset=-x");
    EXPECT_EQ(query.headers.get("content-type"), "application/problem+json");
    // Fields the protocol requires with a status survive a renderer that knows nothing of them.
    Response anonymous = co_await client.get("/me");
    EXPECT_EQ(anonymous.status, Status::unauthorized);
    EXPECT_EQ(anonymous.headers.get("www-authenticate"), "Bearer");
    // The router's own 404 is not a rejection: it keeps its shape.
    Response missing = co_await client.get("/nowhere");
    EXPECT_EQ(missing.headers.get("content-type"), "application/json");

    // A nested router's own renderer wins for its routes; the outer one covers the rest.
    auto plain_text = [](const Rejection& rejection) {
      return Response::text("nested: " + rejection.message, rejection.status);
    };
    auto inner = Router<>{}
                     .route("/page", get([](Query<Page> page) { return std::to_string(page->limit.value_or(0)); }))
                     .on_rejection(plain_text);
    TestClient nested{Router<>{}.nest("/inner", inner).merge(routes()).on_rejection(problem)};
    Response inside = co_await nested.get("/inner/page?limit=x");
    EXPECT_EQ(inside.body.bytes(), "nested: must be an integer");
    Response outside = co_await nested.get("/page?limit=x");
    EXPECT_EQ(outside.headers.get("content-type"), "application/problem+json");
  });
}

TEST(HttpExtractTyped, EveryResponseType) {
  run([]() -> Task<void> {
    TestClient client{Router<>{}
                          .route("/html", get([] { return Html{"<p>hi</p>"}; }))
                          .route("/see-other", post([] { return Redirect::to("/done"); }))
                          .route("/moved", get([] { return Redirect::permanent("/new"); }))
                          .route("/bytes", get([] { return Bytes{std::string("\x00\xff", 2)}; }))
                          .route("/headers", get([] {
                                   HeaderMap headers;
                                   headers.set("content-type", "text/csv");
                                   headers.set("x-rows", "2");
                                   return std::pair{std::move(headers), std::string{"a,b\n1,2\n"}};
                                 }))
                          .route("/stream", get([]() -> Task<Body> {
                                   auto [sender, body] = Body::channel();
                                   spawn([](BodySender tx) -> Task<void> {
                                     co_await tx.send("one ");
                                     co_await tx.send("two");
                                   }(std::move(sender)))
                                       .detach();
                                   co_return std::move(body);
                                 }))
                          .route("/status", get([] { return Status::accepted; }))};
    Response html = co_await client.get("/html");
    EXPECT_EQ(html.headers.get("content-type"), "text/html; charset=utf-8");
    EXPECT_EQ(html.body.bytes(), "<p>hi</p>");
    Response see_other = co_await client.post("/see-other", "");
    EXPECT_EQ(see_other.status, Status::see_other);
    EXPECT_EQ(see_other.headers.get("location"), "/done");
    Response moved = co_await client.get("/moved");
    EXPECT_EQ(moved.status, Status::permanent_redirect);
    Response bytes = co_await client.get("/bytes");
    EXPECT_EQ(bytes.headers.get("content-type"), "application/octet-stream");
    EXPECT_EQ(bytes.body.bytes(), std::string_view("\x00\xff", 2));
    Response csv = co_await client.get("/headers");
    EXPECT_EQ(csv.headers.get("content-type"), "text/csv");  // replaces the text's own
    EXPECT_EQ(csv.headers.get("x-rows"), "2");
    Response stream = co_await client.get("/stream");
    EXPECT_TRUE(stream.body.is_stream());
    std::string streamed;
    for (;;) {
      std::optional<std::string> chunk = co_await stream.body.next_chunk();
      if (!chunk) break;
      streamed += *chunk;
    }
    EXPECT_EQ(streamed, "one two");
    Response accepted = co_await client.get("/status");
    EXPECT_EQ(accepted.status, Status::accepted);
    EXPECT_TRUE(accepted.body.is_empty());
  });
}
