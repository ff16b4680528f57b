// UTF-8 validation: Markus Kuhn's stress test (UTF-8-test.txt) for is_valid and sequence_length, the
// incremental Validator against is_valid at every cut, its fail-fast verdicts, and all three against a
// decoder that follows RFC 3629 code point by code point on random bytes.

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/text/utf8.hpp"

using spindle::utf8::is_valid;
using spindle::utf8::sequence_length;
using spindle::utf8::Validator;

namespace {

/// Encodes a code point the naive way, without refusing anything (so the test can build surrogates).
std::string encode(std::uint32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
  return out;
}

/// The reference: decodes one code point at a time per RFC 3629's definition (a lead's bit pattern says
/// the length, continuation bits are 10xxxxxx, then the value must be the shortest form, not a
/// surrogate, at most U+10FFFF). Slow and obviously right, unlike the table-driven implementation.
bool reference_is_valid(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    const std::size_t length = lead < 0x80           ? 1
                               : (lead >> 5) == 0x6  ? 2
                               : (lead >> 4) == 0xE  ? 3
                               : (lead >> 3) == 0x1E ? 4
                                                     : 0;
    if (length == 0 || i + length > text.size()) return false;
    std::uint32_t code_point = length == 1   ? lead
                               : length == 2 ? (lead & 0x1Fu)
                               : length == 3 ? (lead & 0x0Fu)
                                             : (lead & 0x07u);
    for (std::size_t k = 1; k < length; ++k) {
      const auto continuation = static_cast<unsigned char>(text[i + k]);
      if ((continuation & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (continuation & 0x3Fu);
    }
    const std::uint32_t shortest = length == 1 ? 0 : length == 2 ? 0x80 : length == 3 ? 0x800 : 0x10000;
    if (code_point < shortest || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) return false;
    i += length;
  }
  return true;
}

/// The verdict of a Validator fed `pieces` in order.
bool validate_in_pieces(const std::vector<std::string_view>& pieces) {
  Validator validator;
  for (std::string_view piece : pieces)
    if (!validator.feed(piece)) return false;
  return validator.complete();
}

// Markus Kuhn's UTF-8 decoder capability and stress test, sections 2 to 5, as byte strings.
const std::vector<std::string> kValid = {
    "",
    "plain ASCII, long enough for the sixteen-byte loop and then some",
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5",  // 1: "κόσμε"
    // 2.1 first possible sequence of each length
    std::string(1, '\0'),
    "\xC2\x80",
    "\xE0\xA0\x80",
    "\xF0\x90\x80\x80",
    // 2.2 last possible sequence of each length (within U+10FFFF)
    "\x7F",
    "\xDF\xBF",
    "\xEF\xBF\xBF",
    "\xF4\x8F\xBF\xBF",
    // 2.3 other boundary conditions
    "\xED\x9F\xBF",
    "\xEE\x80\x80",
    "\xEF\xBF\xBD",
    "\xF4\x8F\xBF\xBF",
    // 5.3 noncharacters are valid UTF-8 (U+FFFE, U+FFFF, U+FDD0, U+1FFFF)
    "\xEF\xBF\xBE",
    "\xEF\xBF\xBF",
    "\xEF\xB7\x90",
    "\xF0\x9F\xBF\xBF",
    // mixed, with multi-byte sequences straddling the 8- and 16-byte blocks
    "abcdefghijklmn\xC3\xA9opqrstuvwxyz\xE4\xB8\xAD\xE6\x96\x87 and \xF0\x9F\x98\x80!",
};

const std::vector<std::string> kInvalid = {
    // 2.1/2.2 beyond Unicode: five- and six-byte forms, and the four-byte forms above U+10FFFF
    "\xF8\x88\x80\x80\x80",
    "\xFC\x84\x80\x80\x80\x80",
    "\xFB\xBF\xBF\xBF\xBF",
    "\xFD\xBF\xBF\xBF\xBF\xBF",
    "\xF4\x90\x80\x80",
    "\xF7\xBF\xBF\xBF",
    "\xF5\x80\x80\x80",
    // 3.1 unexpected continuation bytes
    "\x80",
    "\xBF",
    "\x80\xBF",
    "\x80\xBF\x80",
    "\x80\xBF\x80\xBF",
    "a\x80",
    "abcdefghijklmnopq\xBF",
    // 3.2 lonely start characters (each followed by a space)
    "\xC0 ",
    "\xDF ",
    "\xE0 ",
    "\xEF ",
    "\xF0 ",
    "\xF7 ",
    "\xF8 ",
    "\xFC ",
    // 3.3 sequences with the last continuation byte missing
    "\xC0",
    "\xE0\x80",
    "\xF0\x80\x80",
    "\xDF",
    "\xEF\xBF",
    "\xF4\x8F\xBF",
    "\xC2",
    "\xE2\x82",
    // 3.4 those concatenated
    "\xC0\xE0\x80\xF0\x80\x80\xDF\xEF\xBF\xF4\x8F\xBF",
    // 3.5 impossible bytes
    "\xFE",
    "\xFF",
    "\xFE\xFE\xFF\xFF",
    // 4.1 overlong '/'; 4.2 the largest overlongs; 4.3 overlong NUL
    "\xC0\xAF",
    "\xE0\x80\xAF",
    "\xF0\x80\x80\xAF",
    "\xC1\xBF",
    "\xE0\x9F\xBF",
    "\xF0\x8F\xBF\xBF",
    "\xC0\x80",
    "\xE0\x80\x80",
    "\xF0\x80\x80\x80",
    // 5.1 single UTF-16 surrogates
    "\xED\xA0\x80",
    "\xED\xAD\xBF",
    "\xED\xAE\x80",
    "\xED\xAF\xBF",
    "\xED\xB0\x80",
    "\xED\xBE\x80",
    "\xED\xBF\xBF",
    // 5.2 paired UTF-16 surrogates (CESU-8)
    "\xED\xA0\x80\xED\xB0\x80",
    "\xED\xAF\xBF\xED\xBF\xBF",
    // a bad continuation after a good second byte, and invalid bytes after long ASCII runs
    "\xE4\xB8\x41",
    "\xF0\x9F\x98\x41",
    "abcdefghijklmnopqrstuvwxyz0123456789\xFF",
    "abcdefgh\xFF",
};

}  // namespace

TEST(TextUtf8, AcceptsKuhnsValidCases) {
  for (const std::string& text : kValid) {
    EXPECT_TRUE(reference_is_valid(text)) << "the reference disagrees on case " << ::testing::PrintToString(text);
    EXPECT_TRUE(is_valid(text)) << ::testing::PrintToString(text);
  }
}

TEST(TextUtf8, RefusesKuhnsInvalidCases) {
  for (const std::string& text : kInvalid) {
    EXPECT_FALSE(reference_is_valid(text)) << "the reference disagrees on case " << ::testing::PrintToString(text);
    EXPECT_FALSE(is_valid(text)) << ::testing::PrintToString(text);
  }
}

TEST(TextUtf8, EveryCodePointAndEverySurrogate) {
  for (std::uint32_t code_point = 0; code_point <= 0x10FFFF; ++code_point) {
    const std::string bytes = encode(code_point);
    const bool surrogate = code_point >= 0xD800 && code_point <= 0xDFFF;
    ASSERT_EQ(is_valid(bytes), !surrogate) << std::hex << code_point;
    ASSERT_EQ(sequence_length(bytes), surrogate ? 0 : bytes.size()) << std::hex << code_point;
  }
  EXPECT_FALSE(is_valid(encode(0x110000)));
  EXPECT_FALSE(is_valid(encode(0x1FFFFF)));
}

TEST(TextUtf8, SequenceLengthMeasuresOnlyTheFirstSequence) {
  EXPECT_EQ(sequence_length(""), 0u);
  EXPECT_EQ(sequence_length("a\xFF"), 1u);
  EXPECT_EQ(sequence_length("\xC3\xA9xyz"), 2u);
  EXPECT_EQ(sequence_length("\xE2\x82\xAC\xFF"), 3u);
  EXPECT_EQ(sequence_length("\xF0\x9F\x98\x80\x80"), 4u);
  EXPECT_EQ(sequence_length("\xE2\x82"), 0u);      // cut short
  EXPECT_EQ(sequence_length("\x80"), 0u);          // a continuation byte
  EXPECT_EQ(sequence_length("\xC0\xAF"), 0u);      // overlong
  EXPECT_EQ(sequence_length("\xED\xA0\x80"), 0u);  // surrogate
  EXPECT_EQ(sequence_length("\xF4\x90\x80\x80"), 0u);
  EXPECT_EQ(sequence_length("\xE4\xB8\x41"), 0u);  // a bad third byte
}

TEST(TextUtf8, ValidatorAgreesWithIsValidAtEveryCutInTwoAndThreePieces) {
  std::vector<std::string> cases = kValid;
  cases.insert(cases.end(), kInvalid.begin(), kInvalid.end());
  for (const std::string& text : cases) {
    const bool expected = is_valid(text);
    const std::string_view all = text;
    EXPECT_EQ(validate_in_pieces({all}), expected) << ::testing::PrintToString(text);
    for (std::size_t first = 0; first <= all.size(); ++first) {
      EXPECT_EQ(validate_in_pieces({all.substr(0, first), all.substr(first)}), expected)
          << ::testing::PrintToString(text) << " cut at " << first;
      for (std::size_t second = first; second <= all.size(); ++second) {
        EXPECT_EQ(validate_in_pieces({all.substr(0, first), all.substr(first, second - first), all.substr(second)}),
                  expected)
            << ::testing::PrintToString(text) << " cut at " << first << " and " << second;
      }
    }
  }
}

TEST(TextUtf8, ValidatorAcceptsOneByteAtATime) {
  const std::string text = "x\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80\xF4\x8F\xBF\xBF";
  Validator validator;
  for (char byte : text) {
    EXPECT_TRUE(validator.feed(std::string_view{&byte, 1}));
  }
  EXPECT_TRUE(validator.complete());
}

// RFC 6455 8.1: fail as soon as the bytes so far cannot be valid, not at the end of the sequence.
TEST(TextUtf8, ValidatorFailsFast) {
  for (std::string_view prefix :
       {"\xF4\x90", "\xED\xA0", "\xC0", "\xC1", "\xE0\x80", "\xE0\x9F", "\xF0\x80", "\xF0\x8F", "\xF5", "\xFF", "\x80",
        "ok\xE4\xB8\x41", "\xF0\x9F\x98\x41", "\xF0\x9F\x41", "\xE4\x41", "\xC3\xC3"}) {
    Validator validator;
    EXPECT_FALSE(validator.feed(prefix)) << ::testing::PrintToString(prefix);
    EXPECT_FALSE(validator.complete());
  }
  // Also when the bad byte comes in a later piece: the second byte of a cut four-byte sequence.
  Validator validator;
  EXPECT_TRUE(validator.feed("abc\xF4"));
  EXPECT_FALSE(validator.feed("\x90"));
  // Once failed, it stays failed, even for valid text.
  EXPECT_FALSE(validator.feed("valid"));
  EXPECT_FALSE(validator.complete());
  validator.reset();
  EXPECT_TRUE(validator.feed("valid"));
  EXPECT_TRUE(validator.complete());
}

TEST(TextUtf8, ValidatorIsNotCompleteInsideACutSequence) {
  for (std::string_view prefix :
       {"\xC3", "\xE4", "\xE4\xB8", "\xF0", "\xF0\x9F", "\xF0\x9F\x98", "\xF4\x8F\xBF", "abc\xE0\xA0", "\xED\x9F"}) {
    Validator validator;
    EXPECT_TRUE(validator.feed(prefix)) << ::testing::PrintToString(prefix);
    EXPECT_FALSE(validator.complete()) << ::testing::PrintToString(prefix);
  }
  Validator validator;
  EXPECT_TRUE(validator.feed("\xF0\x9F"));
  EXPECT_TRUE(validator.feed(""));
  EXPECT_FALSE(validator.complete());
  EXPECT_TRUE(validator.feed("\x98"));
  EXPECT_FALSE(validator.complete());
  EXPECT_TRUE(validator.feed("\x80"));
  EXPECT_TRUE(validator.complete());
}

TEST(TextUtf8, ValidatorIsSmall) {
  // It lives in every WebSocket connection.
  EXPECT_LE(sizeof(Validator), 4u);
}

// Random bytes biased towards what makes UTF-8 interesting (leads, continuation bytes, the edges of the
// second-byte ranges), checked whole, cut in pieces, and for the first sequence's length.
TEST(TextUtf8, AgreesWithTheReferenceDecoderOnRandomBytes) {
  static constexpr unsigned char kInteresting[] = {0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                                                   0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
  std::mt19937 random(20240607);
  for (int round = 0; round < 300000; ++round) {
    std::string bytes(random() % 40, '\0');
    for (char& byte : bytes) {
      const unsigned pick = random() % 5;
      byte = static_cast<char>(pick == 0   ? random() % 0x80
                               : pick == 1 ? 0x80 + random() % 0x40
                               : pick == 2 ? 0xC0 + random() % 0x40
                               : pick == 3 ? kInteresting[random() % sizeof kInteresting]
                                           : random() % 0x100);
    }
    const bool expected = reference_is_valid(bytes);
    ASSERT_EQ(is_valid(bytes), expected) << ::testing::PrintToString(bytes);
    const std::string_view all = bytes;
    const std::size_t first = random() % (all.size() + 1);
    const std::size_t second = first + random() % (all.size() - first + 1);
    ASSERT_EQ(validate_in_pieces({all.substr(0, first), all.substr(first, second - first), all.substr(second)}),
              expected)
        << ::testing::PrintToString(bytes) << " cut at " << first << " and " << second;
    if (!bytes.empty()) {
      // The first sequence on its own: valid exactly when the reference accepts that prefix.
      std::optional<std::size_t> reference_length;
      for (std::size_t length = 1; length <= 4 && length <= all.size(); ++length)
        if (reference_is_valid(all.substr(0, length))) {
          reference_length = length;
          break;
        }
      ASSERT_EQ(sequence_length(bytes), reference_length.value_or(0)) << ::testing::PrintToString(bytes);
    }
  }
}

// Fail-fast, checked exhaustively: a Validator fed a prefix refuses it exactly when no continuation
// can make it valid. For sequences of up to four bytes, "some completion is valid" is decided by
// trying every continuation byte.
TEST(TextUtf8, ValidatorRefusesAPrefixExactlyWhenNoCompletionIsValid) {
  const auto completable = [](std::string prefix) {
    if (is_valid(prefix)) return true;
    for (std::size_t extra = 1; prefix.size() + extra <= 4; ++extra) {
      std::string tail(extra, '\x80');
      // Every completion of a sequence differs only in the byte after the prefix; later bytes need only
      // be continuation bytes, which 0x80 is.
      for (int next = 0; next < 256; ++next) {
        tail[0] = static_cast<char>(next);
        if (is_valid(prefix + tail)) return true;
      }
    }
    return false;
  };
  for (int lead = 0x80; lead < 0x100; ++lead) {
    const std::string one(1, static_cast<char>(lead));
    Validator validator;
    EXPECT_EQ(validator.feed(one), completable(one)) << std::hex << lead;
    for (int second = 0; second < 0x100; ++second) {
      const std::string two = one + static_cast<char>(second);
      Validator again;
      EXPECT_EQ(again.feed(two), completable(two)) << std::hex << lead << " " << second;
    }
  }
}
