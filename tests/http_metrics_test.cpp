// The metrics layer and the Prometheus exposition: counts by route, method and status (synchronous and
// asynchronous handlers, the router's 404 and 405, throwing handlers), the latency histogram, the
// in-flight gauge (suspended, answered, cancelled), label escaping, and the text format line by line.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/spindle.hpp"
#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;
namespace http_detail = spindle::http::detail;  // spindle::detail is visible too

namespace {

/// Runs a test body on a fresh current_thread runtime. The body is a coroutine lambda called with its
/// inputs (parameters, not captures: the GCC 12 rule).
void run_task(Task<void> body) {
  Runtime runtime;
  runtime.block_on(std::move(body));
}

std::string exposition(const HttpMetrics& metrics) {
  std::string text;
  metrics.write_prometheus(text);
  return text;
}

/// The value of the sample `series` (its name and labels exactly as written), or "<absent>".
std::string value_of(const std::string& text, std::string_view series) {
  std::istringstream lines{text};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > series.size() && line.starts_with(series) && line[series.size()] == ' ')
      return line.substr(series.size() + 1);
  }
  return "<absent>";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream{text};
  std::string line;
  while (std::getline(stream, line)) lines.push_back(line);
  return lines;
}

/// A request parsed from `head` as the server would, for calling a layered handler directly.
struct DirectRequest {
  explicit DirectRequest(std::string text) : head(std::move(text)) {
    if (parser.parse(head) != RequestParser::Status::complete) throw std::runtime_error("unparsable test request");
    request = Request{parser.head(), RequestBody{}};
  }
  std::string head;
  RequestParser parser;
  Request request;
};

http_detail::Handler sync_handler(Status status) {
  return http_detail::Handler{[status](Request&) -> http_detail::Reply {
                                return http_detail::Reply{std::in_place_index<0>, Response::empty(status)};
                              },
                              false};
}

Task<Response> answer_after_a_turn() {
  co_await yield_now();
  co_return Response::empty(Status::ok);
}

http_detail::Handler async_handler() {
  return http_detail::Handler{[](Request&) -> http_detail::Reply {
                                return http_detail::Reply{std::in_place_index<1>, answer_after_a_turn()};
                              },
                              true};
}

}  // namespace

TEST(HttpMetrics, CountsByRouteMethodAndStatusForSyncAndAsyncHandlers) {
  auto metrics = std::make_shared<HttpMetrics>();
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{
        Router<>{}
            .route("/users/{id}", get([](Path<int> id) { return std::to_string(*id); }).put([]() -> Task<Response> {
              co_await yield_now();
              co_return Response::empty(Status::no_content);
            }))
            .route("/users", post([]() -> Task<Response> {
                     co_await sleep(1ms);
                     co_return Response::json(R"({"id":3})", Status::created);
                   }))
            .layer(middleware::metrics(metrics))};
    for (int id = 1; id <= 3; ++id) {
      Response shown = co_await client.get("/users/" + std::to_string(id));
      EXPECT_EQ(shown.status, Status::ok);
    }
    Response bad_id = co_await client.get("/users/x");  // the Path extractor's 400, on the same route
    EXPECT_EQ(bad_id.status, Status::bad_request);
    Response replaced = co_await client.send(Method::put, "/users/1");
    EXPECT_EQ(replaced.status, Status::no_content);
    Response created = co_await client.post("/users", "{}");
    EXPECT_EQ(created.status, Status::created);

    const std::string text = exposition(*metrics);
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/users/{id}",status="200"})"), "3");
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/users/{id}",status="400"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="PUT",route="/users/{id}",status="204"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="POST",route="/users",status="201"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="/users/{id}"})"), "4");
    EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="POST",route="/users"})"), "1");
    // The POST slept at least a millisecond.
    EXPECT_GE(std::stod(value_of(text, R"(spindle_http_request_duration_seconds_sum{method="POST",route="/users"})")),
              0.001);
    EXPECT_EQ(metrics->in_flight(), 0u);
  }(metrics));
}

TEST(HttpMetrics, KeepsASynchronousHandlerSynchronousAndCountsAnAsynchronousOneInFlightUntilItAnswers) {
  auto metrics = std::make_shared<HttpMetrics>();
  const Layer layer = middleware::metrics(metrics);
  const http_detail::Handler sync = layer.apply(sync_handler(Status::accepted));
  EXPECT_FALSE(sync.may_suspend);
  DirectRequest first{"GET /now HTTP/1.1\r\nHost: t\r\n\r\n"};
  http_detail::Reply answered = sync.call(first.request);
  ASSERT_EQ(answered.index(), 0u);  // no task: answered in the call
  EXPECT_EQ(std::get<0>(answered).status, Status::accepted);
  EXPECT_EQ(metrics->in_flight(), 0u);

  const http_detail::Handler async = layer.apply(async_handler());
  EXPECT_TRUE(async.may_suspend);
  DirectRequest second{"GET /later HTTP/1.1\r\nHost: t\r\n\r\n"};
  http_detail::Reply pending = async.call(second.request);
  ASSERT_EQ(pending.index(), 1u);
  EXPECT_EQ(metrics->in_flight(), 1u);  // entered the layer; its handler has not answered
  Runtime runtime;
  Response response = runtime.block_on(std::move(std::get<1>(pending)));
  EXPECT_EQ(response.status, Status::ok);
  EXPECT_EQ(metrics->in_flight(), 0u);

  const std::string text = exposition(*metrics);
  // Applied outside a router: nothing matched a route.
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="unmatched",status="202"})"), "1");
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="unmatched",status="200"})"), "1");
}

TEST(HttpMetrics, CountsTheRoutersNotFoundAsUnmatchedAndItsMethodNotAllowedOnTheRoute) {
  auto metrics = std::make_shared<HttpMetrics>();
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{
        Router<>{}.route("/users/{id}", get([] { return std::string{"ada"}; })).layer(middleware::metrics(metrics))};
    for (const char* path : {"/wp-admin", "/.env", "/phpmyadmin/index.php"}) {
      Response missing = co_await client.get(path);
      EXPECT_EQ(missing.status, Status::not_found);
    }
    Response refused = co_await client.send(Method::del, "/users/7");
    EXPECT_EQ(refused.status, Status::method_not_allowed);

    const std::string text = exposition(*metrics);
    // Three different paths, one series: a scanner cannot grow the label set.
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="unmatched",status="404"})"), "3");
    EXPECT_EQ(text.find("wp-admin"), std::string::npos);
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="DELETE",route="/users/{id}",status="405"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="unmatched"})"), "3");
  }(metrics));
}

TEST(HttpMetrics, CountsAThrowingHandlerAs500AndLetsTheExceptionThrough) {
  auto metrics = std::make_shared<HttpMetrics>();
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{Router<>{}
                          .route("/now", get([]() -> std::string { throw std::runtime_error("boom"); }))
                          .route("/later", get([]() -> Task<std::string> {
                                   co_await yield_now();
                                   throw std::runtime_error("late boom");
                                 }))
                          .layer(middleware::metrics(metrics))};
    Response now = co_await client.get("/now");
    EXPECT_EQ(now.status, Status::internal_server_error);
    // The test client shows what was thrown: the exception went through the layer, not a response.
    EXPECT_NE(now.body.bytes().find("boom"), std::string::npos);
    Response later = co_await client.get("/later");
    EXPECT_EQ(later.status, Status::internal_server_error);
    EXPECT_NE(later.body.bytes().find("late boom"), std::string::npos);

    const std::string text = exposition(*metrics);
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/now",status="500"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/later",status="500"})"), "1");
    EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="/later"})"), "1");
    EXPECT_EQ(metrics->in_flight(), 0u);
  }(metrics));
  // A throw straight from the layered call (no router or client in between) goes on too.
  const http_detail::Handler throwing = middleware::metrics(metrics).apply(
      http_detail::Handler{[](Request&) -> http_detail::Reply { throw std::logic_error("direct"); }, false});
  DirectRequest direct{"GET /direct HTTP/1.1\r\nHost: t\r\n\r\n"};
  EXPECT_THROW(throwing.call(direct.request), std::logic_error);
  EXPECT_EQ(
      value_of(exposition(*metrics), R"(spindle_http_requests_total{method="GET",route="unmatched",status="500"})"),
      "1");
  EXPECT_EQ(metrics->in_flight(), 0u);
}

TEST(HttpMetrics, HistogramBucketsAreCumulativeAndCountEveryRequest) {
  // Bounds far from both latencies: a synchronous answer within 40 ms, a 100 ms sleep beyond it.
  auto metrics = std::make_shared<HttpMetrics>(MetricsOptions{.latency_buckets = {0.04, 30}});
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{Router<>{}
                          .route("/fast", get([] { return std::string{"fast"}; }))
                          .route("/slow", get([]() -> Task<std::string> {
                                   co_await sleep(100ms);
                                   co_return std::string{"slow"};
                                 }))
                          .layer(middleware::metrics(metrics))};
    for (int i = 0; i < 3; ++i) {
      Response fast = co_await client.get("/fast");
      EXPECT_EQ(fast.status, Status::ok);
    }
    for (int i = 0; i < 2; ++i) {
      Response slow = co_await client.get("/slow");
      EXPECT_EQ(slow.status, Status::ok);
    }
  }(metrics));

  const std::string text = exposition(*metrics);
  const std::string fast = R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/fast",le=)";
  EXPECT_EQ(value_of(text, fast + R"("0.04"})"), "3");
  EXPECT_EQ(value_of(text, fast + R"("30"})"), "3");
  EXPECT_EQ(value_of(text, fast + R"("+Inf"})"), "3");
  EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="/fast"})"), "3");
  const std::string slow = R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/slow",le=)";
  EXPECT_EQ(value_of(text, slow + R"("0.04"})"), "0");
  EXPECT_EQ(value_of(text, slow + R"("30"})"), "2");  // cumulative: includes the (empty) bucket below
  EXPECT_EQ(value_of(text, slow + R"("+Inf"})"), "2");
  EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="/slow"})"), "2");
  const double slow_sum =
      std::stod(value_of(text, R"(spindle_http_request_duration_seconds_sum{method="GET",route="/slow"})"));
  EXPECT_GE(slow_sum, 0.2);
  EXPECT_LT(slow_sum, 60);
}

TEST(HttpMetrics, WritesTheWholeExpositionSortedByLabels) {
  auto metrics = std::make_shared<HttpMetrics>(MetricsOptions{.latency_buckets = {0.5, 30}});
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{Router<>{}
                          .route("/b", get([] { return std::string{"b"}; }).post([] { return std::string{"b"}; }))
                          .route("/a", get([] { return std::string{"a"}; }))
                          .layer(middleware::metrics(metrics))};
    Response r1 = co_await client.send(Method::post, "/b");
    Response r2 = co_await client.get("/b");
    Response r3 = co_await client.get("/a");
    Response r4 = co_await client.get("/a");
    EXPECT_EQ(r4.status, Status::ok);
  }(metrics));
  std::vector<std::string> lines = lines_of(exposition(*metrics));
  // The sums are measured times: checked for shape, then left out of the comparison.
  const std::regex sum{R"(spindle_http_request_duration_seconds_sum\{.*\} (\S+))"};
  for (std::string& line : lines) {
    std::smatch matched;
    if (!std::regex_match(line, matched, sum)) continue;
    const double seconds = std::stod(matched[1]);
    EXPECT_TRUE(seconds >= 0 && seconds < 0.5) << line;
    line = line.substr(0, line.rfind(' ')) + " <measured>";
  }
  const std::vector<std::string> expected = {
      "# HELP spindle_http_requests_total Requests answered, by method, route and status.",
      "# TYPE spindle_http_requests_total counter",
      R"(spindle_http_requests_total{method="GET",route="/a",status="200"} 2)",
      R"(spindle_http_requests_total{method="GET",route="/b",status="200"} 1)",
      R"(spindle_http_requests_total{method="POST",route="/b",status="200"} 1)",
      "# HELP spindle_http_request_duration_seconds Time from a request entering the metrics layer until its handler "
      "produced the response.",
      "# TYPE spindle_http_request_duration_seconds histogram",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/a",le="0.5"} 2)",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/a",le="30"} 2)",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 2)",
      R"(spindle_http_request_duration_seconds_sum{method="GET",route="/a"} <measured>)",
      R"(spindle_http_request_duration_seconds_count{method="GET",route="/a"} 2)",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/b",le="0.5"} 1)",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/b",le="30"} 1)",
      R"(spindle_http_request_duration_seconds_bucket{method="GET",route="/b",le="+Inf"} 1)",
      R"(spindle_http_request_duration_seconds_sum{method="GET",route="/b"} <measured>)",
      R"(spindle_http_request_duration_seconds_count{method="GET",route="/b"} 1)",
      R"(spindle_http_request_duration_seconds_bucket{method="POST",route="/b",le="0.5"} 1)",
      R"(spindle_http_request_duration_seconds_bucket{method="POST",route="/b",le="30"} 1)",
      R"(spindle_http_request_duration_seconds_bucket{method="POST",route="/b",le="+Inf"} 1)",
      R"(spindle_http_request_duration_seconds_sum{method="POST",route="/b"} <measured>)",
      R"(spindle_http_request_duration_seconds_count{method="POST",route="/b"} 1)",
      "# HELP spindle_http_requests_in_flight Requests inside the metrics layer whose handler has not answered yet.",
      "# TYPE spindle_http_requests_in_flight gauge",
      "spindle_http_requests_in_flight 0",
  };
  EXPECT_EQ(lines, expected);
}

TEST(HttpMetrics, InFlightCountsASuspendedHandlerUntilItAnswersOrIsCancelled) {
  auto metrics = std::make_shared<HttpMetrics>();
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    auto release = std::make_shared<Notify>();
    TestClient client{Router<>{}
                          .route("/wait", get([release]() -> Task<std::string> {
                                   co_await release->notified();
                                   co_return std::string{"done"};
                                 }))
                          .layer(middleware::metrics(metrics))};
    EXPECT_EQ(metrics->in_flight(), 0u);
    JoinHandle<Response> waiting = spawn(client.get("/wait"));
    for (int i = 0; i < 10; ++i) co_await yield_now();  // now suspended inside the handler
    EXPECT_EQ(metrics->in_flight(), 1u);
    EXPECT_EQ(value_of(exposition(*metrics), "spindle_http_requests_in_flight"), "1");
    // Not counted yet: it has not answered.
    EXPECT_EQ(value_of(exposition(*metrics), R"(spindle_http_requests_total{method="GET",route="/wait",status="200"})"),
              "<absent>");
    release->notify_waiters();
    Result<Response, JoinError> answered = co_await std::move(waiting);
    EXPECT_TRUE(answered);
    if (!answered) co_return;
    EXPECT_EQ(answered->body.bytes(), "done");
    EXPECT_EQ(metrics->in_flight(), 0u);
    EXPECT_EQ(value_of(exposition(*metrics), "spindle_http_requests_in_flight"), "0");
    EXPECT_EQ(value_of(exposition(*metrics), R"(spindle_http_requests_total{method="GET",route="/wait",status="200"})"),
              "1");

    // Cancelled while suspended: its coroutines are destroyed, and it leaves the gauge uncounted.
    JoinHandle<Response> abandoned = spawn(client.get("/wait"));
    for (int i = 0; i < 10; ++i) co_await yield_now();
    EXPECT_EQ(metrics->in_flight(), 1u);
    abandoned.abort();
    Result<Response, JoinError> cancelled = co_await std::move(abandoned);
    EXPECT_FALSE(cancelled);
    if (!cancelled) {
      EXPECT_TRUE(cancelled.error().is_cancelled());
    }
    EXPECT_EQ(metrics->in_flight(), 0u);
    EXPECT_EQ(
        value_of(exposition(*metrics), R"(spindle_http_request_duration_seconds_count{method="GET",route="/wait"})"),
        "1");
  }(metrics));
}

TEST(HttpMetrics, CountsExactlyWhileWorkerThreadsRecordAtOnce) {
  auto metrics = std::make_shared<HttpMetrics>();
  TestClient client{Router<>{}
                        .route("/sync", get([] { return std::string{"s"}; }))
                        .route("/async", get([]() -> Task<std::string> {
                                 co_await yield_now();
                                 co_return std::string{"a"};
                               }))
                        .layer(middleware::metrics(metrics))};
  constexpr int kTasks = 40;
  constexpr int kRounds = 25;
  Runtime runtime = Runtime::multi_thread().worker_threads(2).build();
  runtime.block_on([](TestClient* client) -> Task<void> {
    std::vector<JoinHandle<void>> handles;
    for (int t = 0; t < kTasks; ++t) {
      handles.push_back(spawn([](TestClient* client) -> Task<void> {
        for (int round = 0; round < kRounds; ++round) {
          Response sync = co_await client->get("/sync");
          EXPECT_EQ(sync.status, Status::ok);
          Response async = co_await client->get("/async");
          EXPECT_EQ(async.status, Status::ok);
        }
      }(client)));
    }
    for (auto& handle : handles) {
      Result<void, JoinError> done = co_await std::move(handle);
      EXPECT_TRUE(done);
    }
  }(&client));
  const std::string text = exposition(*metrics);
  const std::string total = std::to_string(kTasks * kRounds);
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/sync",status="200"})"), total);
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/async",status="200"})"), total);
  EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_count{method="GET",route="/async"})"), total);
  EXPECT_EQ(metrics->in_flight(), 0u);
}

// Through a real Server, which keeps a copy of its router: the copy's 404 is still recorded, and a
// response that reached the client was recorded before it was written.
TEST(HttpMetrics, RecordsWhatARealServerAnswersBeforeTheClientSeesIt) {
  auto metrics = std::make_shared<HttpMetrics>();
  Router<> router = Router<>{}
                        .route("/users/{id}", get([](Path<int> id) { return std::to_string(*id); }))
                        .route("/slow", get([]() -> Task<std::string> {
                                 co_await sleep(5ms);
                                 co_return std::string{"slow"};
                               }));
  router.layer(middleware::metrics(metrics));
  spindle_test::TestServer server{router};
  auto shown = spindle_test::exchange(server.port(), "GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(shown);
  EXPECT_EQ(shown->status, 200);
  auto slow = spindle_test::exchange(server.port(), "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 200);
  auto missing = spindle_test::exchange(server.port(), "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  const std::string text = exposition(*metrics);
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/users/{id}",status="200"})"), "1");
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="/slow",status="200"})"), "1");
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="GET",route="unmatched",status="404"})"), "1");
  EXPECT_EQ(metrics->in_flight(), 0u);
}

TEST(HttpMetrics, EscapesRouteLabelsAndLabelsOtherMethodsAsOther) {
  auto metrics = std::make_shared<HttpMetrics>();
  const http_detail::Handler handler = middleware::metrics(metrics).apply(sync_handler(Status::ok));
  DirectRequest quoted{"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"};
  // As the router sets it: a pattern with a quote, a backslash and a line feed in it.
  quoted.request.set_params({}, "/say/\"hi\"\\back\nslash");
  handler.call(quoted.request);
  DirectRequest other{"PROPFIND /dav HTTP/1.1\r\nHost: t\r\n\r\n"};
  ASSERT_EQ(other.request.method(), Method::other);
  handler.call(other.request);

  const std::string text = exposition(*metrics);
  EXPECT_EQ(
      value_of(text, R"(spindle_http_requests_total{method="GET",route="/say/\"hi\"\\back\nslash",status="200"})"),
      "1");
  EXPECT_EQ(value_of(text, R"(spindle_http_requests_total{method="other",route="unmatched",status="200"})"), "1");
  EXPECT_EQ(text.find("PROPFIND"), std::string::npos);
}

TEST(HttpMetrics, PrometheusHelpersWriteHelpTypeAndEscapedSamples) {
  std::string page;
  prometheus::write_gauge(page, "app_pool_connections", "Open connections\\sockets,\nby pool.", 4,
                          {{"pool", "main \"primary\""}, {"path", "C:\\db\nx"}});
  prometheus::write_sample(page, "app_pool_connections", 0.25, {{"pool", "reports"}});
  prometheus::write_counter(page, "app_bytes_total", "Bytes sent.", 1e6);
  prometheus::write_gauge(page, "app_ratio", "", 1.0 / 3);
  prometheus::write_gauge(page, "app_unknown", "Not measured.", std::nan(""));
  prometheus::write_gauge(page, "app_ceiling", "No limit.", HUGE_VAL);
  prometheus::write_gauge(page, "app_tiny", "Small.", 1.5e-7);
  const std::vector<std::string> expected = {
      R"(# HELP app_pool_connections Open connections\\sockets,\nby pool.)",
      "# TYPE app_pool_connections gauge",
      R"(app_pool_connections{pool="main \"primary\"",path="C:\\db\nx"} 4)",
      R"(app_pool_connections{pool="reports"} 0.25)",
      "# HELP app_bytes_total Bytes sent.",
      "# TYPE app_bytes_total counter",
      "app_bytes_total 1000000",  // integral: no exponent
      "# HELP app_ratio",
      "# TYPE app_ratio gauge",
      "app_ratio 0.3333333333333333",  // the shortest text that reads back as the same double
      "# HELP app_unknown Not measured.",
      "# TYPE app_unknown gauge",
      "app_unknown NaN",
      "# HELP app_ceiling No limit.",
      "# TYPE app_ceiling gauge",
      "app_ceiling +Inf",
      "# HELP app_tiny Small.",
      "# TYPE app_tiny gauge",
      "app_tiny 1.5e-07",
  };
  EXPECT_EQ(lines_of(page), expected);
  EXPECT_EQ(std::stod("0.3333333333333333"), 1.0 / 3);
  EXPECT_EQ(prometheus::content_type, "text/plain; version=0.0.4; charset=utf-8");

  // Names the format cannot carry are refused before anything is written.
  const std::string before = page;
  EXPECT_THROW(prometheus::write_gauge(page, "app-latency", "Bad name.", 1), std::invalid_argument);
  EXPECT_THROW(prometheus::write_counter(page, "9lives_total", "Bad name.", 1), std::invalid_argument);
  EXPECT_THROW(prometheus::write_gauge(page, "app_ok", "Bad label.", 1, {{"bad-label", "x"}}), std::invalid_argument);
  EXPECT_THROW(prometheus::write_sample(page, "app_ok", 1, {{"le:x", "x"}}), std::invalid_argument);
  EXPECT_EQ(page, before);
}

TEST(HttpMetrics, RefusesBucketBoundsThatAreNotFiniteAndIncreasing) {
  EXPECT_THROW(HttpMetrics(MetricsOptions{.latency_buckets = {0.1, 0.05}}), std::invalid_argument);
  EXPECT_THROW(HttpMetrics(MetricsOptions{.latency_buckets = {0.1, 0.1}}), std::invalid_argument);
  EXPECT_THROW(HttpMetrics(MetricsOptions{.latency_buckets = {0.1, HUGE_VAL}}), std::invalid_argument);
  EXPECT_THROW(HttpMetrics(MetricsOptions{.latency_buckets = {std::nan("")}}), std::invalid_argument);
  EXPECT_THROW(middleware::metrics(nullptr), std::invalid_argument);
  // No bounds at all: one +Inf bucket.
  HttpMetrics only_inf{MetricsOptions{.latency_buckets = {}}};
  const http_detail::Handler handler =
      middleware::metrics(std::shared_ptr<HttpMetrics>{&only_inf, [](HttpMetrics*) {}}).apply(sync_handler(Status::ok));
  DirectRequest request{"GET / HTTP/1.1\r\nHost: t\r\n\r\n"};
  handler.call(request.request);
  const std::string text = exposition(only_inf);
  EXPECT_EQ(value_of(text, R"(spindle_http_request_duration_seconds_bucket{method="GET",route="unmatched",le="+Inf"})"),
            "1");
  EXPECT_EQ(text.find("le=\"0"), std::string::npos);
}

TEST(HttpMetrics, TheExpositionParsesLineByLine) {
  auto metrics = std::make_shared<HttpMetrics>();
  run_task([](std::shared_ptr<HttpMetrics> metrics) -> Task<void> {
    TestClient client{Router<>{}
                          .route("/users/{id}", get([] { return std::string{"ada"}; }))
                          .route("/fails", get([]() -> std::string { throw std::runtime_error("boom"); }))
                          .layer(middleware::metrics(metrics))};
    Response a = co_await client.get("/users/1");
    Response b = co_await client.get("/nowhere");
    Response c = co_await client.send(Method::post, "/users/1");
    Response d = co_await client.get("/fails");
    EXPECT_EQ(d.status, Status::internal_server_error);
  }(metrics));
  const http_detail::Handler direct = middleware::metrics(metrics).apply(sync_handler(Status::ok));
  DirectRequest odd{"GET / HTTP/1.1\r\nHost: t\r\n\r\n"};
  odd.request.set_params({}, "/odd/\"\\\n");
  direct.call(odd.request);
  std::string text = exposition(*metrics);
  prometheus::write_gauge(text, "app_users", "Users.", 12, {{"state", "a\"b"}});
  prometheus::write_counter(text, "app_events_total", "Events.", 0.5);

  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const std::string label_value = R"("(?:[^"\\\n]|\\[\\"n])*")";
  const std::regex sample{R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*=)" + label_value +
                          R"((?:,[a-zA-Z_][a-zA-Z0-9_]*=)" + label_value + R"()*\})? (\S+))"};
  const std::regex help{R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*)( .*)?)"};
  const std::regex type{R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram))"};
  std::map<std::string, std::string> types;
  int samples = 0;
  for (const std::string& line : lines_of(text)) {
    std::smatch matched;
    if (std::regex_match(line, matched, help)) continue;
    if (std::regex_match(line, matched, type)) {
      EXPECT_TRUE(types.emplace(matched[1], matched[2]).second) << "declared twice: " << line;
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, matched, sample)) << "not `name{labels} value`: " << line;
    ++samples;
    const std::string value = matched[3];
    char* end = nullptr;
    std::strtod(value.c_str(), &end);
    EXPECT_EQ(end, value.c_str() + value.size()) << "not a number: " << line;
    // Every sample belongs to a family declared before it (a histogram's by its suffixes).
    std::string family = matched[1];
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (family.ends_with(suffix) && types.contains(family.substr(0, family.size() - suffix.size())))
        family.resize(family.size() - suffix.size());
    }
    EXPECT_TRUE(types.contains(family)) << "no # TYPE before " << line;
  }
  // 5 counter series; 5 histograms (one per method and route) of 14 bounds, +Inf, _sum and _count; the
  // gauge; and the application's two.
  EXPECT_EQ(samples, 5 + 5 * 17 + 1 + 2);
  EXPECT_EQ(types.size(), 5u);
}
