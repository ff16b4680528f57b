// expect: Query<T> takes a struct declared with BOOST_DESCRIBE_STRUCT
#include <spindle/http.hpp>

using namespace spindle::http;

std::string handler(Query<int> page) { return std::to_string(*page); }

int main() { Router<>{}.route("/users", get(handler)); }
