#pragma once
// The path tree's oracle, shared by tests/http_path_tree_test.cpp and fuzz/http_router_fuzz.cpp.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spindle_test {

/// Captured parameters as (name, value) pairs.
using Captures = std::vector<std::pair<std::string, std::string>>;

/// What a path matched: the route's value and its captures.
struct Matched {
  std::uint32_t value;
  Captures params;
  friend bool operator==(const Matched&, const Matched&) = default;
};

inline std::ostream& operator<<(std::ostream& out, const Matched& matched) {
  out << "route " << matched.value << " {";
  for (const auto& [name, value] : matched.params) out << " " << name << "=" << value;
  return out << " }";
}

// A deliberately naive router to check the tree against: patterns are split into segments, a path is
// compared with every route segment by segment, and of the routes that match, the one whose segments
// rank lowest (static 0, parameter 1, catch-all 2, compared in order) wins.
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

}  // namespace spindle_test
