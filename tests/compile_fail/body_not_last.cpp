// expect: only a handler's last parameter may consume the body
#include <spindle/http.hpp>

using namespace spindle;
using namespace spindle::http;

Task<std::string> handler(std::string body, Path<int> id) { co_return body + std::to_string(*id); }

int main() { Router<>{}.route("/users/{id}", post(handler)); }
