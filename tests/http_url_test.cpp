// Percent-decoding, query strings and UTF-8 validation.

#include <gtest/gtest.h>

#include <random>

#include "spindle/http/url.hpp"

using spindle::http::is_valid_utf8;
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

TEST(HttpUrl, ValidatesUtf8) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ASCII, long enough for the eight-byte loop"));
  EXPECT_TRUE(is_valid_utf8("\xC2\x80\xDF\xBF\xE0\xA0\x80\xEF\xBF\xBF\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"));
  for (const char* bad : {"\x80", "\xC1\xBF", "\xE0\x9F\xBF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
                          "\xC2", "\xE2\x82", "abcdefgh\xFF"}) {
    EXPECT_FALSE(is_valid_utf8(bad)) << bad;
  }
}

// Against a decoder that follows RFC 3629's table code point by code point.
TEST(HttpUrl, Utf8AgreesWithADecodeOfEveryCodePointOnRandomBytes) {
  const auto reference = [](std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
      const auto b = static_cast<unsigned char>(s[i]);
      int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
      if (n == 0 || i + n > s.size()) return false;
      std::uint32_t cp = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
      for (int k = 1; k < n; ++k) {
        const auto c = static_cast<unsigned char>(s[i + k]);
        if ((c & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (c & 0x3F);
      }
      const std::uint32_t min = n == 1 ? 0 : n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
      if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
      i += n;
    }
    return true;
  };
  std::mt19937 random(7);
  for (int round = 0; round < 200000; ++round) {
    std::string bytes(random() % 12, '\0');
    for (char& c : bytes) {
      const unsigned pick = random() % 4;
      c = static_cast<char>(pick == 0 ? random() % 0x80 : pick == 1 ? 0x80 + random() % 0x40 : 0xC0 + random() % 0x40);
    }
    ASSERT_EQ(is_valid_utf8(bytes), reference(bytes)) << round;
  }
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
