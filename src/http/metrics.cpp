// Request metrics (middleware::metrics records, HttpMetrics writes) and Prometheus' text format.

#include "spindle/http/metrics.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace spindle::http {
namespace detail {

/// The counts behind an HttpMetrics. One mutex guards them: a request takes it once (twice when its
/// handler suspends), for a map lookup that allocates nothing once its series exists, and a few
/// additions. The in-flight gauge is an atomic of its own.
struct HttpMetricsState {
  using Clock = std::chrono::steady_clock;

  /// The requests of one method on one route.
  struct Series {
    std::map<int, std::uint64_t> by_status;
    std::vector<std::uint64_t> in_bucket;  // per bucket, not cumulative; the last one is +Inf
    double seconds = 0;
    std::uint64_t count = 0;
  };

  /// A series' labels. `method` is a literal ("GET", "other"); `route` is copied, as the router's pattern
  /// need not outlive the metrics.
  struct Key {
    std::string_view method;
    std::string route;
  };
  struct KeyView {
    std::string_view method;
    std::string_view route;
  };
  /// Orders by method, then route, as the labels are written; transparent, so that a request's route is
  /// looked up as the string_view the request holds, without making a std::string of it.
  struct KeyOrder {
    using is_transparent = void;
    static KeyView view(const Key& key) noexcept { return {key.method, key.route}; }
    static KeyView view(const KeyView& key) noexcept { return key; }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      const KeyView left = view(a);
      const KeyView right = view(b);
      if (left.method != right.method) return left.method < right.method;
      return left.route < right.route;
    }
  };

  explicit HttpMetricsState(std::vector<double> latency_bounds) : bounds(std::move(latency_bounds)) {}

  /// The series of (method, route), made on first use. Nodes of a std::map stay where they are, and none
  /// is ever erased, so the reference stays valid for the life of the state.
  Series& series_locked(std::string_view method, std::string_view route) {
    auto found = series.find(KeyView{method, route});
    if (found != series.end()) return found->second;
    Series made;
    made.in_bucket.assign(bounds.size() + 1, 0);
    return series.emplace(Key{method, std::string{route}}, std::move(made)).first->second;
  }

  void record_locked(Series& into, Status status, Clock::duration latency) {
    const double seconds = std::chrono::duration<double>(latency).count();
    ++into.by_status[static_cast<int>(status)];
    // Prometheus' buckets are "less than or equal to": the first bound not below the latency.
    const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin();
    ++into.in_bucket[static_cast<std::size_t>(bucket)];
    into.seconds += seconds;
    ++into.count;
  }

  void record(std::string_view method, std::string_view route, Status status, Clock::duration latency) {
    const std::lock_guard lock{mutex};
    record_locked(series_locked(method, route), status, latency);
  }

  const std::vector<double> bounds;  // strictly increasing, finite
  std::atomic<std::size_t> in_flight{0};
  std::mutex mutex;
  std::map<Key, Series, KeyOrder> series;  // guarded by mutex
};

}  // namespace detail

namespace {

using State = detail::HttpMetricsState;
using Clock = State::Clock;

// Writes a double as Prometheus reads it (Go's ParseFloat): integral values without exponent ("1000000",
// not "1e+06"), others in the shortest text that reads back as the same double.
void append_number(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
    return;
  }
  if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
    return;
  }
  char text[64];
  const bool integral = value == std::trunc(value) && std::fabs(value) < 1e15;
  const std::to_chars_result written = integral
                                           ? std::to_chars(text, text + sizeof text, value, std::chars_format::fixed)
                                           : std::to_chars(text, text + sizeof text, value);
  out.append(text, written.ptr);
}

void append_count(std::string& out, std::uint64_t value) {
  char text[24];
  const std::to_chars_result written = std::to_chars(text, text + sizeof text, value);
  out.append(text, written.ptr);
}

// A label value between its quotes: backslash, double quote and line feed escaped, as the format wants.
void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

// Help text: only backslash and line feed are escaped there.
void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

bool is_name_start(char c, bool colon_allowed) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_allowed && c == ':');
}

// [a-zA-Z_:][a-zA-Z0-9_:]* for metric names, the same without ':' for label names.
bool is_name(std::string_view name, bool colon_allowed) noexcept {
  if (name.empty() || !is_name_start(name.front(), colon_allowed)) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [colon_allowed](char c) { return is_name_start(c, colon_allowed) || (c >= '0' && c <= '9'); });
}

// Before anything is written, so that a refused sample leaves `out` as it was.
void check_names(std::string_view name, std::initializer_list<prometheus::Label> labels) {
  if (!is_name(name, true))
    throw std::invalid_argument("prometheus: `" + std::string{name} +
                                "` is not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  for (const prometheus::Label& label : labels)
    if (!is_name(label.name, false))
      throw std::invalid_argument("prometheus: `" + std::string{label.name} +
                                  "` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)");
}

// The sample line, names already checked.
void append_sample(std::string& out, std::string_view name, double value,
                   std::initializer_list<prometheus::Label> labels) {
  out += name;
  char separator = '{';
  for (const prometheus::Label& label : labels) {
    out += separator;
    separator = ',';
    out += label.name;
    out += "=\"";
    append_label_value(out, label.value);
    out += '"';
  }
  if (labels.size() != 0) out += '}';
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void write_metric(std::string& out, std::string_view name, std::string_view help, std::string_view type, double value,
                  std::initializer_list<prometheus::Label> labels) {
  check_names(name, labels);
  out += "# HELP ";
  out += name;
  if (!help.empty()) {
    out += ' ';
    append_help(out, help);
  }
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  append_sample(out, name, value, labels);
}

// `name{method="GET",route="/users/{id}"` of one of the server's series, without the closing brace, so that
// a status or le label can follow.
void open_series(std::string& out, std::string_view name, const State::Key& key) {
  out += name;
  out += "{method=\"";
  append_label_value(out, key.method);
  out += "\",route=\"";
  append_label_value(out, key.route);
  out += '"';
}

std::string_view method_label(Method method) noexcept {
  // Method::other is any token a client cares to send: one label for all of them.
  return method == Method::other ? std::string_view{"other"} : method_name(method);
}

std::string_view route_label(const Request& request) noexcept {
  const std::string_view route = request.matched_route();
  // Not the path: every path a scanner tries would become a series of its own. Patterns start with '/',
  // so no route can be called this.
  return route.empty() ? std::string_view{"unmatched"} : route;
}

/// Keeps a request counted in flight until it is recorded, or until it is dropped (a cancelled handler's
/// coroutine is destroyed, and this with it).
class InFlight {
 public:
  explicit InFlight(State& state) noexcept : state_(&state) { state.in_flight.fetch_add(1, std::memory_order_relaxed); }
  InFlight(InFlight&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  InFlight& operator=(InFlight&&) = delete;
  ~InFlight() { leave(); }

  void leave() noexcept {
    if (state_ != nullptr) std::exchange(state_, nullptr)->in_flight.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  State* state_;
};

/// An asynchronous request until its handler answers. Members are destroyed in reverse order, so the
/// in-flight guard goes before the state it points into.
struct Pending {
  std::shared_ptr<State> state;
  State::Series* series;
  Clock::time_point start;
  InFlight in_flight;

  void answered(Status status) {
    const Clock::duration latency = Clock::now() - start;
    {
      const std::lock_guard lock{state->mutex};
      state->record_locked(*series, status, latency);
    }
    in_flight.leave();
  }
};

Task<Response> record_when_answered(Task<Response> pending, Pending request) {
  Response response;
  try {
    Response answered = co_await std::move(pending);
    response = std::move(answered);
  } catch (...) {
    // The server answers a throwing handler with 500: counted so, and the exception goes on.
    request.answered(Status::internal_server_error);
    throw;
  }
  request.answered(response.status);
  co_return response;
}

}  // namespace

HttpMetrics::HttpMetrics(MetricsOptions options) {
  const std::vector<double>& bounds = options.latency_buckets;
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]))
      throw std::invalid_argument("MetricsOptions: latency bucket bounds must be finite (+Inf is implied)");
    if (i > 0 && !(bounds[i] > bounds[i - 1]))
      throw std::invalid_argument("MetricsOptions: latency bucket bounds must be strictly increasing");
  }
  state_ = std::make_shared<detail::HttpMetricsState>(std::move(options.latency_buckets));
}

HttpMetrics::~HttpMetrics() = default;

std::size_t HttpMetrics::in_flight() const noexcept { return state_->in_flight.load(std::memory_order_relaxed); }

void HttpMetrics::write_prometheus(std::string& out) const {
  const State& state = *state_;
  const std::lock_guard lock{state_->mutex};

  out += "# HELP spindle_http_requests_total Requests answered, by method, route and status.\n";
  out += "# TYPE spindle_http_requests_total counter\n";
  for (const auto& [key, series] : state.series) {
    for (const auto& [status, count] : series.by_status) {
      open_series(out, "spindle_http_requests_total", key);
      out += ",status=\"";
      append_count(out, static_cast<std::uint64_t>(status));
      out += "\"} ";
      append_count(out, count);
      out += '\n';
    }
  }

  out +=
      "# HELP spindle_http_request_duration_seconds Time from a request entering the metrics layer until its "
      "handler produced the response.\n";
  out += "# TYPE spindle_http_request_duration_seconds histogram\n";
  for (const auto& [key, series] : state.series) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < series.in_bucket.size(); ++i) {
      cumulative += series.in_bucket[i];
      open_series(out, "spindle_http_request_duration_seconds_bucket", key);
      out += ",le=\"";
      if (i < state.bounds.size()) {
        append_number(out, state.bounds[i]);
      } else {
        out += "+Inf";
      }
      out += "\"} ";
      append_count(out, cumulative);
      out += '\n';
    }
    open_series(out, "spindle_http_request_duration_seconds_sum", key);
    out += "} ";
    append_number(out, series.seconds);
    out += '\n';
    open_series(out, "spindle_http_request_duration_seconds_count", key);
    out += "} ";
    append_count(out, series.count);
    out += '\n';
  }

  out +=
      "# HELP spindle_http_requests_in_flight Requests inside the metrics layer whose handler has not answered "
      "yet.\n";
  out += "# TYPE spindle_http_requests_in_flight gauge\n";
  out += "spindle_http_requests_in_flight ";
  append_count(out, in_flight());
  out += '\n';
}

namespace middleware {

Layer metrics(std::shared_ptr<HttpMetrics> metrics) {
  if (!metrics) throw std::invalid_argument("middleware::metrics: no HttpMetrics given");
  return detail::keeping_sync([state = metrics->state_](std::shared_ptr<const detail::Handler> rest) {
    return [state, rest](Request& request) -> detail::Reply {
      const Clock::time_point start = Clock::now();
      const std::string_view method = method_label(request.method());
      const std::string_view route = route_label(request);
      InFlight in_flight{*state};
      detail::Reply reply;
      try {
        reply = rest->call(request);
      } catch (...) {
        state->record(method, route, Status::internal_server_error, Clock::now() - start);
        throw;
      }
      if (reply.index() == 0) {
        state->record(method, route, std::get<0>(reply).status, Clock::now() - start);
        return reply;
      }
      // The route's text belongs to the router, which the task may outlive: its series is found (or
      // made) now, and the task keeps a pointer to that.
      State::Series* series = nullptr;
      {
        const std::lock_guard lock{state->mutex};
        series = &state->series_locked(method, route);
      }
      return detail::Reply{
          std::in_place_index<1>,
          record_when_answered(std::move(std::get<1>(reply)), Pending{state, series, start, std::move(in_flight)})};
    };
  });
}

}  // namespace middleware

namespace prometheus {

void write_gauge(std::string& out, std::string_view name, std::string_view help, double value,
                 std::initializer_list<Label> labels) {
  write_metric(out, name, help, "gauge", value, labels);
}

void write_counter(std::string& out, std::string_view name, std::string_view help, double value,
                   std::initializer_list<Label> labels) {
  write_metric(out, name, help, "counter", value, labels);
}

void write_sample(std::string& out, std::string_view name, double value, std::initializer_list<Label> labels) {
  check_names(name, labels);
  append_sample(out, name, value, labels);
}

}  // namespace prometheus
}  // namespace spindle::http
