// An HTTP load generator on spindle::http::Client, for the comparison matrix (bench/matrix).
//
// Open loop (the default): requests leave on a schedule, whether or not earlier ones have finished, at a
// rate that ramps from --rate to --rate-end over --ramp seconds and then holds for --hold seconds. A
// request's latency counts from the moment it was scheduled, not from when it could be sent, so a
// server that falls behind shows it in the latency instead of slowing the generator down (the
// coordinated omission of closed-loop tools such as wrk). At most --max-outstanding requests are in
// flight (each holds a connection, and the process has at most 20,000 descriptors here): a request due
// while the cap is reached is counted as not sent, an error.
//
// Closed loop (--connections N): N connections, each sending its next request when the last one is
// answered, for --duration seconds; the mode wrk measures in, to check this generator against it.
//
//   loadgen --url http://127.0.0.1:8080/delay --rate 1000 --rate-end 10000 --ramp 60 --hold 30
//   loadgen --url http://127.0.0.1:8080/plaintext --connections 100 --duration 10
//
// Prints one line per second ("second N sent S ok K errors E not_sent U p50_ms A p99_ms B max_ms C",
// latencies of the requests scheduled in that second) and a summary line. Loopback only: it refuses
// URLs outside 127.0.0.0/8.

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "spindle/http/client.hpp"
#include "spindle/spindle.hpp"

using namespace std::chrono_literals;
using spindle::Task;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string url;
  double rate = 1000;    // requests per second at the start
  double rate_end = -1;  // at the end of the ramp; -1: the same as rate
  double ramp = 0;       // seconds
  double hold = 10;      // seconds at rate_end after the ramp
  std::size_t max_outstanding = 15000;
  unsigned timeout_ms = 2000;
  std::size_t connections = 0;  // > 0: closed loop
  double duration = 10;         // seconds, closed loop
};

/// What happened to the requests scheduled in one second.
struct Second {
  std::size_t sent = 0;
  std::size_t ok = 0;
  std::size_t errors = 0;  // failed, timed out, not 2xx (not_sent excluded)
  std::size_t not_sent = 0;
  std::vector<std::int64_t> latencies_us;  // of the answered requests
};

struct Recorder {
  std::map<long, Second> seconds;
  std::size_t outstanding = 0;
  std::map<std::string, std::size_t> error_kinds;
};

double percentile_ms(std::vector<std::int64_t>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto at = std::min(values.size() - 1, static_cast<std::size_t>(p * static_cast<double>(values.size())));
  return static_cast<double>(values[at]) / 1000.0;
}

std::string kind_name(spindle::http::ClientError::Kind kind) {
  using Kind = spindle::http::ClientError::Kind;
  switch (kind) {
    case Kind::connect:
      return "connect";
    case Kind::timeout:
      return "timeout";
    case Kind::io:
      return "io";
    case Kind::protocol:
      return "protocol";
    default:
      return "other";
  }
}

/// One request, its outcome recorded against the second it was scheduled in.
Task<void> one_request(const spindle::http::Client& client, const std::string& url, Clock::time_point scheduled,
                       long second, Recorder& recorder, std::chrono::milliseconds limit) {
  ++recorder.outstanding;
  Second& slot = recorder.seconds[second];
  ++slot.sent;
  bool ok = false;
  std::string error;
  auto answered = co_await spindle::timeout(limit, client.get(url));
  if (!answered) {
    error = "timeout";
  } else if (!*answered) {
    error = kind_name(answered->error().kind);
  } else {
    spindle::http::ClientResponse& response = **answered;
    const int status = static_cast<int>(response.status());
    auto reading = response.text();  // to the end: the connection goes back to the pool
    spindle::Result<std::string, spindle::http::ClientError> body = co_await std::move(reading);
    if (!body)
      error = kind_name(body.error().kind);
    else if (status < 200 || status > 299)
      error = "status " + std::to_string(status);
    else
      ok = true;
  }
  Second& done = recorder.seconds[second];
  if (ok) {
    ++done.ok;
    done.latencies_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - scheduled).count());
  } else {
    ++done.errors;
    ++recorder.error_kinds[error];
  }
  --recorder.outstanding;
}

/// The schedule: a rate ramping linearly from r0 to r1 over `ramp` seconds, then flat at r1.
struct Schedule {
  double r0, r1, ramp;

  /// Requests due by `t` seconds.
  double due_by(double t) const {
    if (ramp <= 0) return r1 * t;
    if (t <= ramp) return r0 * t + (r1 - r0) * t * t / (2 * ramp);
    return (r0 + r1) / 2 * ramp + r1 * (t - ramp);
  }
  /// When request number k (from 1) is due: the inverse of due_by.
  double time_of(double k) const {
    const double in_ramp = ramp > 0 ? (r0 + r1) / 2 * ramp : 0;
    if (k > in_ramp) return ramp + (k - in_ramp) / r1;
    const double a = (r1 - r0) / (2 * ramp);
    if (std::abs(a) < 1e-12) return k / r0;
    return (-r0 + std::sqrt(r0 * r0 + 4 * a * k)) / (2 * a);
  }
};

Task<void> open_loop(const Options& options, Recorder& recorder) {
  spindle::http::ClientConfig config;
  config.max_idle_per_host = options.max_outstanding;
  config.request_timeout = std::chrono::milliseconds(options.timeout_ms);
  spindle::http::Client client{config};
  const Schedule schedule{options.rate, options.rate_end < 0 ? options.rate : options.rate_end, options.ramp};
  const double total_seconds = options.ramp + options.hold;
  const auto total = static_cast<std::size_t>(schedule.due_by(total_seconds));
  const auto start = Clock::now();
  std::size_t scheduled = 0;
  const auto limit = std::chrono::milliseconds(options.timeout_ms);
  while (scheduled < total) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const auto due = std::min(total, static_cast<std::size_t>(schedule.due_by(elapsed)));
    for (; scheduled < due; ++scheduled) {
      // When this request was due: the schedule, not the loop's lateness, is the reference.
      const double at = std::min(schedule.time_of(static_cast<double>(scheduled + 1)), total_seconds - 1e-9);
      const Clock::time_point when =
          start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
      const long second = static_cast<long>(at);
      if (recorder.outstanding >= options.max_outstanding) {
        ++recorder.seconds[second].not_sent;
        continue;
      }
      // Detached: the recorder counts what is outstanding, and each request ends within its limit.
      spindle::spawn(one_request(client, options.url, when, second, recorder, limit)).detach();
    }
    co_await spindle::sleep(1ms);
  }
  // The last requests get their time limit to finish.
  while (recorder.outstanding > 0) co_await spindle::sleep(10ms);
}

Task<void> closed_loop(const Options& options, Recorder& recorder) {
  spindle::http::ClientConfig config;
  config.max_idle_per_host = options.connections;
  config.request_timeout = std::chrono::milliseconds(options.timeout_ms);
  spindle::http::Client client{config};
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.duration));
  spindle::JoinSet<void> workers;
  for (std::size_t i = 0; i < options.connections; ++i)
    workers.spawn([](const spindle::http::Client& c, const Options& o, Recorder& r, Clock::time_point begin,
                     Clock::time_point finish) -> Task<void> {
      while (Clock::now() < finish) {
        const Clock::time_point sent = Clock::now();
        const long second = static_cast<long>(std::chrono::duration<double>(sent - begin).count());
        auto requesting = one_request(c, o.url, sent, second, r, std::chrono::milliseconds(o.timeout_ms));
        co_await std::move(requesting);
      }
    }(client, options, recorder, start, end));
  while (!workers.empty()) {
    auto next = co_await workers.join_next();
    (void)next;
  }
}

bool is_loopback_url(const std::string& url) { return url.rfind("http://127.", 0) == 0; }

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"HTTP load generator: open loop at a scheduled rate, or closed loop over N connections"};
  app.add_option("--url", options.url, "http://127.x.y.z:PORT/path")->required();
  app.add_option("--rate", options.rate, "open loop: requests per second at the start");
  app.add_option("--rate-end", options.rate_end, "open loop: requests per second after the ramp (default: --rate)");
  app.add_option("--ramp", options.ramp, "open loop: seconds of linear ramp from --rate to --rate-end");
  app.add_option("--hold", options.hold, "open loop: seconds at --rate-end after the ramp");
  app.add_option("--max-outstanding", options.max_outstanding, "requests in flight at most (each holds a socket)");
  app.add_option("--timeout-ms", options.timeout_ms, "a request not answered within this is an error");
  app.add_option("--connections", options.connections, "closed loop over this many connections");
  app.add_option("--duration", options.duration, "closed loop: seconds");
  CLI11_PARSE(app, argc, argv);
  if (!is_loopback_url(options.url)) {
    std::fprintf(stderr, "loadgen: only loopback targets (http://127.x.y.z:...)\n");
    return 2;
  }
  Recorder recorder;
  spindle::Runtime runtime;
  if (options.connections > 0)
    runtime.block_on(closed_loop(options, recorder));
  else
    runtime.block_on(open_loop(options, recorder));

  std::size_t sent = 0, ok = 0, errors = 0, not_sent = 0;
  std::vector<std::int64_t> all;
  for (auto& [second, slot] : recorder.seconds) {
    std::printf("second %ld sent %zu ok %zu errors %zu not_sent %zu p50_ms %.2f p99_ms %.2f max_ms %.2f\n", second,
                slot.sent, slot.ok, slot.errors, slot.not_sent, percentile_ms(slot.latencies_us, 0.50),
                percentile_ms(slot.latencies_us, 0.99), percentile_ms(slot.latencies_us, 1.0));
    sent += slot.sent;
    ok += slot.ok;
    errors += slot.errors;
    not_sent += slot.not_sent;
    all.insert(all.end(), slot.latencies_us.begin(), slot.latencies_us.end());
  }
  const double seconds = options.connections > 0 ? options.duration : options.ramp + options.hold;
  std::printf(
      "total sent %zu ok %zu errors %zu not_sent %zu rps %.0f p50_ms %.2f p99_ms %.2f p999_ms %.2f max_ms %.2f\n", sent,
      ok, errors, not_sent, static_cast<double>(ok) / seconds, percentile_ms(all, 0.50), percentile_ms(all, 0.99),
      percentile_ms(all, 0.999), percentile_ms(all, 1.0));
  for (const auto& [kind, count] : recorder.error_kinds) std::printf("error %s %zu\n", kind.c_str(), count);
  return 0;
}
