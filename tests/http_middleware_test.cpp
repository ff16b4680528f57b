// Layers: from_fn, the order layers run in, what Router::layer and route_layer cover, and each provided
// middleware (request id, access log, timeout, CORS, body limit, concurrency limit, catch-panic).

#include <gtest/gtest.h>
#include <zlib.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/spindle.hpp"
#include "support/http_harness.hpp"
#include "support/in_process.hpp"

using namespace spindle;
using namespace spindle::http;
using spindle_test::run;
using spindle_test::with;
using namespace std::chrono_literals;

namespace {

/// A from_fn layer that records when it runs, around the rest of the chain.
Layer tracing(std::shared_ptr<std::vector<std::string>> trace, std::string name) {
  return from_fn([trace, name](Request request, Next next) -> Task<Response> {
    trace->push_back(name + " in");
    Response response = co_await next.run(std::move(request));
    trace->push_back(name + " out");
    co_return response;
  });
}

std::string gunzip(std::string_view compressed) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 16) != Z_OK) return "<inflateInit2 failed>";
  std::string out;
  char buffer[4096];
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  int status = Z_OK;
  while (status == Z_OK) {
    stream.next_out = reinterpret_cast<Bytef*>(buffer);
    stream.avail_out = sizeof buffer;
    status = inflate(&stream, Z_NO_FLUSH);
    out.append(buffer, sizeof buffer - stream.avail_out);
  }
  inflateEnd(&stream);
  return status == Z_STREAM_END ? out : "<corrupt gzip stream>";
}

std::optional<boost::json::object> parse_object(std::string_view text) {
  auto parsed = json::from_string<boost::json::value>(text);
  if (!parsed || !parsed->is_object()) return std::nullopt;
  return parsed->as_object();
}

}  // namespace

TEST(HttpMiddleware, FromFnCanShortCircuitAndChangeTheResponse) {
  run([]() -> Task<void> {
    auto guard = from_fn([](Request request, Next next) -> Task<Response> {
      if (request.header("x-api-key") != "secret") co_return Response::error(Status::unauthorized, "no key");
      Response response = co_await next.run(std::move(request));
      response.headers.set("x-checked", "yes");
      co_return response;
    });
    TestClient client{Router<>{}.route("/", get([] { return std::string{"inside"}; })).layer(guard)};
    Response refused = co_await client.get("/");
    EXPECT_EQ(refused.status, Status::unauthorized);
    Response allowed = co_await client.send(Method::get, "/", with("x-api-key", "secret"));
    EXPECT_EQ(allowed.body.bytes(), "inside");
    EXPECT_EQ(allowed.headers.get("x-checked"), "yes");
  });
}

TEST(HttpMiddleware, TheLastLayerAddedRunsFirstAndPerRouteLayersRunInside) {
  run([]() -> Task<void> {
    auto trace = std::make_shared<std::vector<std::string>>();
    auto handler = [trace] {
      trace->push_back("handler");
      return std::string{"ok"};
    };
    TestClient client{Router<>{}
                          .route("/", get(handler).layer(tracing(trace, "route")))
                          .layer(tracing(trace, "inner"))
                          .layer(tracing(trace, "outer"))};
    Response response = co_await client.get("/");
    EXPECT_EQ(response.body.bytes(), "ok");
    const std::vector<std::string> expected = {"outer in",  "inner in",  "route in", "handler",
                                               "route out", "inner out", "outer out"};
    EXPECT_EQ(*trace, expected);
  });
}

TEST(HttpMiddleware, LayerCoversThe404And405ButRouteLayerOnlyMatchedRoutes) {
  run([]() -> Task<void> {
    auto trace = std::make_shared<std::vector<std::string>>();
    TestClient client{Router<>{}
                          .route("/a", get([] { return std::string{"a"}; }))
                          .route_layer(tracing(trace, "route_layer"))
                          .layer(tracing(trace, "layer"))
                          .route("/later", get([] { return std::string{"later"}; }))};
    Response missing = co_await client.get("/nowhere");
    EXPECT_EQ(missing.status, Status::not_found);
    Response wrong_method = co_await client.send(Method::post, "/a");
    EXPECT_EQ(wrong_method.status, Status::method_not_allowed);
    EXPECT_EQ(wrong_method.headers.get("allow"), "GET, HEAD");
    const std::vector<std::string> refusals = {"layer in", "layer out", "layer in", "layer out"};
    EXPECT_EQ(*trace, refusals);
    trace->clear();
    Response matched = co_await client.get("/a");
    const std::vector<std::string> both = {"layer in", "route_layer in", "route_layer out", "layer out"};
    EXPECT_EQ(*trace, both);
    trace->clear();
    Response later = co_await client.get("/later");  // added after the layers: not wrapped
    EXPECT_EQ(later.body.bytes(), "later");
    EXPECT_TRUE(trace->empty());
  });
}

// A Server keeps a copy of its router: the copy's 404 must still pass through the layers (it once lost
// them, so a request id or a metrics layer never saw an unknown path).
TEST(HttpMiddleware, LayersStillCoverThe404OfACopiedRouter) {
  Router<> router = Router<>{}.route("/a", get([] { return std::string{"a"}; }));
  router.layer(middleware::request_id());
  spindle_test::TestServer server{router};
  auto missing =
      spindle_test::exchange(server.port(), "GET /nowhere HTTP/1.1\r\nHost: x\r\nX-Request-Id: r-404\r\n\r\n");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->header("x-request-id"), "r-404");
}

TEST(HttpMiddleware, RequestIdsAreKeptGeneratedEchoedAndTaskLocal) {
  run([]() -> Task<void> {
    TestClient client{Router<>{}
                          .route("/sync", get([](Extension<middleware::RequestId> id) {
                                   return id->value + "|" + std::string{middleware::current_request_id()};
                                 }))
                          .route("/async", get([]() -> Task<std::string> {
                                   co_await sleep(1ms);  // the id follows the task across a suspension
                                   co_return std::string{middleware::current_request_id()};
                                 }))
                          .layer(middleware::request_id())};
    Response kept = co_await client.send(Method::get, "/sync", with("x-request-id", "abc-123"));
    EXPECT_EQ(kept.body.bytes(), "abc-123|abc-123");
    EXPECT_EQ(kept.headers.get("x-request-id"), "abc-123");
    Response fresh = co_await client.get("/async");
    const std::string id{fresh.headers.get("x-request-id").value_or("")};
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(fresh.body.bytes(), id);
    Response other = co_await client.get("/async");
    EXPECT_NE(other.headers.get("x-request-id"), id);
    // Not a sane token (a space, or too long): replaced, never echoed.
    Response insane = co_await client.send(Method::get, "/sync", with("x-request-id", "a b"));
    EXPECT_NE(insane.headers.get("x-request-id"), "a b");
    EXPECT_EQ(insane.headers.get("x-request-id")->size(), 32u);
    EXPECT_EQ(middleware::current_request_id(), "");  // outside any request
  });
}

TEST(HttpMiddleware, AccessLogWritesOneJsonLinePerRequest) {
  run([]() -> Task<void> {
    auto lines = std::make_shared<std::vector<std::string>>();
    middleware::AccessLogOptions options;
    options.sink = [lines](std::string_view line) { lines->emplace_back(line); };
    TestClient client{Router<>{}
                          .route("/users/{id}", get([](Path<int> id) { return std::to_string(*id); }))
                          .route("/slow", get([]() -> Task<Status> {
                                   co_await sleep(2ms);
                                   co_return Status::accepted;
                                 }))
                          .route("/fails", get([]() -> Task<std::string> {
                                   co_await yield_now();
                                   throw std::runtime_error("boom");
                                 }))
                          .layer(middleware::access_log(options))
                          .layer(middleware::request_id())};
    co_await client.send(Method::get, "/users/7", with("x-request-id", "r1"));
    co_await client.get("/slow");
    co_await client.get("/nowhere");
    Response failed = co_await client.get("/fails");
    EXPECT_EQ(failed.status, Status::internal_server_error);
    EXPECT_EQ(lines->size(), 4u);
    if (lines->size() != 4) co_return;
    auto first = parse_object((*lines)[0]);
    EXPECT_TRUE(first.has_value()) << (*lines)[0];
    if (!first) co_return;
    EXPECT_EQ(first->at("request_id").as_string(), "r1");
    EXPECT_EQ(first->at("method").as_string(), "GET");
    EXPECT_EQ(first->at("path").as_string(), "/users/7");
    EXPECT_EQ(first->at("route").as_string(), "/users/{id}");
    EXPECT_EQ(first->at("status").as_int64(), 200);
    EXPECT_EQ(first->at("bytes").as_int64(), 1);
    EXPECT_TRUE(first->at("time").as_string().ends_with("Z"));
    auto slow = parse_object((*lines)[1]);
    EXPECT_EQ(slow->at("status").as_int64(), 202);
    EXPECT_GE(slow->at("latency_us").as_int64(), 2000);
    EXPECT_EQ(parse_object((*lines)[2])->at("status").as_int64(), 404);
    EXPECT_EQ(parse_object((*lines)[3])->at("status").as_int64(), 500);
  });
}

TEST(HttpMiddleware, TimeoutAnswers504AndCancelsTheHandler) {
  run([]() -> Task<void> {
    auto finished = std::make_shared<std::atomic<bool>>(false);
    TestClient client{Router<>{}
                          .route("/slow", get([finished]() -> Task<std::string> {
                                   co_await sleep(5s);
                                   finished->store(true);
                                   co_return std::string{"late"};
                                 }))
                          .route("/fast", get([]() -> Task<std::string> {
                                   co_await sleep(1ms);
                                   co_return std::string{"quick"};
                                 }))
                          .layer(middleware::timeout(50ms))};
    const auto start = std::chrono::steady_clock::now();
    Response slow = co_await client.get("/slow");
    EXPECT_EQ(slow.status, Status::gateway_timeout);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_FALSE(finished->load());
    Response fast = co_await client.get("/fast");
    EXPECT_EQ(fast.body.bytes(), "quick");
  });
}

TEST(HttpMiddleware, CorsAnswersPreflightsAndLabelsAllowedOrigins) {
  run([]() -> Task<void> {
    middleware::CorsOptions options;
    options.allowed_origins = {"https://app.example"};
    options.exposed_headers = {"x-total"};
    options.allow_credentials = true;
    TestClient client{
        Router<>{}.route("/data", put([] { return std::string{"put"}; })).layer(middleware::cors(options))};

    HeaderMap preflight = with("origin", "https://app.example");
    preflight.set("access-control-request-method", "PUT");
    Response allowed = co_await client.send(Method::options, "/data", std::move(preflight));
    EXPECT_EQ(allowed.status, Status::no_content);
    EXPECT_EQ(allowed.headers.get("access-control-allow-origin"), "https://app.example");
    EXPECT_EQ(allowed.headers.get("access-control-allow-credentials"), "true");
    EXPECT_EQ(allowed.headers.get("access-control-allow-methods"), "GET, HEAD, POST, PUT, PATCH, DELETE");
    EXPECT_EQ(allowed.headers.get("access-control-allow-headers"), "content-type, authorization");
    EXPECT_EQ(allowed.headers.get("access-control-max-age"), "600");

    HeaderMap stranger = with("origin", "https://evil.example");
    stranger.set("access-control-request-method", "PUT");
    Response refused = co_await client.send(Method::options, "/data", std::move(stranger));
    EXPECT_FALSE(refused.headers.contains("access-control-allow-origin"));

    Response actual = co_await client.send(Method::put, "/data", with("origin", "https://app.example"));
    EXPECT_EQ(actual.body.bytes(), "put");
    EXPECT_EQ(actual.headers.get("access-control-allow-origin"), "https://app.example");
    EXPECT_EQ(actual.headers.get("access-control-expose-headers"), "x-total");
    EXPECT_EQ(actual.headers.get("vary"), "origin");
    Response foreign = co_await client.send(Method::put, "/data", with("origin", "https://evil.example"));
    EXPECT_EQ(foreign.body.bytes(), "put");
    EXPECT_FALSE(foreign.headers.contains("access-control-allow-origin"));
    Response same_origin = co_await client.send(Method::put, "/data");
    EXPECT_FALSE(same_origin.headers.contains("access-control-allow-origin"));
    EXPECT_EQ(same_origin.headers.get("vary"), "origin");  // caches must not reuse it for an allowed origin

    TestClient open{Router<>{}.route("/", get([] { return std::string{"hi"}; })).layer(middleware::cors())};
    Response any = co_await open.send(Method::get, "/", with("origin", "https://x.example"));
    EXPECT_EQ(any.headers.get("access-control-allow-origin"), "*");
    EXPECT_FALSE(any.headers.contains("vary"));  // "*" for everyone: nothing varies
  });
}

TEST(HttpMiddleware, BodyLimitRefusesByLengthAtOnceAndByReadingOverASocket) {
  auto router = Router<>{}
                    .route("/upload", post([](std::string body) { return std::to_string(body.size()); }))
                    .layer(middleware::body_limit(1000));
  run([router]() -> Task<void> {
    TestClient client{router};
    Response small = co_await client.post("/upload", std::string(1000, 'a'), "text/plain");
    EXPECT_EQ(small.body.bytes(), "1000");
    Response large = co_await client.post("/upload", std::string(1001, 'a'), "text/plain");
    EXPECT_EQ(large.status, Status::payload_too_large);
  });
  // Chunked: no length up front, so the limit applies while the handler reads.
  spindle_test::TestServer server{router};
  std::string chunked = "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) chunked += "190\r\n" + std::string(400, 'b') + "\r\n";
  chunked += "0\r\n\r\n";
  auto response = spindle_test::exchange(server.port(), chunked);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  auto fine = spindle_test::exchange(server.port(),
                                     "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "5\r\nhello\r\n0\r\n\r\n");
  ASSERT_TRUE(fine);
  EXPECT_EQ(fine->body, "5");
}

TEST(HttpMiddleware, ConcurrencyLimitShedsLoadWith503AndGivesPlacesBack) {
  run([]() -> Task<void> {
    auto release = std::make_shared<Notify>();
    TestClient client{Router<>{}
                          .route("/wait", get([release]() -> Task<std::string> {
                                   co_await release->notified();
                                   co_return std::string{"done"};
                                 }))
                          .route("/fails", get([]() -> Task<std::string> {
                                   co_await yield_now();
                                   throw std::runtime_error("boom");
                                 }))
                          .layer(middleware::concurrency_limit(2, 7s))};
    JoinHandle<Response> first = spawn(client.get("/wait"));
    JoinHandle<Response> second = spawn(client.get("/wait"));
    for (int i = 0; i < 10; ++i) co_await yield_now();  // both are now waiting inside the handler
    Response shed = co_await client.get("/wait");
    EXPECT_EQ(shed.status, Status::service_unavailable);
    EXPECT_EQ(shed.headers.get("retry-after"), "7");
    release->notify_waiters();
    Result<Response, JoinError> a = co_await std::move(first);
    Result<Response, JoinError> b = co_await std::move(second);
    EXPECT_TRUE(a && b);
    if (!a || !b) co_return;
    EXPECT_EQ(a->body.bytes(), "done");
    EXPECT_EQ(b->body.bytes(), "done");
    // A handler that throws gives its place back too.
    for (int i = 0; i < 3; ++i) {
      Response failed = co_await client.get("/fails");
      EXPECT_EQ(failed.status, Status::internal_server_error);
    }
    JoinHandle<Response> third = spawn(client.get("/wait"));
    JoinHandle<Response> fourth = spawn(client.get("/wait"));
    for (int i = 0; i < 10; ++i) co_await yield_now();
    release->notify_waiters();
    Result<Response, JoinError> c = co_await std::move(third);
    Result<Response, JoinError> d = co_await std::move(fourth);
    EXPECT_TRUE(c && d);
    if (!c || !d) co_return;
    EXPECT_EQ(c->status, Status::ok);
    EXPECT_EQ(d->status, Status::ok);
  });
}

TEST(HttpMiddleware, CatchPanicRendersAHandlersException) {
  run([]() -> Task<void> {
    auto render = [](std::string_view what) {
      return Response::json(R"({"oops":)" + json_quote(what) + "}", Status::service_unavailable);
    };
    TestClient client{Router<>{}
                          .route("/sync", get([]() -> std::string { throw std::runtime_error("sync boom"); }))
                          .route("/async", get([]() -> Task<std::string> {
                                   co_await yield_now();
                                   throw std::runtime_error("async boom");
                                 }))
                          .layer(middleware::catch_panic(render))};
    Response sync = co_await client.get("/sync");
    EXPECT_EQ(sync.status, Status::service_unavailable);
    EXPECT_EQ(sync.body.bytes(), R"({"oops":"sync boom"})");
    Response async = co_await client.get("/async");
    EXPECT_EQ(async.body.bytes(), R"({"oops":"async boom"})");
    TestClient plain{Router<>{}
                         .route("/", get([]() -> std::string { throw std::logic_error("secret"); }))
                         .layer(middleware::catch_panic())};
    Response hidden = co_await plain.get("/");
    EXPECT_EQ(hidden.status, Status::internal_server_error);
    EXPECT_EQ(hidden.body.bytes().find("secret"), std::string_view::npos);
  });
}

TEST(HttpMiddleware, CompressionPicksTheClientsBestCodingAndSkipsWhatItShouldNot) {
  run([]() -> Task<void> {
    const std::string page(2000, 'a');
    TestClient client{Router<>{}
                          .route("/page", get([page] { return page; }))
                          .route("/tiny", get([] { return std::string{"small"}; }))
                          .route("/png", get([page] {
                                   Response r{Status::ok, {}, Body{page}};
                                   r.headers.set("content-type", "image/png");
                                   r.headers.set("etag", "\"v1\"");
                                   return r;
                                 }))
                          .route("/tagged", get([page] {
                                   Response r = Response::text(page);
                                   r.headers.set("etag", "\"v1\"");
                                   return r;
                                 }))
                          .route("/stream", get([]() -> Task<Response> {
                                   auto [sender, body] = Body::channel();
                                   spawn([](BodySender tx) -> Task<void> {
                                     for (int i = 0; i < 3; ++i) co_await tx.send(std::string(500, 'x'));
                                   }(std::move(sender)))
                                       .detach();
                                   Response r{Status::ok, {}, std::move(body)};
                                   r.headers.set("content-type", "text/event-stream");
                                   co_return r;
                                 }))
                          .layer(middleware::compression())};
    Response gz = co_await client.send(Method::get, "/page", with("accept-encoding", "gzip, deflate;q=0.5"));
    EXPECT_EQ(gz.headers.get("content-encoding"), "gzip");
    EXPECT_EQ(gz.headers.get("vary"), "accept-encoding");
    EXPECT_LT(gz.body.bytes().size(), 100u);
    EXPECT_EQ(gunzip(gz.body.bytes()), page);
    Response br = co_await client.send(Method::get, "/page", with("accept-encoding", "gzip, br"));
    EXPECT_EQ(br.headers.get("content-encoding"), "br");
    Response none = co_await client.get("/page");
    EXPECT_FALSE(none.headers.contains("content-encoding"));
    EXPECT_EQ(none.body.bytes(), page);
    Response tiny = co_await client.send(Method::get, "/tiny", with("accept-encoding", "gzip"));
    EXPECT_EQ(tiny.body.bytes(), "small");
    Response png = co_await client.send(Method::get, "/png", with("accept-encoding", "gzip"));
    EXPECT_FALSE(png.headers.contains("content-encoding"));
    EXPECT_EQ(png.headers.get("etag"), "\"v1\"");
    Response tagged = co_await client.send(Method::get, "/tagged", with("accept-encoding", "gzip"));
    EXPECT_EQ(tagged.headers.get("etag"), "W/\"v1\"");
    // A stream is compressed chunk by chunk, with gzip even when br is preferred (memory per stream).
    Response stream = co_await client.send(Method::get, "/stream", with("accept-encoding", "br, gzip;q=0.9"));
    EXPECT_EQ(stream.headers.get("content-encoding"), "gzip");
    std::string compressed;
    for (;;) {
      std::optional<std::string> chunk = co_await stream.body.next_chunk();
      if (!chunk) break;
      compressed += *chunk;
    }
    EXPECT_EQ(gunzip(compressed), std::string(1500, 'x'));
  });
}
