// The JSON extractor's conversion: any bytes through json::from_string into described structs (nested,
// enums, vectors, maps, optionals). It must never crash or recurse without bound, must explain every
// failure, and what it accepts must be readable again after json::to_string.

#include <boost/describe.hpp>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/json.hpp"

namespace {

enum class Kind { alpha, beta, gamma };
BOOST_DESCRIBE_ENUM(Kind, alpha, beta, gamma)

struct Leaf {
  std::string name;
  std::optional<std::int32_t> count;
  std::vector<double> weights;
};
BOOST_DESCRIBE_STRUCT(Leaf, (), (name, count, weights))

struct Tree {
  Kind kind = Kind::alpha;
  std::uint16_t small = 0;
  bool flag = false;
  std::vector<Leaf> leaves;
  std::map<std::string, std::optional<Leaf>> named;
  std::optional<std::vector<std::vector<std::int64_t>>> grid;
};
BOOST_DESCRIBE_STRUCT(Tree, (), (kind, small, flag, leaves, named, grid))

template <class T>
void check(std::string_view text) {
  auto read = spindle::json::from_string<T>(text);
  if (!read) {
    const auto& error = read.error();
    if (error.message.empty()) std::abort();
    if (error.kind == spindle::json::Error::Kind::syntax && !error.path.empty()) std::abort();
    return;
  }
  const std::string written = spindle::json::to_string(*read);
  auto again = spindle::json::from_string<T>(written);
  if (!again) std::abort();  // what we write, we must read back
  // Not compared byte for byte: Boost.JSON 1.81 reads doubles to within an ulp, not correctly rounded
  // (9111111111111110111111 comes back as 9.111111111111109E21, then ...108E21), and has no option for
  // exact parsing before 1.83.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text{reinterpret_cast<const char*>(data), size};
  check<Tree>(text);
  check<std::vector<Leaf>>(text);
  check<boost::json::value>(text);
  return 0;
}
