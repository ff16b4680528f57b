// expect: the handler's result cannot become a response
#include <spindle/http.hpp>

#include <vector>

using namespace spindle::http;

std::vector<int> handler(Path<int> id) { return {*id}; }

int main() { Router<>{}.route("/users/{id}", get(handler)); }
