// Fuzzes the router's path tree against a naive router. The input is lines: the first byte says how
// many of them are patterns, the rest are paths. Oracles: the tree accepts exactly the patterns the naive
// router finds well formed and free of conflicts, and for every path (the input's, and each accepted
// pattern filled in) it picks the same route with the same captures, as views into the path.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "spindle/http/detail/path_tree.hpp"
#include "support/naive_path_router.hpp"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

using spindle_test::Captures;
using spindle_test::Matched;
namespace naive = spindle_test::naive;

// A path the route matches (parameters filled with `filler`), so that matches are common, not luck.
std::string fill_in(const naive::Route& route, std::string_view filler) {
  std::string path;
  for (const naive::Segment& segment : route.segments) {
    path += '/';
    if (segment.kind == naive::Kind::literal) {
      path += segment.text;
    } else {
      path += filler;
      if (segment.kind == naive::Kind::catch_all) path += "/x/";
    }
  }
  return path;
}

void check_path(const spindle::http::detail::PathTree& tree, const std::vector<naive::Route>& routes,
                std::string_view path, std::vector<spindle::http::detail::PathParam>& params) {
  const auto expected = naive::match(routes, path);
  const auto value = tree.match(path, params);
  check(value.has_value() == expected.has_value());
  if (!value) {
    check(params.empty());
    return;
  }
  check(*value == expected->value);
  check(params.size() == expected->params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    check(params[i].name == expected->params[i].first && params[i].value == expected->params[i].second);
    check(params[i].value.data() >= path.data() &&
          params[i].value.data() + params[i].value.size() <= path.data() + path.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t pattern_count = data[0] % 16;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string_view> lines;
  while (!input.empty() && lines.size() < 64) {
    const std::size_t end = std::min(input.find('\n'), input.size());
    lines.push_back(input.substr(0, end));
    input.remove_prefix(std::min(end + 1, input.size()));
  }

  spindle::http::detail::PathTree tree;
  std::vector<naive::Route> routes;
  std::vector<std::string> accepted;
  for (std::size_t i = 0; i < std::min(pattern_count, lines.size()); ++i) {
    const std::string_view pattern = lines[i];
    const auto segments = naive::parse(pattern);
    const bool should_accept = segments && std::none_of(routes.begin(), routes.end(), [&](const naive::Route& route) {
                                 return naive::conflicts(*segments, route.segments);
                               });
    const auto value = static_cast<std::uint32_t>(i);
    const auto added = tree.insert(pattern, value);
    check(added.has_value() == should_accept);
    if (added) {
      routes.push_back({*segments, value});
      accepted.emplace_back(pattern);
    } else {
      // The message names the refused pattern.
      check(added.error().find("`" + std::string(pattern) + "`") != std::string::npos);
    }
  }
  check(tree.patterns() == accepted);

  std::vector<spindle::http::detail::PathParam> params;
  for (std::size_t i = std::min(pattern_count, lines.size()); i < lines.size(); ++i) {
    check_path(tree, routes, lines[i], params);
  }
  // Each accepted pattern filled in, and the same path a byte shorter and a slash longer.
  const std::string_view fillers[] = {"v", lines.empty() ? std::string_view("w") : lines.back()};
  for (const naive::Route& route : routes) {
    for (const std::string_view filler : fillers) {
      const std::string filled = fill_in(route, filler);
      check_path(tree, routes, filled, params);
      check_path(tree, routes, std::string_view(filled).substr(0, filled.size() - 1), params);
      check_path(tree, routes, filled + "/", params);
    }
  }
  return 0;
}
