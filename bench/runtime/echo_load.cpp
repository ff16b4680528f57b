// A closed-loop TCP echo load generator on Spindle: N connections, each sending a message and waiting for
// it to come back before sending the next, for a fixed time. Prints one line:
//   connections=N seconds=S round_trips_per_s=R p50_us=.. p99_us=.. p999_us=.. errors=E
// Loopback only by design: it refuses addresses outside 127.0.0.0/8 and [::1].
//   echo_load --connect 127.0.0.1:7000 --connections 64 --duration 5

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"

using namespace std::chrono_literals;
using spindle::Task;

namespace {

struct Totals {
  std::vector<std::uint32_t> latencies_ns;  // one per round trip in the measured window
  long errors = 0;
};

Task<void> client(spindle::SocketAddr address, std::size_t message_size, spindle::Instant measure_from,
                  spindle::Instant stop_at, Totals& totals) {
  auto stream = co_await spindle::TcpStream::connect(address);
  if (!stream) {
    ++totals.errors;
    co_return;
  }
  std::vector<std::byte> message(message_size, std::byte{'e'});
  std::vector<std::byte> reply(message_size);
  while (spindle::now() < stop_at) {
    const auto sent_at = std::chrono::steady_clock::now();
    if (!co_await stream->write_all(message)) {
      ++totals.errors;
      co_return;
    }
    std::size_t got = 0;
    while (got < reply.size()) {
      auto n = co_await stream->read(std::span{reply}.subspan(got));
      if (!n || *n == 0) {
        ++totals.errors;
        co_return;
      }
      got += *n;
    }
    const auto done_at = std::chrono::steady_clock::now();
    if (done_at >= measure_from)
      totals.latencies_ns.push_back(static_cast<std::uint32_t>(
          std::min<long>(std::chrono::duration_cast<std::chrono::nanoseconds>(done_at - sent_at).count(), UINT32_MAX)));
  }
}

bool is_loopback(const spindle::SocketAddr& address) {
  const std::string text = address.to_string();
  return text.rfind("127.", 0) == 0 || text.rfind("[::1]:", 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"closed-loop TCP echo load generator (loopback only)"};
  std::string connect = "127.0.0.1:7000";
  int connections = 64;
  double duration = 5;
  double warmup = 1;
  std::size_t message_size = 64;
  app.add_option("--connect", connect, "echo server, HOST:PORT on loopback");
  app.add_option("--connections", connections, "concurrent connections")->check(CLI::Range(1, 15000));
  app.add_option("--duration", duration, "measured seconds")->check(CLI::Range(0.1, 600.0));
  app.add_option("--warmup", warmup, "seconds before measuring")->check(CLI::Range(0.0, 60.0));
  app.add_option("--message-size", message_size, "bytes per message")->check(CLI::Range(1, 1 << 20));
  CLI11_PARSE(app, argc, argv);

  auto address = spindle::SocketAddr::parse(connect);
  if (!address || !is_loopback(*address)) {
    std::fprintf(stderr, "--connect must be a loopback HOST:PORT\n");
    return 2;
  }
  spindle::Runtime runtime;
  Totals totals =
      runtime.block_on([](spindle::SocketAddr a, int n, double warm, double secs, std::size_t size) -> Task<Totals> {
        Totals t;
        const auto start = spindle::now();
        const auto measure_from =
            start + std::chrono::duration_cast<spindle::Duration>(std::chrono::duration<double>(warm));
        const auto stop_at =
            measure_from + std::chrono::duration_cast<spindle::Duration>(std::chrono::duration<double>(secs));
        std::vector<spindle::JoinHandle<void>> clients;
        for (int i = 0; i < n; ++i) clients.push_back(spindle::spawn(client(a, size, measure_from, stop_at, t)));
        for (auto& c : clients) (void)co_await std::move(c);
        co_return t;
      }(*address, connections, warmup, duration, message_size));

  auto& samples = totals.latencies_ns;
  std::sort(samples.begin(), samples.end());
  auto percentile = [&](double p) -> double {
    if (samples.empty()) return 0;
    return samples[std::min(samples.size() - 1, static_cast<std::size_t>(p * static_cast<double>(samples.size())))] /
           1000.0;
  };
  std::printf("connections=%d seconds=%.1f round_trips_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%ld\n",
              connections, duration, static_cast<double>(samples.size()) / duration, percentile(0.5), percentile(0.99),
              percentile(0.999), totals.errors);
  return totals.errors == 0 ? 0 : 1;
}
