// expect: spindle::json cannot read this type: declare it with BOOST_DESCRIBE_STRUCT
#include <spindle/http.hpp>

using namespace spindle::http;

struct NewUser {  // no BOOST_DESCRIBE_STRUCT
  std::string name;
};

std::string handler(Json<NewUser> user) { return user->name; }

int main() { Router<>{}.route("/users", post(handler)); }
