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

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

using Captures = std::vector<std::pair<std::string, std::string>>;

struct Matched {
  std::uint32_t value;
  Captures params;
};

// A deliberately naive router to check the tree against: patterns are split into segments, a path is
// compared with every route segment by segment, and of the routes that match, the one whose segments
// rank lowest (static 0, parameter 1, catch-all 2, compared in order) wins. The same code is in
// tests/http_path_tree_test.cpp.
namespace naive {

enum class Kind { literal, param, catch_all };
struct Segment {
  Kind kind;
  std::string text;  // literal: the bytes, braces unescaped; param, catch_all: the name
};
struct Route {
  std::vector<Segment> segments;
  std::uint32_t value;
};

bool is_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::optional<std::vector<Segment>> parse(std::string_view pattern) {
  if (pattern.empty() || pattern[0] != '/') return std::nullopt;
  std::vector<Segment> segments;
  std::vector<std::string> names;
  std::size_t start = 1;
  while (true) {
    const std::size_t end = std::min(pattern.find('/', start), pattern.size());
    const std::string_view raw = pattern.substr(start, end - start);
    const bool last = end == pattern.size();
    if (!raw.empty() && raw[0] == '{' && !(raw.size() > 1 && raw[1] == '{')) {
      if (raw.size() < 2 || raw.back() != '}') return std::nullopt;
      std::string_view name = raw.substr(1, raw.size() - 2);
      const bool catch_all = !name.empty() && name[0] == '*';
      if (catch_all) name.remove_prefix(1);
      if (!is_name(name) || (catch_all && !last)) return std::nullopt;
      if (std::find(names.begin(), names.end(), name) != names.end()) return std::nullopt;
      names.emplace_back(name);
      segments.push_back({catch_all ? Kind::catch_all : Kind::param, std::string(name)});
    } else {
      std::string text;
      for (std::size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '{' || raw[i] == '}') {
          if (i + 1 == raw.size() || raw[i + 1] != raw[i]) return std::nullopt;
          ++i;
        }
        text += raw[i];
      }
      segments.push_back({Kind::literal, std::move(text)});
    }
    if (last) return segments;
    start = end + 1;
  }
}

// Whether the tree must refuse `added` next to `existing`: the same route, or routes that agree up to a
// segment where both have a parameter (or both a catch-all) under different names.
bool conflicts(const std::vector<Segment>& added, const std::vector<Segment>& existing) {
  for (std::size_t i = 0; i < std::min(added.size(), existing.size()); ++i) {
    if (added[i].kind != existing[i].kind) return false;
    if (added[i].text != existing[i].text) return added[i].kind != Kind::literal;
  }
  return added.size() == existing.size();
}

std::optional<Matched> match(const std::vector<Route>& routes, std::string_view path) {
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::vector<std::size_t> segment_starts;
  std::vector<std::string_view> path_segments;
  for (std::size_t start = 1;;) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    segment_starts.push_back(start);
    path_segments.push_back(path.substr(start, end - start));
    if (end == path.size()) break;
    start = end + 1;
  }
  std::optional<Matched> best;
  std::vector<int> best_rank;
  for (const Route& route : routes) {
    std::vector<int> rank;
    Captures params;
    bool matches = true;
    bool caught_rest = false;
    for (std::size_t i = 0; i < route.segments.size() && matches; ++i) {
      const Segment& segment = route.segments[i];
      if (i >= path_segments.size()) {
        matches = false;
      } else if (segment.kind == Kind::literal) {
        matches = path_segments[i] == segment.text;
        rank.push_back(0);
      } else if (segment.kind == Kind::param) {
        matches = !path_segments[i].empty();
        params.emplace_back(segment.text, path_segments[i]);
        rank.push_back(1);
      } else {
        const std::string_view rest = path.substr(segment_starts[i]);
        matches = !rest.empty();
        params.emplace_back(segment.text, rest);
        rank.push_back(2);
        caught_rest = true;
      }
    }
    if (!caught_rest && route.segments.size() != path_segments.size()) matches = false;
    if (matches && (!best || rank < best_rank)) {
      best = Matched{route.value, std::move(params)};
      best_rank = std::move(rank);
    }
  }
  return best;
}

}  // namespace naive

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
