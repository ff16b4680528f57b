// users-server: the seed's users API as a finished service. See app.hpp for the routes, config.hpp for
// the configuration (users-server --help), docs/users-service.md for a tour.
//
//   users-server --listen 127.0.0.1:8080                                  # SQLite, ./users.db
//   DATABASE_URL=postgres://app:secret@127.0.0.1:5432/app users-server --workers 2
#include <spindle/spindle.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "app.hpp"
#include "backend.hpp"
#include "config.hpp"
#include "log.hpp"
#include "server_main.hpp"

using namespace spindle;

namespace {

/// libpq's messages span lines ("...failed: Connection refused\n\tIs the server running..."); a
/// start-up failure is one line.
std::string one_line(std::string text) {
  std::string line;
  for (char c : text) {
    if (c == '\n' || c == '\t') {
      if (!line.empty() && line.back() != ' ') line += ' ';
    } else {
      line += c;
    }
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

/// Opens the database, then listens, announces, and serves until SIGTERM or SIGINT; the exit status.
Task<int> run(users::Config config, Runtime& runtime, SignalListener& signals) {
  // The port first: "port in use" is the most common mistake and costs nothing to find.
  auto listener = TcpListener::bind(config.listen, {.backlog = 4096, .reuse_address = true});
  if (!listener) {
    std::fprintf(stderr, "users-server: cannot listen on %s: %s\n", config.listen.to_string().c_str(),
                 listener.error().message().c_str());
    co_return 1;
  }
  auto opening = users::open_backend(config);
  Result<users::Backend, std::string> backend = co_await std::move(opening);
  if (!backend) {
    std::fprintf(stderr, "users-server: %s\n", one_line(backend.error()).c_str());
    co_return 1;
  }
  JoinHandle<void> events = spawn(backend->events->run());

  users::App app;
  app.store = backend->store;
  app.events = backend->events;
  app.access_log = users::log_enabled(users::LogLevel::info);
  // The router owns the App and the server owns the router, so /metrics finds the server through a slot
  // filled once it exists; the server and the runtime outlive every request.
  auto server_slot = std::make_shared<std::atomic<const http::Server*>>(nullptr);
  app.process_metrics = [server_slot, &runtime](std::string& out) {
    if (const http::Server* server = server_slot->load(std::memory_order_acquire))
      http::prometheus::write_gauge(out, "spindle_open_connections", "HTTP connections open (WebSockets included)",
                                    static_cast<double>(server->stats().open_connections));
    const RuntimeMetrics metrics = runtime.metrics();
    http::prometheus::write_gauge(out, "spindle_live_tasks", "tasks spawned and not finished",
                                  static_cast<double>(metrics.live_tasks));
    http::prometheus::write_gauge(out, "spindle_worker_threads", "threads running tasks",
                                  static_cast<double>(metrics.workers));
    http::prometheus::write_gauge(out, "spindle_blocking_threads", "threads of the blocking pool",
                                  static_cast<double>(metrics.blocking_threads));
  };
  http::Server server{users::routes(std::move(app))};
  server_slot->store(&server, std::memory_order_release);

  const std::string address = listener->local_addr()->to_string();
  std::printf("listening on %s\n", address.c_str());
  std::fflush(stdout);
  users::log(users::LogLevel::info, "serving http://" + address + "/ with " + config.database.display);
  auto serving = examples::run_worker(std::move(*listener), signals, [&server](TcpListener l, CancellationToken stop) {
    return server.serve(std::move(l), std::move(stop));
  });
  const int status = co_await std::move(serving);
  server_slot->store(nullptr, std::memory_order_release);
  events.abort();
  (void)co_await std::move(events);  // gone before the feed it writes to is destroyed
  users::log(users::LogLevel::info, "stopped");
  co_return status;
}

}  // namespace

int main(int argc, char** argv) {
  const users::Config config = users::parse_config(argc, argv);
  users::set_log_level(config.log_level);
  // Before any thread starts: the signals must be ours, not the default action, from the beginning.
  SignalListener signals{SIGINT, SIGTERM};
  Runtime runtime = Runtime::multi_thread().worker_threads(config.workers).build();
  return runtime.block_on(run(config, runtime, signals));
}
