// expect: a handler that returns a Task must take its spindle::http::Request by value
#include <spindle/http.hpp>

using namespace spindle;
using namespace spindle::http;

Task<Response> handler(const Request& request) { co_return Response::text(std::string{request.path()}); }

int main() { Router<>{}.route("/", get(handler)); }
