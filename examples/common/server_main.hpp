#pragma once
// What every example server shares: the command line (--listen HOST:PORT, --workers N, --scheduler) and
// the run loop (bind, announce "listening on HOST:PORT", serve until SIGINT or SIGTERM, exit 0).
//
// --workers N runs N worker threads, in one of two layouts (docs/architecture.md compares them):
//   --scheduler work-stealing  one multi_thread runtime: its workers share one reactor and one listener,
//                              and steal each other's tasks (Tokio's layout; the default);
//   --scheduler per-core       N current_thread runtimes, each with its own reactor and its own
//                              SO_REUSEPORT listener on the same port; the kernel spreads the connections
//                              and a connection never leaves its thread (the nginx/Seastar layout).

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "spindle/spindle.hpp"

namespace examples {

struct ServerArgs {
  spindle::SocketAddr listen;
  unsigned workers = 1;
  bool per_core = false;
};

/// The shared options; `more` adds an example's own (`app.add_flag("--compression", flag, "...")`).
inline ServerArgs parse_server_args(int argc, char** argv, const std::string& description,
                                    const std::function<void(CLI::App&)>& more = {}) {
  CLI::App app{description};
  if (more) more(app);
  std::string listen = "127.0.0.1:8080";
  unsigned workers = 1;
  std::string scheduler = "work-stealing";
  app.add_option("--listen", listen, "address to listen on, HOST:PORT (port 0 picks a free one)");
  app.add_option("--workers", workers, "worker threads")->check(CLI::Range(1u, 1024u));
  app.add_option("--scheduler", scheduler, "work-stealing (one shared runtime) or per-core (a runtime per thread)")
      ->check(CLI::IsMember({"work-stealing", "per-core"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  auto address = spindle::SocketAddr::parse(listen);
  if (!address) {
    std::fprintf(stderr, "--listen: %s\n", address.error().c_str());
    std::exit(2);
  }
  return ServerArgs{*address, workers, scheduler == "per-core"};
}

/// Serves on a listener until the token is cancelled, then finishes (gracefully, if it can) and returns.
using ServeFn = std::function<spindle::Task<void>(spindle::TcpListener, spindle::CancellationToken)>;

/// How long a server may take to finish after SIGTERM before it is cut short.
inline constexpr std::chrono::seconds kStopDeadline{15};

/// Serves until a signal arrives (exit status 0) or `serve` returns by itself (exit status 1).
inline spindle::Task<int> run_worker(spindle::TcpListener listener, spindle::SignalListener& signals, ServeFn serve) {
  spindle::CancellationToken stop;
  auto serving = spindle::spawn(serve(std::move(listener), stop));
  bool signalled = false;
  auto stopper = spindle::spawn([](spindle::SignalListener& s, spindle::CancellationToken token,
                                   spindle::JoinHandle<void>& target, bool& flag) -> spindle::Task<void> {
    co_await s.recv();
    flag = true;
    token.cancel();
    co_await spindle::sleep(kStopDeadline);
    target.abort();  // the graceful stop took too long
  }(signals, stop, serving, signalled));
  (void)co_await std::move(serving);
  stopper.abort();
  co_return signalled ? 0 : 1;
}

inline int run_server(const ServerArgs& args, ServeFn serve) {
  std::vector<spindle::TcpListener> listeners;
  spindle::SocketAddr address = args.listen;
  const unsigned runtimes = args.per_core ? args.workers : 1;
  for (unsigned i = 0; i < runtimes; ++i) {
    auto listener = spindle::TcpListener::bind(address, {.backlog = 4096, .reuse_address = true, .reuse_port = true});
    if (!listener) {
      std::fprintf(stderr, "cannot listen on %s: %s\n", address.to_string().c_str(),
                   listener.error().message().c_str());
      return 1;
    }
    address = *listener->local_addr();  // port 0: the others join the port the first one got
    listeners.push_back(std::move(*listener));
  }
  // Handlers go in before the announcement: a SIGTERM right after it must stop us cleanly.
  std::vector<spindle::SignalListener> signals;
  for (unsigned i = 0; i < runtimes; ++i) signals.emplace_back(spindle::SignalListener{SIGINT, SIGTERM});
  std::printf("listening on %s\n", address.to_string().c_str());
  std::fflush(stdout);

  if (!args.per_core) {
    spindle::Runtime runtime = spindle::Runtime::multi_thread().worker_threads(args.workers).build();
    return runtime.block_on(run_worker(std::move(listeners[0]), signals[0], serve));
  }
  std::vector<int> status(runtimes, 0);
  auto work = [&](unsigned i) {
    spindle::Runtime runtime;
    status[i] = runtime.block_on(run_worker(std::move(listeners[i]), signals[i], serve));
  };
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < runtimes; ++i) threads.emplace_back(work, i);
  work(0);
  for (auto& thread : threads) thread.join();
  for (int s : status)
    if (s != 0) return s;
  return 0;
}

}  // namespace examples
