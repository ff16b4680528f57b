// UTF-8 validation throughput (bytes/s) on three kinds of text: English (all ASCII: the 16-byte path),
// mixed Latin and CJK (short ASCII runs between two- and three-byte sequences), and emoji (four-byte
// sequences). Each text is 64 KiB; the Validator is fed in 4 KiB pieces, as WebSocket frames would be.
//
//   ./bench/utf8_bench --benchmark_filter=IsValid

#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "spindle/text/utf8.hpp"

namespace {

constexpr std::size_t kTextBytes = 64 * 1024;
constexpr std::size_t kPieceBytes = 4 * 1024;

enum class Kind { ascii, mixed, emoji };

/// Whole copies of `sample`, up to kTextBytes.
std::string repeat(std::string_view sample) {
  std::string text;
  while (text.size() + sample.size() <= kTextBytes) text += sample;
  return text;
}

const std::string& text_of(Kind kind) {
  static const std::string ascii =
      repeat("The quick brown fox jumps over the lazy dog, and then it runs back again to do it once more. ");
  static const std::string mixed = repeat(
      "Gr\xC3\xBC\xC3\x9F"
      "e aus Z\xC3\xBCrich, caf\xC3\xA9 na\xC3\xAFve \xE2\x80\x94 "
      "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x81\xAE\xE5\xA4\xA9\xE6\xB0\x97\xE3\x81\xAF\xE6\x99\xB4\xE3\x82\x8C\xE3\x81\xA7"
      "\xE3\x81\x99\xE3\x80\x82 \xE4\xB8\xAD\xE6\x96\x87\xE5\xAD\x97\xE7\xAC\xA6 (2024) ");
  static const std::string emoji = repeat(
      "\xF0\x9F\x98\x80\xF0\x9F\x8E\x89\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD\xF0\x9F\x9A\x80\xF0\x9F\x8C\x8D"
      "\xF0\x9F\x94\xA5\xF0\x9F\x92\xAF ");
  switch (kind) {
    case Kind::ascii:
      return ascii;
    case Kind::mixed:
      return mixed;
    case Kind::emoji:
      break;
  }
  return emoji;
}

void BM_IsValid(benchmark::State& state, Kind kind) {
  const std::string& text = text_of(kind);
  if (!spindle::utf8::is_valid(text)) state.SkipWithError("the sample text is not valid UTF-8");
  for (auto _ : state) {
    bool valid = spindle::utf8::is_valid(text);
    benchmark::DoNotOptimize(valid);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK_CAPTURE(BM_IsValid, ascii, Kind::ascii);
BENCHMARK_CAPTURE(BM_IsValid, mixed, Kind::mixed);
BENCHMARK_CAPTURE(BM_IsValid, emoji, Kind::emoji);

// 4 KiB pieces: in the non-ASCII texts most cuts fall inside a sequence.
void BM_ValidatorFeed(benchmark::State& state, Kind kind) {
  const std::string& text = text_of(kind);
  if (!spindle::utf8::is_valid(text)) state.SkipWithError("the sample text is not valid UTF-8");
  for (auto _ : state) {
    spindle::utf8::Validator validator;
    bool valid = true;
    for (std::size_t at = 0; at < text.size() && valid; at += kPieceBytes)
      valid = validator.feed(std::string_view{text}.substr(at, kPieceBytes));
    valid = valid && validator.complete();
    benchmark::DoNotOptimize(valid);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
}
BENCHMARK_CAPTURE(BM_ValidatorFeed, ascii, Kind::ascii);
BENCHMARK_CAPTURE(BM_ValidatorFeed, mixed, Kind::mixed);
BENCHMARK_CAPTURE(BM_ValidatorFeed, emoji, Kind::emoji);

}  // namespace

BENCHMARK_MAIN();
