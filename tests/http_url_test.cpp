// Percent-decoding and query strings (UTF-8 validation itself: text_utf8_test.cpp).

#include <gtest/gtest.h>

#include "spindle/http/url.hpp"

using spindle::http::parse_query;
using spindle::http::percent_decode;
using spindle::http::percent_encode;
using spindle::http::UrlError;

TEST(HttpUrl, DecodesPercentEscapes) {
  EXPECT_EQ(*percent_decode("caf%C3%A9"), "caf\xC3\xA9");
  EXPECT_EQ(*percent_decode("a%2Fb%2fc"), "a/b/c");    // hex digits in either case
  EXPECT_EQ(*percent_decode("a+b"), "a+b");            // '+' is a plus in a path...
  EXPECT_EQ(*percent_decode("a+b%2B", true), "a b+");  // ...and a space in a query
  EXPECT_EQ(*percent_decode(""), "");
}

TEST(HttpUrl, RefusesBadEscapesAndBadUtf8) {
  EXPECT_EQ(percent_decode("ab%").error(), (UrlError{2, "'%' must be followed by two hex digits"}));
  EXPECT_EQ(percent_decode("ab%4").error().position, 2u);
  EXPECT_EQ(percent_decode("%zz").error().position, 0u);
  EXPECT_EQ(percent_decode("ok%G1").error().position, 2u);
  EXPECT_FALSE(percent_decode("%FF"));          // not UTF-8
  EXPECT_FALSE(percent_decode("%C3"));          // truncated sequence
  EXPECT_FALSE(percent_decode("%C0%AF"));       // overlong '/': how path traversal once slipped past filters
  EXPECT_FALSE(percent_decode("%ED%A0%80"));    // a surrogate
  EXPECT_TRUE(percent_decode("%F0%9F%98%80"));  // U+1F600
}

TEST(HttpUrl, EncodesWhatIsNotUnreserved) {
  EXPECT_EQ(percent_encode("a b/c?d=e&f~g.h-i_j"), "a%20b%2Fc%3Fd%3De%26f~g.h-i_j");
  EXPECT_EQ(percent_encode("caf\xC3\xA9"), "caf%C3%A9");
  const std::string all = [] {
    std::string s;
    for (int c = 0; c < 128; ++c) s.push_back(static_cast<char>(c));
    return s;
  }();
  EXPECT_EQ(*percent_decode(percent_encode(all)), all);
}

TEST(HttpUrl, ParsesQueryStrings) {
  using Pairs = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(*parse_query("q=caf%C3%A9&page=2&flag"), (Pairs{{"q", "caf\xC3\xA9"}, {"page", "2"}, {"flag", ""}}));
  EXPECT_EQ(*parse_query(""), Pairs{});
  EXPECT_EQ(*parse_query("&&a=1&&"), (Pairs{{"a", "1"}}));
  EXPECT_EQ(*parse_query("a=1&a=2"), (Pairs{{"a", "1"}, {"a", "2"}}));  // repeats kept, in order
  EXPECT_EQ(*parse_query("name=a+b&x=%3D%26"), (Pairs{{"name", "a b"}, {"x", "=&"}}));
  EXPECT_EQ(*parse_query("k==v"), (Pairs{{"k", "=v"}}));
  const auto bad = parse_query("ok=1&bad=%Z1");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().position, 9u);  // the offset of the '%' in the whole query
}
