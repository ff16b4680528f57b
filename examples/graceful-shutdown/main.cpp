// Graceful shutdown, spelled out: on SIGTERM or SIGINT the server stops accepting, closes idle
// connections, lets requests in flight finish (their responses carry Connection: close) for up to the
// grace period, then closes what is left, and the process exits 0.
//
//   graceful-shutdown --listen 127.0.0.1:8080
//   curl 'localhost:8080/work?ms=3000' &  kill -TERM <pid>   # the request still gets its answer
#include <spindle/http.hpp>
#include <spindle/spindle.hpp>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdio>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;

struct Work {
  std::optional<int> ms;
};
BOOST_DESCRIBE_STRUCT(Work, (), (ms))

Task<std::string> work(Query<Work> query) {
  const int ms = std::clamp(query->ms.value_or(1000), 0, 60'000);
  co_await sleep(std::chrono::milliseconds(ms));
  co_return "worked " + std::to_string(ms) + " ms\n";
}

Task<int> serve_until_signalled(TcpListener listener, SignalListener& signals, Server& server) {
  JoinHandle<void> serving = spawn(server.serve(std::move(listener)));
  const int signal = co_await signals.recv();
  std::fprintf(stderr, "signal %d: draining, in-flight requests get up to 10 s\n", signal);
  server.shutdown(10s);
  Result<void, JoinError> served = co_await std::move(serving);  // returns once the drain is over
  std::fprintf(stderr, "stopped\n");
  co_return served ? 0 : 1;
}

int main(int argc, char** argv) {
  const examples::ServerArgs args = examples::parse_server_args(argc, argv, "Graceful shutdown example");
  auto listener = TcpListener::bind(args.listen);
  if (!listener) {
    std::fprintf(stderr, "cannot listen on %s: %s\n", args.listen.to_string().c_str(),
                 listener.error().message().c_str());
    return 1;
  }
  // Signal handlers before the announcement: a SIGTERM right after it must already be ours.
  SignalListener signals{SIGINT, SIGTERM};
  std::printf("listening on %s\n", listener->local_addr()->to_string().c_str());
  std::fflush(stdout);
  Server server{Router<>{}.route("/work", get(work)).route("/", get([] { return std::string{"hello\n"}; }))};
  Runtime runtime = Runtime::multi_thread().worker_threads(args.workers).build();
  return runtime.block_on(serve_until_signalled(std::move(*listener), signals, server));
}
