// A production-style middleware stack, and a middleware of one's own.
//
//   middleware --listen 127.0.0.1:8080
//   curl -i localhost:8080/report --compressed        gzip/br, x-request-id, one JSON log line on stderr
//   curl -i localhost:8080/admin/stats                401 without `x-api-key: let-me-in`
//   curl -i 'localhost:8080/slow?ms=5000'             504 after 2 s
#include <spindle/http.hpp>
#include <spindle/spindle.hpp>

#include <algorithm>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;

/// Who called, attached by require_api_key and read by handlers with Extension<Caller>.
struct Caller {
  std::string name;
};

/// A middleware of one's own: refuses requests without the key, tells the handler who called.
Task<Response> require_api_key(Request request, Next next) {
  if (request.header("x-api-key") != "let-me-in")
    co_return Response::error(Status::unauthorized, "missing or wrong x-api-key");
  request.extensions().insert(Caller{"operator"});
  Response response = co_await next.run(std::move(request));
  co_return response;
}

struct Slow {
  std::optional<int> ms;
};
BOOST_DESCRIBE_STRUCT(Slow, (), (ms))

Task<std::string> slow(Query<Slow> query) {
  co_await sleep(std::chrono::milliseconds(std::clamp(query->ms.value_or(100), 0, 60'000)));
  co_return std::string{"done\n"};
}

std::string report() {
  std::string text = "request " + std::string{middleware::current_request_id()} + "\n";
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + ": all systems nominal\n";
  return text;
}

Router<> app() {
  auto admin = Router<>{}
                   .route("/stats", get([](Extension<Caller> caller) { return "stats for " + caller->name + "\n"; }))
                   .route_layer(from_fn(require_api_key));  // unknown admin paths still get their 404
  middleware::CorsOptions cors;
  cors.allowed_origins = {"http://localhost:3000"};
  return Router<>{}
      .route("/report", get(report))
      .route("/slow", get(slow))
      .route("/panic", get([]() -> std::string { throw std::runtime_error("a bug"); }))
      .nest("/admin", admin)
      .layer(middleware::timeout(2s))
      .layer(middleware::catch_panic())  // inside cors: a rendered 500 still gets CORS headers
      .layer(middleware::concurrency_limit(1000))
      .layer(middleware::body_limit(64 * 1024))  // outside the limit: a refused body takes no place
      .layer(middleware::compression())
      .layer(middleware::cors(cors))
      .layer(middleware::access_log())
      .layer(middleware::request_id());  // outermost: every layer and log line has the id
}

int main(int argc, char** argv) {
  const examples::ServerArgs args = examples::parse_server_args(argc, argv, "Middleware example");
  Server server{app()};
  return examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
