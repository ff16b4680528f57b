// expect: a handler parameter is not an extractor
#include <spindle/http.hpp>

using namespace spindle::http;

std::string handler(Path<int> id, int page) { return std::to_string(*id + page); }

int main() { Router<>{}.route("/users/{id}", get(handler)); }
