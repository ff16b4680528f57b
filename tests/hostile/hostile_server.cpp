// The server the hostile-client tests attack (tests/hostile/): every surface a client can reach through
// the public API, with limits small enough to reach quickly.
//   GET  /plaintext   Hello, World!
//   POST /echo        the body back (at most --max-body bytes: 413 beyond)
//   POST /json        reads a Json<Document> (nested objects and arrays), answers its node count
//   GET  /delay       200 after 50 ms
//   GET  /ws          WebSocket echo, permessage-deflate offered, messages of at most 1 MiB
//   GET  /throw       a handler that throws after waiting (500, for tests/faults/)
//   GET  /stuck       a handler that never finishes, under a 1 s timeout layer (504)
// On exit it prints "answered N" on stderr: the responses its handlers produced, which a test compares
// with the responses its clients read whole (none lost across a SIGTERM).
//
//   hostile_server --listen 127.0.0.1:0 --workers 1 [--header-timeout-ms N] [--max-body N]
#include <spindle/http.hpp>
#include <spindle/spindle.hpp>
#include <spindle/ws.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;

namespace {

struct Node {
  std::string name;
  std::vector<Node> children;
  std::map<std::string, std::int64_t> values;
  std::optional<std::vector<double>> weights;
};
BOOST_DESCRIBE_STRUCT(Node, (), (name, children, values, weights))

std::size_t count_nodes(const Node& node) {
  std::size_t count = 1;
  for (const Node& child : node.children) count += count_nodes(child);
  return count;
}

std::atomic<long> answered{0};

Task<Response> count_answers(Request request, Next next) {
  Response response = co_await next.run(std::move(request));
  answered.fetch_add(1, std::memory_order_relaxed);
  co_return response;
}

Router<> hostile_routes() {
  ws::Config socket_config;
  socket_config.max_message_size = 1024 * 1024;
  socket_config.compression = ws::DeflateConfig{};
  Router<> router;
  router.route("/plaintext", get([] { return Response::text("Hello, World!"); }));
  router.route("/echo", post([](Request request) -> Task<Response> {
                 auto body = co_await request.body().collect();
                 if (!body) co_return Response::error(body.error().status, body.error().message);
                 co_return Response{Status::ok, {}, Body{std::move(*body)}};
               }));
  router.route("/json", post([](Json<Node> document) {
                 return Response::text(std::to_string(count_nodes(*document)) + " nodes");
               }));
  router.route("/delay", get([]() -> Task<Response> {
                 co_await sleep(50ms);
                 co_return Response::text("waited");
               }));
  router.route("/throw", get([]() -> Task<Response> {
                 co_await sleep(10ms);
                 throw std::runtime_error("a handler bug");
               }));
  router.route("/stuck", get([]() -> Task<Response> {
                           co_await sleep(std::chrono::hours(1));
                           co_return Response::text("never");
                         }).layer(middleware::timeout(1s)));
  router.route("/ws", get([socket_config](ws::WebSocketUpgrade upgrade) {
                 return upgrade.config(socket_config).on_upgrade([](ws::WebSocket socket) -> Task<void> {
                   for (;;) {
                     auto message = co_await socket.recv();
                     if (!message || message->is_close()) co_return;
                     if (!message->is_text() && !message->is_binary()) continue;
                     auto sending = socket.send(std::move(*message));  // GCC 12: a named local, then co_await
                     auto sent = co_await std::move(sending);
                     if (!sent) co_return;
                   }
                 });
               }));
  router.layer(from_fn(count_answers));
  return router;
}

}  // namespace

int main(int argc, char** argv) {
  unsigned header_timeout_ms = 2000;
  std::size_t max_body = 1024 * 1024;
  const examples::ServerArgs args =
      examples::parse_server_args(argc, argv, "target of the hostile-client tests", [&](CLI::App& app) {
        app.add_option("--header-timeout-ms", header_timeout_ms, "a request head must arrive within this");
        app.add_option("--max-body", max_body, "request bodies larger than this get 413");
      });
  ServerConfig config;
  config.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  config.max_body = max_body;
  Server server{hostile_routes(), config};
  const int status = examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
  std::fprintf(stderr, "answered %ld\n", answered.load());
  return status;
}
