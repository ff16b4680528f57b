#pragma once
// The radix tree behind the HTTP router: maps URL path patterns to route numbers, with the pattern
// syntax and precedence of Axum 0.8 (its `matchit` crate).
//
// Patterns start with '/'. `{name}` captures one whole non-empty segment, `{*name}` (last segment only)
// the non-empty rest of the path, '/' included; `{{` and `}}` are literal braces. Matching works on
// the raw, still percent-encoded path, byte for byte, and a trailing slash is significant.
//
// Precedence, segment by segment: static text, then a parameter, then a catch-all. It backtracks, so
// with `/users/new` and `/users/{id}/posts` the path `/users/new/posts` reaches the second route.
//
// The shape: a node holds a compressed run of static bytes; its static children are told apart by their
// first byte; it has at most one parameter child and one catch-all child, and those only where its text
// ends with '/', because a parameter is always a whole segment. Two patterns that would need different
// parameter names at the same place are refused at insert rather than silently shadowing one another.
//
// Matching walks static text in a loop and recurses only where a node offers a parameter or catch-all to
// fall back on. Those nodes sit at segment starts and each nested call starts further into the path, so
// the recursion is at most as deep as the path has segments. Every node is entered at most once per
// match (a parameter eats exactly one segment, so where a node starts is fixed by the path), which keeps
// the worst case linear in the size of the tree.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/result.hpp"

namespace spindle::http::detail {

/// One captured parameter. `name` points into the tree (valid as long as the tree, across later inserts
/// and moves); `value` points into the path given to match(), still percent-encoded.
struct PathParam {
  std::string_view name;
  std::string_view value;
};

/// Matches request paths against route patterns.
///
///   PathTree tree;
///   if (auto added = tree.insert("/users/{id}/posts/{*rest}", 7); !added) fail(added.error());
///   std::vector<PathParam> params;
///   params.reserve(8);  // then match() never allocates
///   if (auto route = tree.match("/users/42/posts/a/b", params)) {
///     // *route == 7; params: {"id", "42"}, {"rest", "a/b"}
///   }
///
/// Move-only: parameter names handed out by match() point into the tree's own storage.
class PathTree {
 public:
  PathTree() = default;
  PathTree(PathTree&&) = default;
  PathTree& operator=(PathTree&&) = default;
  PathTree(const PathTree&) = delete;
  PathTree& operator=(const PathTree&) = delete;

  /// Adds `pattern` mapped to `value`. Returns an error message (for the user, naming both patterns on a
  /// conflict) if the pattern is malformed or conflicts with one already added; the tree is then unchanged.
  spindle::Result<void, std::string> insert(std::string_view pattern, std::uint32_t value);

  /// Matches a raw request path (percent-encoded, query already removed). Clears `params`, then appends
  /// captures in pattern order. Does not allocate once `params` has capacity for the captures.
  std::optional<std::uint32_t> match(std::string_view path, std::vector<PathParam>& params) const;

  /// Every pattern added, in insertion order (for error messages and route listings).
  const std::vector<std::string>& patterns() const noexcept { return patterns_; }

 private:
  static constexpr std::uint32_t kNone = UINT32_MAX;

  struct Node {
    std::string text;               // static nodes: the bytes to match, braces already unescaped
    std::string_view name;          // parameter and catch-all nodes: into names_
    std::string child_first_bytes;  // first byte of each static child, in step with static_children
    std::vector<std::uint32_t> static_children;
    std::uint32_t param_child = kNone;
    std::uint32_t catch_all_child = kNone;
    std::uint32_t creator_pattern = kNone;  // parameter and catch-all nodes: the pattern that brought it in
    std::uint32_t route_pattern = kNone;    // the pattern that ends here, if any
    std::uint32_t value = 0;                // with route_pattern
  };

  std::uint32_t find_static_child(const Node& node, char first_byte) const noexcept;
  std::uint32_t match_from(std::uint32_t node_index, std::string_view path, std::size_t position,
                           std::vector<PathParam>& params) const;
  std::uint32_t insert_static_text(std::uint32_t parent, std::string_view text);
  std::uint32_t add_node(Node node);

  std::vector<Node> nodes_;        // nodes_[0] is the root: empty text, created by the first insert
  std::deque<std::string> names_;  // a deque so that names never move once handed out
  std::vector<std::string> patterns_;
};

}  // namespace spindle::http::detail
