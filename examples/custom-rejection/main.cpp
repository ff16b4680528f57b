// Replacing how rejections look: every extractor's rejection rendered as RFC 9457 problem details in one
// place (Router::on_rejection), and one handler that decides for itself with Result<X, Rejection>.
//
//   custom-rejection --listen 127.0.0.1:8080
//   curl -i localhost:8080/items -H 'content-type: application/json' -d '{"name": 5}'
//     422 application/problem+json {"type":"about:blank","title":"Unprocessable Content","status":422,
//                                   "detail":"must be a string","pointer":"name"}
#include <spindle/http.hpp>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;

struct Item {
  std::string name;
  int price = 0;
};
BOOST_DESCRIBE_STRUCT(Item, (), (name, price))

struct Problem {
  std::string type = "about:blank";
  std::string title;
  int status = 0;
  std::string detail;
  std::optional<std::string> pointer;
};
BOOST_DESCRIBE_STRUCT(Problem, (), (type, title, status, detail, pointer))

Response problem(const Rejection& rejection) {
  Problem body{"about:blank", std::string{reason_phrase(rejection.status)}, static_cast<int>(rejection.status),
               rejection.message, rejection.field.empty() ? std::nullopt : std::optional{rejection.field}};
  Response response = Response::json(json::to_string(body), rejection.status);
  response.headers.set("content-type", "application/problem+json");
  return response;
}

std::pair<Status, Json<Item>> create(Json<Item> item) { return {Status::created, std::move(item)}; }

// This handler takes the rejection itself: a body that is not an Item is stored as a draft instead.
std::string draft(Result<Json<Item>, Rejection> item) {
  if (item) return "stored " + (*item)->name;
  return "kept as a draft (" + item.error().message + ")";
}

int main(int argc, char** argv) {
  const examples::ServerArgs args = examples::parse_server_args(argc, argv, "Custom rejection example");
  Server server{Router<>{}
                    .route("/items", post(create))
                    .route("/drafts", post(draft))
                    .route("/items/{id}", get([](Path<int> id) { return std::to_string(*id); }))
                    .on_rejection(problem)};
  return examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
