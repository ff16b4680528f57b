#pragma once
// Prometheus metrics of a server: requests by route, method and status, their latency as a histogram, and
// the requests in flight, written in Prometheus' text exposition format (version 0.0.4) for a /metrics
// route; plus helpers to write an application's own metrics into the same page.
//
//   auto metrics = std::make_shared<HttpMetrics>();
//   auto app = Router<>{}
//                  .route("/users/{id}", get(show_user))
//                  .route("/metrics", get([metrics] {
//                           std::string page;
//                           metrics->write_prometheus(page);
//                           prometheus::write_gauge(page, "app_users", "Users signed up.", user_count());
//                           Response response = Response::text(std::move(page));
//                           response.headers.set("content-type", prometheus::content_type);
//                           return response;
//                         }))
//                  .layer(middleware::metrics(metrics));   // counts the 404s and 405s too

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/http/layer.hpp"

namespace spindle::http {

struct MetricsOptions {
  /// Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied. Strictly increasing and
  /// finite, or HttpMetrics' constructor throws std::invalid_argument.
  std::vector<double> latency_buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
};

class HttpMetrics;

namespace detail {
/// What an HttpMetrics records, shared with the layers that record into it (src/http/metrics.cpp).
struct HttpMetricsState;
}  // namespace detail

namespace middleware {
/// Records every request the router answers (route = the matched pattern from Request::matched_route();
/// requests no route matched are labelled route="unmatched", so a scanner cannot blow up the label set,
/// and so are methods other than the nine standard ones, method="other"), including the router's 404 and
/// 405 answers when added with Router::layer(). A handler that throws counts as 500, and the exception
/// goes on; a handler cancelled before it answered (a timeout layer outside this one) leaves the
/// in-flight gauge and is not counted. A synchronous handler stays synchronous.
Layer metrics(std::shared_ptr<HttpMetrics> metrics);
}  // namespace middleware

/// Request metrics of a server, thread-safe (several worker threads record at once). Shared by the
/// layer that records (middleware::metrics) and the handler that serves them (write_prometheus).
///
///   spindle_http_requests_total{method="GET",route="/users/{id}",status="200"} 12
///   spindle_http_request_duration_seconds_bucket{method="GET",route="/users/{id}",le="0.005"} 11
///   spindle_http_request_duration_seconds_sum{method="GET",route="/users/{id}"} 0.0183
///   spindle_http_request_duration_seconds_count{method="GET",route="/users/{id}"} 12
///   spindle_http_requests_in_flight 1
class HttpMetrics {
 public:
  explicit HttpMetrics(MetricsOptions options = {});
  HttpMetrics(const HttpMetrics&) = delete;
  HttpMetrics& operator=(const HttpMetrics&) = delete;
  ~HttpMetrics();

  /// Appends Prometheus text exposition format (version 0.0.4), with # HELP and # TYPE lines:
  ///   spindle_http_requests_total{method,route,status}  counter
  ///   spindle_http_request_duration_seconds_bucket{method,route,le} / _sum / _count  histogram (by method
  ///   and route; latency from entering the layer until the handler produced its response)
  ///   spindle_http_requests_in_flight  gauge (a scrape served through the layer counts itself)
  /// Series are sorted by their labels (method, then route, then status), so the text is stable.
  void write_prometheus(std::string& out) const;

  /// Requests inside the layer now: entered, and their handler has not yet produced a response.
  std::size_t in_flight() const noexcept;

 private:
  friend Layer middleware::metrics(std::shared_ptr<HttpMetrics> metrics);
  // Shared: an asynchronous request still being answered keeps it alive.
  std::shared_ptr<detail::HttpMetricsState> state_;
};

namespace prometheus {

/// A label of a sample: the name must be a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*); the value
/// may be anything (escaped as the format wants: \\, \", \n).
struct Label {
  std::string_view name;
  std::string_view value;
};

/// Helpers for an application's own metrics in the same exposition. Each writes the metric's # HELP and
/// # TYPE lines and one sample; more samples of the same metric (other label values) follow with
/// write_sample. Label values are escaped (\\, \", \n), the help text too (\\, \n). A name that is not a
/// Prometheus metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) throws std::invalid_argument. Integral values are
/// written without exponent, others with the shortest text that reads back as the same double.
///
///   prometheus::write_gauge(page, "app_pool_connections", "Open connections.", 4, {{"pool", "main"}});
///   prometheus::write_sample(page, "app_pool_connections", 1, {{"pool", "reports"}});
void write_gauge(std::string& out, std::string_view name, std::string_view help, double value,
                 std::initializer_list<Label> labels = {});
void write_counter(std::string& out, std::string_view name, std::string_view help, double value,
                   std::initializer_list<Label> labels = {});
/// One more sample of the metric written just before: `name{labels} value`.
void write_sample(std::string& out, std::string_view name, double value, std::initializer_list<Label> labels = {});

/// Content-Type of the exposition.
inline constexpr std::string_view content_type = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace prometheus
}  // namespace spindle::http
