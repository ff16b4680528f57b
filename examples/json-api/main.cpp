// A JSON CRUD API over an in-memory map (routes and validation in todos.hpp).
//
//   json-api --listen 127.0.0.1:8080 --workers 2
//   curl -X POST localhost:8080/todos -H 'content-type: application/json' -d '{"title":"write docs"}'
#include "server_main.hpp"
#include "todos.hpp"

int main(int argc, char** argv) {
  const examples::ServerArgs args = examples::parse_server_args(argc, argv, "JSON CRUD API example");
  spindle::http::Server server{todos::app()};
  return examples::run_server(args, [&server](spindle::TcpListener listener, spindle::CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
