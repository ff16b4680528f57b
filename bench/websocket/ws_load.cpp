// WebSocket load: holds N client sockets open on a chat server (examples/chat), each pinging on its own
// schedule, and measures how long the server's broadcasts take to reach them. Used by
// bench/websocket/run.sh; one process holds at most what its open-file limit allows (20,000 here), so the
// 50,000 run uses several, each from its own source address (--local 127.0.0.2, ...): one source address
// has about 28,000 ephemeral ports towards one server port.
//
//   ws_load --url ws://127.0.0.1:9000/ws --connections 10000 --local 127.0.0.2 --hold 20
//           --broadcasts 20 --latency-file /tmp/latencies
//
// Prints "connected N failed F" once every socket is open (or failed), then, at the end, one line per
// measurement. With --broadcasts K it also sends K messages "b SEQ NANOSECONDS" through one more socket,
// one every --broadcast-interval ms, and every socket records (arrival - NANOSECONDS). Loopback only: it
// refuses URLs outside 127.0.0.0/8.

#include <sys/resource.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "spindle/spindle.hpp"
#include "spindle/ws/client.hpp"

using namespace std::chrono_literals;
using spindle::Task;

namespace {

struct Options {
  std::string url;
  std::size_t connections = 1000;
  std::vector<std::string> local_addresses;
  unsigned ping_interval = 10;  // seconds
  unsigned hold = 20;           // seconds after every socket is open
  unsigned broadcasts = 0;
  unsigned broadcast_interval_ms = 500;
  unsigned settle_ms = 2000;  // before the first broadcast
  std::size_t payload = 0;    // bytes of padding after "b SEQ NANOSECONDS " (compressible text)
  bool compression = false;
  std::size_t connecting_at_once = 256;
  std::string latency_file;
};

struct Totals {
  std::size_t connected = 0;
  std::size_t failed = 0;
  std::size_t closed_early = 0;
  std::size_t attempted = 0;
  std::vector<std::int64_t> latencies_ns;
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

spindle::ws::ConnectOptions connect_options(const Options& options, std::size_t index) {
  spindle::ws::ConnectOptions connect;
  connect.config.ping_interval = std::chrono::seconds(options.ping_interval);
  connect.config.ping_timeout = 30s;
  if (options.compression) connect.config.compression = spindle::ws::DeflateConfig{};
  connect.http.connect_timeout = 30s;
  connect.http.request_timeout = 30s;
  if (!options.local_addresses.empty()) {
    const std::string& local = options.local_addresses[index % options.local_addresses.size()];
    connect.http.local_address = *spindle::SocketAddr::parse(local + ":0");
  }
  return connect;
}

/// One held socket: records the broadcasts' latencies until it is aborted or the server closes it.
Task<void> hold(spindle::ws::WebSocket socket, Totals& totals) {
  for (;;) {
    auto message = co_await socket.recv();
    if (!message) {
      ++totals.closed_early;
      co_return;
    }
    const std::string_view text = message->data();
    if (message->is_text() && text.starts_with("b ")) {
      const std::int64_t arrived = now_ns();
      const std::size_t space = text.find(' ', 2);
      std::int64_t sent = 0;
      const std::size_t end = text.find(' ', space + 1);
      std::from_chars(text.data() + space + 1, text.data() + std::min(end, text.size()), sent);
      totals.latencies_ns.push_back(arrived - sent);
    }
  }
}

Task<void> open_one(const Options& options, std::size_t index, Totals& totals, spindle::Semaphore& slots,
                    spindle::JoinSet<void>& held) {
  auto permit = co_await slots.acquire();
  auto connecting = spindle::ws::connect(options.url, connect_options(options, index));
  auto socket = co_await std::move(connecting);
  ++totals.attempted;
  if (!socket) {
    if (totals.failed++ < 5) std::fprintf(stderr, "ws_load: %s\n", socket.error().message.c_str());
    co_return;
  }
  ++totals.connected;
  held.spawn(hold(std::move(*socket), totals));
}

Task<void> broadcast(const Options& options) {
  auto connecting = spindle::ws::connect(options.url, connect_options(options, options.connections));
  auto socket = co_await std::move(connecting);
  if (!socket) {
    std::fprintf(stderr, "ws_load: the broadcasting socket: %s\n", socket.error().message.c_str());
    co_return;
  }
  co_await spindle::sleep(std::chrono::milliseconds(options.settle_ms));
  for (unsigned seq = 0; seq < options.broadcasts; ++seq) {
    std::string text = "b " + std::to_string(seq) + " " + std::to_string(now_ns()) + " ";
    while (text.size() < options.payload) text += "{\"user\":\"spindle\",\"text\":\"hello, room\"} ";
    auto sending = socket->send(spindle::ws::Message::text(std::move(text)));
    auto sent = co_await std::move(sending);
    if (!sent) break;
    co_await spindle::sleep(std::chrono::milliseconds(options.broadcast_interval_ms));
  }
  auto closing = socket->close();
  (void)co_await std::move(closing);
}

double percentile_ms(std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const std::size_t at = std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())));
  return static_cast<double>(sorted[at]) / 1e6;
}

Task<int> run(Options options) {
  Totals totals;
  totals.latencies_ns.reserve(options.connections * std::max(1u, options.broadcasts));
  spindle::Semaphore slots{options.connecting_at_once};
  spindle::JoinSet<void> held;
  {
    spindle::JoinSet<void> opening;
    for (std::size_t i = 0; i < options.connections; ++i) opening.spawn(open_one(options, i, totals, slots, held));
    for (;;) {
      auto finished = co_await opening.join_next();
      if (!finished) break;
    }
  }
  std::printf("connected %zu failed %zu\n", totals.connected, totals.failed);
  std::fflush(stdout);
  auto sending = spindle::spawn(options.broadcasts > 0 ? broadcast(options) : []() -> Task<void> { co_return; }());
  co_await spindle::sleep(std::chrono::seconds(options.hold));
  (void)co_await std::move(sending);
  held.abort_all();  // the sockets just close: the server sees them go
  for (;;) {
    auto finished = co_await held.join_next();
    if (!finished) break;
  }

  std::vector<std::int64_t>& latencies = totals.latencies_ns;
  std::sort(latencies.begin(), latencies.end());
  std::printf("received %zu closed_early %zu p50_ms %.2f p99_ms %.2f max_ms %.2f\n", latencies.size(),
              totals.closed_early, percentile_ms(latencies, 0.50), percentile_ms(latencies, 0.99),
              latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1e6);
  if (!options.latency_file.empty()) {
    std::ofstream out{options.latency_file};
    for (std::int64_t ns : latencies) out << ns << '\n';
  }
  co_return totals.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WebSocket load: hold connections open, measure broadcast latency"};
  Options options;
  app.add_option("--url", options.url, "ws://127.x.x.x:PORT/PATH")->required();
  app.add_option("--connections", options.connections, "sockets to hold");
  app.add_option("--local", options.local_addresses, "source addresses, used in turn (127.0.0.2 ...)");
  app.add_option("--ping-interval", options.ping_interval, "seconds of silence before each socket pings");
  app.add_option("--hold", options.hold, "seconds to hold the sockets once all are open");
  app.add_option("--broadcasts", options.broadcasts, "messages to broadcast through one more socket");
  app.add_option("--broadcast-interval", options.broadcast_interval_ms, "ms between broadcasts");
  app.add_option("--settle", options.settle_ms, "ms to wait before the first broadcast");
  app.add_option("--payload", options.payload, "size of each broadcast message (compressible text)");
  app.add_flag("--compression", options.compression, "offer permessage-deflate");
  app.add_option("--latency-file", options.latency_file, "write every latency (ns), one per line");
  CLI11_PARSE(app, argc, argv);
  if (!options.url.starts_with("ws://127.")) {
    std::fprintf(stderr, "ws_load: loopback only (ws://127.x.x.x:PORT/...)\n");
    return 2;
  }
  // Up to the hard limit of open files: each socket is one.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  spindle::Runtime runtime;
  return runtime.block_on(run(std::move(options)));
}
