// The HTTP hello-world service the benchmarks use:
//   GET /plaintext  Hello, World! (text/plain)
//   GET /json       {"message":"Hello, World!"}, serialized per request from a described struct
//   GET /delay      200 after a 50 ms wait (a stand-in for a database call: the thread serves others)
//   POST /echo      the request body
//
//   hello --listen 127.0.0.1:8080 --workers 2
#include <spindle/http.hpp>
#include <spindle/spindle.hpp>

#include <algorithm>
#include <charconv>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;

Response plaintext(Request) { return Response::text("Hello, World!"); }

struct Message {
  std::string message;
};
BOOST_DESCRIBE_STRUCT(Message, (), (message))

Json<Message> hello_json() { return Json{Message{"Hello, World!"}}; }

// /delay?ms=N waits N ms instead (up to 60 s): the memory benchmark holds 10,000 requests in flight.
Task<Response> delay(Request request) {
  int ms = 50;
  if (request.query().starts_with("ms=")) {
    const std::string_view digits = request.query().substr(3);
    std::from_chars(digits.data(), digits.data() + digits.size(), ms);
    ms = std::clamp(ms, 0, 60'000);
  }
  co_await sleep(std::chrono::milliseconds(ms));
  co_return Response::text("waited " + std::to_string(ms) + " ms");
}

Task<Response> echo(Request request) {
  auto body = co_await request.body().collect();
  if (!body) co_return Response::error(body.error().status, body.error().message);
  Response response{Status::ok, {}, Body{std::move(*body)}};
  response.headers.set("content-type", request.header("content-type").value_or("application/octet-stream"));
  co_return response;
}

int main(int argc, char** argv) {
  const examples::ServerArgs args = examples::parse_server_args(argc, argv, "HTTP hello-world server");
  Server server{Router<>{}
                    .route("/plaintext", get(plaintext))
                    .route("/json", get(hello_json))
                    .route("/delay", get(delay))
                    .route("/echo", post(echo))};
  return examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
