// The router's path tree: pattern syntax, what it refuses and why, precedence with backtracking, and a
// randomized comparison against a naive segment-by-segment matcher.
#include "spindle/http/detail/path_tree.hpp"

#include "support/naive_path_router.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iterator>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

// Counts allocations so a test can show that match() makes none. Not under ThreadSanitizer, whose
// runtime defines operator new itself (the linker refuses a second definition).
#if defined(__SANITIZE_THREAD__)
#define SPINDLE_COUNTS_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_COUNTS_ALLOCATIONS 0
#endif
#endif
#ifndef SPINDLE_COUNTS_ALLOCATIONS
#define SPINDLE_COUNTS_ALLOCATIONS 1
#endif

namespace {
std::atomic<long> allocations{0};
}  // namespace

#if SPINDLE_COUNTS_ALLOCATIONS
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc{};
}
// GCC sees free() given what operator new returned and warns, not knowing this operator new is malloc.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // SPINDLE_COUNTS_ALLOCATIONS

using spindle::http::detail::PathParam;
using spindle::http::detail::PathTree;
using spindle_test::Captures;
using spindle_test::Matched;
namespace naive = spindle_test::naive;

namespace {

std::optional<Matched> match(const PathTree& tree, std::string_view path) {
  std::vector<PathParam> params;
  const auto value = tree.match(path, params);
  if (!value) {
    EXPECT_TRUE(params.empty());
    return std::nullopt;
  }
  Matched matched{*value, {}};
  for (const PathParam& param : params) {
    // Values are views into the path, never copies.
    EXPECT_GE(param.value.data(), path.data());
    EXPECT_LE(param.value.data() + param.value.size(), path.data() + path.size());
    matched.params.emplace_back(param.name, param.value);
  }
  return matched;
}

PathTree tree_of(std::initializer_list<std::string_view> patterns) {
  PathTree tree;
  std::uint32_t value = 0;
  for (std::string_view pattern : patterns) {
    const auto added = tree.insert(pattern, value++);
    EXPECT_TRUE(added) << pattern << ": " << added.error();
  }
  return tree;
}

std::string insert_error(PathTree& tree, std::string_view pattern) {
  const auto added = tree.insert(pattern, 99);
  if (added) return "(accepted)";
  return added.error();
}

TEST(HttpPathTree, MatchesStaticRoutes) {
  const PathTree tree = tree_of({"/", "/users", "/users/", "/about/team", "/about/contact"});
  EXPECT_EQ(match(tree, "/"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/users"), (Matched{1, {}}));
  EXPECT_EQ(match(tree, "/users/"), (Matched{2, {}}));
  EXPECT_EQ(match(tree, "/about/team"), (Matched{3, {}}));
  EXPECT_EQ(match(tree, "/about/contact"), (Matched{4, {}}));
  for (std::string_view miss : {"", "users", "/use", "/userss", "/users/x", "/about", "/about/", "/about/teams"}) {
    EXPECT_EQ(match(tree, miss), std::nullopt) << miss;
  }
}

TEST(HttpPathTree, RootRouteMatchesOnlyASlash) {
  const PathTree tree = tree_of({"/"});
  EXPECT_EQ(match(tree, "/"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, ""), std::nullopt);
  EXPECT_EQ(match(tree, "//"), std::nullopt);
  EXPECT_EQ(match(tree, "/x"), std::nullopt);
}

TEST(HttpPathTree, EmptyTreeMatchesNothing) {
  PathTree tree;
  EXPECT_EQ(match(tree, "/"), std::nullopt);
  EXPECT_TRUE(tree.patterns().empty());
  ASSERT_TRUE(tree.insert("/a", 1));
  PathTree moved = std::move(tree);
  EXPECT_EQ(match(moved, "/a"), (Matched{1, {}}));
}

TEST(HttpPathTree, ParamCapturesOneWholeNonEmptySegment) {
  const PathTree tree = tree_of({"/users/{id}"});
  EXPECT_EQ(match(tree, "/users/42"), (Matched{0, {{"id", "42"}}}));
  // Values stay percent-encoded; an encoded slash is not a separator.
  EXPECT_EQ(match(tree, "/users/a%2Fb"), (Matched{0, {{"id", "a%2Fb"}}}));
  for (std::string_view miss : {"/users", "/users/", "/users/42/", "/users/4/2", "/users//"}) {
    EXPECT_EQ(match(tree, miss), std::nullopt) << miss;
  }
}

TEST(HttpPathTree, CapturesComeInPatternOrder) {
  const PathTree tree = tree_of({"/orgs/{org}/repos/{repo}/issues/{number}"});
  EXPECT_EQ(match(tree, "/orgs/rust-lang/repos/rust/issues/1"),
            (Matched{0, {{"org", "rust-lang"}, {"repo", "rust"}, {"number", "1"}}}));
}

TEST(HttpPathTree, CatchAllCapturesTheNonEmptyRest) {
  const PathTree tree = tree_of({"/files/{*path}", "/{*everything}"});
  EXPECT_EQ(match(tree, "/files/a"), (Matched{0, {{"path", "a"}}}));
  EXPECT_EQ(match(tree, "/files/a/b/c.txt"), (Matched{0, {{"path", "a/b/c.txt"}}}));
  EXPECT_EQ(match(tree, "/files/a/"), (Matched{0, {{"path", "a/"}}}));
  EXPECT_EQ(match(tree, "/files//"), (Matched{0, {{"path", "/"}}}));
  // An empty rest is no match for `/files/{*path}`; the root catch-all takes it.
  EXPECT_EQ(match(tree, "/files/"), (Matched{1, {{"everything", "files/"}}}));
  EXPECT_EQ(match(tree, "/files"), (Matched{1, {{"everything", "files"}}}));
  EXPECT_EQ(match(tree, "/"), std::nullopt);
}

TEST(HttpPathTree, StaticBeatsParamBeatsCatchAll) {
  const PathTree tree = tree_of({"/users/{*rest}", "/users/{id}", "/users/new"});
  EXPECT_EQ(match(tree, "/users/new"), (Matched{2, {}}));
  EXPECT_EQ(match(tree, "/users/7"), (Matched{1, {{"id", "7"}}}));
  EXPECT_EQ(match(tree, "/users/7/x"), (Matched{0, {{"rest", "7/x"}}}));
  EXPECT_EQ(match(tree, "/users/newer"), (Matched{1, {{"id", "newer"}}}));
}

TEST(HttpPathTree, BacktracksFromStaticToParam) {
  const PathTree tree = tree_of({"/users/new", "/users/{id}/posts"});
  EXPECT_EQ(match(tree, "/users/new"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/users/new/posts"), (Matched{1, {{"id", "new"}}}));
  EXPECT_EQ(match(tree, "/users/3/posts"), (Matched{1, {{"id", "3"}}}));
  EXPECT_EQ(match(tree, "/users/new/comments"), std::nullopt);
}

TEST(HttpPathTree, BacktracksFromParamToCatchAllDroppingItsCapture) {
  const PathTree tree = tree_of({"/{section}/index", "/{*rest}"});
  EXPECT_EQ(match(tree, "/docs/index"), (Matched{0, {{"section", "docs"}}}));
  EXPECT_EQ(match(tree, "/docs/other"), (Matched{1, {{"rest", "docs/other"}}}));
  EXPECT_EQ(match(tree, "/docs"), (Matched{1, {{"rest", "docs"}}}));
}

TEST(HttpPathTree, BacktracksAcrossSeveralLevels) {
  const PathTree tree = tree_of({"/a/b/c", "/a/{x}/d", "/{y}/b/e", "/{*all}"});
  EXPECT_EQ(match(tree, "/a/b/c"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/a/b/d"), (Matched{1, {{"x", "b"}}}));
  // Static `a/b/` then `{x}` both fail on the last segment; `{y}` one level up takes it.
  EXPECT_EQ(match(tree, "/a/b/e"), (Matched{2, {{"y", "a"}}}));
  EXPECT_EQ(match(tree, "/a/q/e"), (Matched{3, {{"all", "a/q/e"}}}));
}

TEST(HttpPathTree, PrefersStaticOverParamEvenWhenACatchAllFollows) {
  // Segment by segment: at the second segment static `b` outranks `{x}`, whatever comes after.
  const PathTree tree = tree_of({"/a/{x}/d", "/a/b/{*tail}"});
  EXPECT_EQ(match(tree, "/a/b/d"), (Matched{1, {{"tail", "d"}}}));
  EXPECT_EQ(match(tree, "/a/z/d"), (Matched{0, {{"x", "z"}}}));
}

TEST(HttpPathTree, SharesStaticPrefixesInsideASegment) {
  const PathTree tree = tree_of({"/user", "/users", "/usernames", "/users/{id}", "/u", "/user/{name}", "/v"});
  EXPECT_EQ(match(tree, "/user"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/users"), (Matched{1, {}}));
  EXPECT_EQ(match(tree, "/usernames"), (Matched{2, {}}));
  EXPECT_EQ(match(tree, "/users/9"), (Matched{3, {{"id", "9"}}}));
  EXPECT_EQ(match(tree, "/u"), (Matched{4, {}}));
  EXPECT_EQ(match(tree, "/user/ann"), (Matched{5, {{"name", "ann"}}}));
  EXPECT_EQ(match(tree, "/v"), (Matched{6, {}}));
  for (std::string_view miss : {"/us", "/username", "/usersx", "/w"}) EXPECT_EQ(match(tree, miss), std::nullopt);
}

TEST(HttpPathTree, TrailingSlashIsSignificant) {
  const PathTree tree = tree_of({"/users", "/posts/", "/users/{id}/", "/posts/{id}"});
  EXPECT_EQ(match(tree, "/users"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/users/"), std::nullopt);
  EXPECT_EQ(match(tree, "/posts/"), (Matched{1, {}}));
  EXPECT_EQ(match(tree, "/posts"), std::nullopt);
  EXPECT_EQ(match(tree, "/users/1/"), (Matched{2, {{"id", "1"}}}));
  EXPECT_EQ(match(tree, "/users/1"), std::nullopt);
  EXPECT_EQ(match(tree, "/posts/1"), (Matched{3, {{"id", "1"}}}));
  EXPECT_EQ(match(tree, "/posts/1/"), std::nullopt);
}

TEST(HttpPathTree, DoubledBracesAreLiteral) {
  const PathTree tree = tree_of({"/{{id}}", "/a{{b}}c/{x}", "/}}{{"});
  EXPECT_EQ(match(tree, "/{id}"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/7"), std::nullopt);
  EXPECT_EQ(match(tree, "/a{b}c/1"), (Matched{1, {{"x", "1"}}}));
  EXPECT_EQ(match(tree, "/}{"), (Matched{2, {}}));
  EXPECT_EQ(tree.patterns(), (std::vector<std::string>{"/{{id}}", "/a{{b}}c/{x}", "/}}{{"}));
}

TEST(HttpPathTree, EmptySegmentsAreStaticText) {
  const PathTree tree = tree_of({"/a//b", "/users/{id}", "/{x}/{y}", "/f/{*rest}"});
  EXPECT_EQ(match(tree, "/a//b"), (Matched{0, {}}));
  EXPECT_EQ(match(tree, "/a/b"), (Matched{2, {{"x", "a"}, {"y", "b"}}}));
  // A parameter never captures an empty segment.
  EXPECT_EQ(match(tree, "/users//"), std::nullopt);
  EXPECT_EQ(match(tree, "//x"), std::nullopt);
  EXPECT_EQ(match(tree, "/x/"), std::nullopt);
  // A catch-all takes whatever non-empty rest there is, empty segments included.
  EXPECT_EQ(match(tree, "/f//"), (Matched{3, {{"rest", "/"}}}));
  EXPECT_EQ(match(tree, "/f//x//"), (Matched{3, {{"rest", "/x//"}}}));
}

TEST(HttpPathTree, RefusesMalformedPatternsSayingWhy) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {"", "must start with '/'"},
      {"users/{id}", "must start with '/'"},
      {"/files/{name}.txt", "`{name}` must fill a whole segment"},
      {"/files/x{name}", "`{name}` must fill a whole segment"},
      {"/{a}{b}", "`{a}` must fill a whole segment"},
      {"/{a}x/", "`{a}` must fill a whole segment"},
      {"/x{*rest}", "`{*rest}` must fill a whole segment"},
      {"/{}", "`{}` has no name"},
      {"/{*}", "`{*}` has no name"},
      {"/{a-b}", "name `a-b` may contain only letters, digits and '_'"},
      {"/{a/b}", "name `a/b` may contain only"},
      {"/{**x}", "name `*x` may contain only"},
      {"/{id", "unclosed '{'"},
      {"/a}", "unescaped '}'"},
      {"/{{id}", "unescaped '}'"},
      {"/{*rest}/x", "`{*rest}` must be the last segment"},
      {"/{*rest}/", "`{*rest}` must be the last segment"},
      {"/{id}/{id}", "`id` is used twice"},
      {"/{id}/{*id}", "`id` is used twice"},
  };
  for (const auto& [pattern, reason] : cases) {
    PathTree tree;
    const std::string message = insert_error(tree, pattern);
    EXPECT_NE(message.find("invalid route `" + std::string(pattern) + "`"), std::string::npos) << message;
    EXPECT_NE(message.find(reason), std::string::npos) << message;
    EXPECT_TRUE(tree.patterns().empty());
  }
}

TEST(HttpPathTree, RefusesTheSameRouteTwice) {
  PathTree tree = tree_of({"/users", "/users/{id}", "/files/{*path}"});
  for (std::string_view pattern : {"/users", "/users/{id}", "/files/{*path}"}) {
    const std::string message = insert_error(tree, pattern);
    EXPECT_EQ(message, "route `" + std::string(pattern) + "` conflicts with `" + std::string(pattern) +
                           "`: the same route is added twice");
  }
  EXPECT_EQ(match(tree, "/users"), (Matched{0, {}}));
  EXPECT_EQ(tree.patterns().size(), 3u);
}

TEST(HttpPathTree, RefusesRoutesThatDifferOnlyInParamNames) {
  PathTree tree = tree_of({"/users/{id}", "/teams/{team}/members/{member}", "/files/{*path}"});
  EXPECT_EQ(insert_error(tree, "/users/{name}"),
            "route `/users/{name}` conflicts with `/users/{id}`: they differ only in parameter names, so they match "
            "the same paths");
  EXPECT_NE(insert_error(tree, "/teams/{team}/members/{user}").find("conflicts with `/teams/{team}/members/{member}`"),
            std::string::npos);
  EXPECT_NE(insert_error(tree, "/files/{*rest}").find("conflicts with `/files/{*path}`: they differ only"),
            std::string::npos);
}

TEST(HttpPathTree, RefusesADifferentParamNameInTheSamePlace) {
  PathTree tree = tree_of({"/users/{id}", "/users/{id}/posts/{post}"});
  EXPECT_EQ(insert_error(tree, "/users/{user_id}/posts"),
            "route `/users/{user_id}/posts` conflicts with `/users/{id}`: a parameter in the same place must have the "
            "same name in every route (`{user_id}` here, `{id}` there)");
  // The clash further down names the route that brought the parameter in.
  EXPECT_NE(insert_error(tree, "/users/{id}/posts/{post_id}/likes")
                .find("conflicts with `/users/{id}/posts/{post}`: a parameter in the same place"),
            std::string::npos);

  PathTree reversed = tree_of({"/users/{user_id}/posts"});
  EXPECT_EQ(insert_error(reversed, "/users/{id}"),
            "route `/users/{id}` conflicts with `/users/{user_id}/posts`: a parameter in the same place must have the "
            "same name in every route (`{id}` here, `{user_id}` there)");
}

TEST(HttpPathTree, RefusesCatchAllsWithDifferentNamesInTheSamePlace) {
  PathTree tree = tree_of({"/static/{*file}"});
  const std::string message = insert_error(tree, "/static/{*path}");
  EXPECT_NE(message.find("route `/static/{*path}` conflicts with `/static/{*file}`"), std::string::npos) << message;
  // Parameters and catch-alls in the same place coexist, as do catch-alls in different places.
  EXPECT_TRUE(tree.insert("/static/{name}", 1));
  EXPECT_TRUE(tree.insert("/{*path}", 2));
}

TEST(HttpPathTree, ARefusedPatternLeavesTheTreeUnchanged) {
  PathTree tree = tree_of({"/users/{id}", "/users/{id}/posts", "/users/new"});
  EXPECT_FALSE(tree.insert("/users/{name}/posts/x", 5));
  EXPECT_FALSE(tree.insert("/users/{id}/posts", 5));
  EXPECT_FALSE(tree.insert("/users/{id", 5));
  EXPECT_EQ(tree.patterns(), (std::vector<std::string>{"/users/{id}", "/users/{id}/posts", "/users/new"}));
  EXPECT_EQ(match(tree, "/users/1"), (Matched{0, {{"id", "1"}}}));
  EXPECT_EQ(match(tree, "/users/1/posts"), (Matched{1, {{"id", "1"}}}));
  EXPECT_EQ(match(tree, "/users/new"), (Matched{2, {}}));
  EXPECT_EQ(match(tree, "/users/1/posts/x"), std::nullopt);
  ASSERT_TRUE(tree.insert("/users/{id}/posts/x", 3));
  EXPECT_EQ(match(tree, "/users/1/posts/x"), (Matched{3, {{"id", "1"}}}));
}

TEST(HttpPathTree, ListsPatternsInInsertionOrder) {
  const PathTree tree = tree_of({"/b", "/a/{x}", "/", "/a/{*rest}"});
  EXPECT_EQ(tree.patterns(), (std::vector<std::string>{"/b", "/a/{x}", "/", "/a/{*rest}"}));
}

TEST(HttpPathTree, ClearsParamsOnEveryMatch) {
  const PathTree tree = tree_of({"/a/{x}", "/b"});
  std::vector<PathParam> params{{"stale", "stale"}};
  EXPECT_EQ(tree.match("/b", params), 1u);
  EXPECT_TRUE(params.empty());
  EXPECT_EQ(tree.match("/a/1", params), 0u);
  EXPECT_EQ(params.size(), 1u);
  EXPECT_EQ(tree.match("/c", params), std::nullopt);
  EXPECT_TRUE(params.empty());
}

TEST(HttpPathTree, ParamNamesOutliveLaterInsertsAndMoves) {
  PathTree tree = tree_of({"/items/{id}"});
  std::vector<PathParam> params;
  ASSERT_EQ(tree.match("/items/5", params), 0u);
  const std::string_view name = params.at(0).name;
  for (std::uint32_t i = 0; i < 200; ++i) {
    ASSERT_TRUE(tree.insert("/generated/" + std::to_string(i) + "/{p" + std::to_string(i) + "}", i));
  }
  PathTree moved = std::move(tree);
  EXPECT_EQ(name, "id");
  ASSERT_EQ(moved.match("/generated/150/x", params), 150u);
  EXPECT_EQ(params.at(0).name, "p150");
}

TEST(HttpPathTree, MatchDoesNotAllocateOnceParamsHasCapacity) {
  if (!SPINDLE_COUNTS_ALLOCATIONS) GTEST_SKIP() << "allocations are not counted under ThreadSanitizer";
  const PathTree tree = tree_of({"/users/new", "/users/{id}/posts/{post}", "/users/{id}/{*rest}", "/{*all}"});
  std::vector<PathParam> params;
  params.reserve(4);
  const std::string long_path = "/users/" + std::string(1000, 'x') + "/posts/" + std::string(1000, 'y');
  const long before = allocations.load();
  std::size_t found = 0;
  for (std::string_view path : {std::string_view("/users/new/posts/1"), std::string_view("/users/new/a/b/c"),
                                std::string_view("/nowhere/at/all"), std::string_view(long_path)}) {
    found += tree.match(path, params).has_value();
  }
  EXPECT_EQ(allocations.load(), before);
  EXPECT_EQ(found, 4u);
}

TEST(HttpPathTree, HandlesLongChainsAndManySegments) {
  PathTree tree;
  std::string pattern = "/";
  for (std::uint32_t i = 0; i < 500; ++i) {
    pattern += 'a';
    ASSERT_TRUE(tree.insert(pattern, i));
  }
  EXPECT_EQ(match(tree, "/" + std::string(321, 'a')), (Matched{320, {}}));
  ASSERT_TRUE(tree.insert("/{first}/{*rest}", 1000));
  std::string deep = "/s";
  for (int i = 0; i < 100000; ++i) deep += "/s";
  const auto found = match(tree, deep);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->value, 1000u);
  EXPECT_EQ(found->params.at(1).second.size(), deep.size() - 3);
}

// Random route sets from a small alphabet, so that routes share prefixes, collide and shadow each other,
// and random paths from the same alphabet; the tree must accept, refuse and match as the naive router.
TEST(HttpPathTree, AgreesWithANaiveMatcherOnRandomRoutes) {
  std::mt19937 rng(20240611);
  const auto pick = [&](const auto& choices) { return choices[rng() % std::size(choices)]; };
  const std::string_view literal_segments[] = {"a", "b", "ab", "abc", "", "{{", "}}x", "a{{b}}"};
  const std::string_view param_names[] = {"id", "name", "x"};
  const std::string_view catch_all_names[] = {"rest", "path"};
  const std::string_view path_segments[] = {"a", "b", "ab", "abc", "", "{", "}x", "a{b}", "q", "a%2F"};
  std::size_t accepted_total = 0, refused_total = 0, matched_total = 0;

  for (int round = 0; round < 400; ++round) {
    PathTree tree;
    std::vector<naive::Route> routes;
    const int pattern_count = 1 + static_cast<int>(rng() % 12);
    for (int p = 0; p < pattern_count; ++p) {
      std::string pattern;
      const int segment_count = 1 + static_cast<int>(rng() % 4);
      for (int s = 0; s < segment_count; ++s) {
        pattern += '/';
        const unsigned kind = rng() % 10;
        if (kind < 6) {
          pattern += pick(literal_segments);
        } else {
          pattern += kind < 9 ? "{" : "{*";
          pattern += kind < 9 ? pick(param_names) : pick(catch_all_names);
          pattern += '}';
        }
      }
      const auto segments = naive::parse(pattern);
      const bool should_accept = segments && std::none_of(routes.begin(), routes.end(), [&](const naive::Route& route) {
                                   return naive::conflicts(*segments, route.segments);
                                 });
      const auto value = static_cast<std::uint32_t>(routes.size());
      const auto added = tree.insert(pattern, value);
      ASSERT_EQ(added.has_value(), should_accept) << pattern << (added ? "" : ": " + added.error());
      if (added) {
        routes.push_back({*segments, value});
        ++accepted_total;
      } else {
        ++refused_total;
      }
    }
    for (int q = 0; q < 60; ++q) {
      std::string path;
      const int segment_count = static_cast<int>(rng() % 6);
      for (int s = 0; s < segment_count; ++s) {
        path += '/';
        path += pick(path_segments);
      }
      if (path.empty()) path = rng() % 2 ? "/" : "";
      const auto expected = naive::match(routes, path);
      ASSERT_EQ(match(tree, path), expected) << "path " << path;
      matched_total += expected.has_value();
    }
  }
  // The alphabet is meant to exercise all three outcomes a fair number of times.
  EXPECT_GT(accepted_total, 1000u);
  EXPECT_GT(refused_total, 200u);
  EXPECT_GT(matched_total, 1000u);
}

}  // namespace
