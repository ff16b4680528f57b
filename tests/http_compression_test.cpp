// Response compression, the codec half: Accept-Encoding negotiation against RFC 9110 12.5.3, the
// encoders checked with the reference decoders (zlib's inflate, brotli's decoder) rather than with each
// other, flush() making everything written so far decodable (what a streamed response needs), the gzip
// and zlib framing, and which content types are worth compressing.
#include "spindle/http/detail/compression.hpp"

#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using spindle::http::detail::coding_name;
using spindle::http::detail::compress;
using spindle::http::detail::Compressor;
using spindle::http::detail::ContentCoding;
using spindle::http::detail::is_compressible_content_type;
using spindle::http::detail::negotiate_coding;

namespace {

constexpr ContentCoding kBrGzipDeflate[] = {ContentCoding::br, ContentCoding::gzip, ContentCoding::deflate};
constexpr ContentCoding kGzipDeflateBr[] = {ContentCoding::gzip, ContentCoding::deflate, ContentCoding::br};
constexpr ContentCoding kDeflateGzipBr[] = {ContentCoding::deflate, ContentCoding::gzip, ContentCoding::br};
constexpr ContentCoding kGzipOnly[] = {ContentCoding::gzip};
constexpr ContentCoding kIdentityGzip[] = {ContentCoding::identity, ContentCoding::gzip};
constexpr ContentCoding kCompressed[] = {ContentCoding::gzip, ContentCoding::deflate, ContentCoding::br};

std::string describe(std::optional<ContentCoding> coding) {
  return coding ? std::string{coding_name(*coding)} : std::string{"nothing"};
}

// ---- the reference decoders ----

/// What a decoder made of some bytes: the output so far, and whether the stream ended there (its
/// trailer checked, no bytes after it).
struct Decoded {
  std::string bytes;
  bool complete = false;
};

Decoded inflate_all(std::string_view encoded, int window_bits) {
  z_stream stream{};
  if (inflateInit2(&stream, window_bits) != Z_OK) throw std::runtime_error("inflateInit2 failed");
  std::unique_ptr<z_stream, decltype(&inflateEnd)> guard{&stream, &inflateEnd};
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(encoded.data()));
  stream.avail_in = static_cast<uInt>(encoded.size());
  Decoded decoded;
  std::array<char, 16 * 1024> buffer{};
  int code = Z_OK;
  do {
    stream.next_out = reinterpret_cast<Bytef*>(buffer.data());
    stream.avail_out = static_cast<uInt>(buffer.size());
    code = inflate(&stream, Z_NO_FLUSH);
    if (code != Z_OK && code != Z_STREAM_END && code != Z_BUF_ERROR) {
      throw std::runtime_error(std::string{"inflate: "} + (stream.msg != nullptr ? stream.msg : "error"));
    }
    decoded.bytes.append(buffer.data(), buffer.size() - stream.avail_out);
  } while (code == Z_OK && stream.avail_out == 0);
  decoded.complete = code == Z_STREAM_END && stream.avail_in == 0;
  return decoded;
}

Decoded brotli_decode_stream(std::string_view encoded) {
  std::unique_ptr<BrotliDecoderState, decltype(&BrotliDecoderDestroyInstance)> state{
      BrotliDecoderCreateInstance(nullptr, nullptr, nullptr), &BrotliDecoderDestroyInstance};
  if (!state) throw std::runtime_error("BrotliDecoderCreateInstance failed");
  std::size_t available_in = encoded.size();
  const auto* next_in = reinterpret_cast<const std::uint8_t*>(encoded.data());
  Decoded decoded;
  for (;;) {
    std::size_t available_out = 0;
    auto result = BrotliDecoderDecompressStream(state.get(), &available_in, &next_in, &available_out, nullptr, nullptr);
    std::size_t size = 0;
    const std::uint8_t* output = BrotliDecoderTakeOutput(state.get(), &size);
    decoded.bytes.append(reinterpret_cast<const char*>(output), size);
    if (result == BROTLI_DECODER_RESULT_ERROR) {
      throw std::runtime_error(std::string{"brotli: "} +
                               BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state.get())));
    }
    if (result == BROTLI_DECODER_RESULT_SUCCESS) {
      decoded.complete = available_in == 0;
      return decoded;
    }
    if (result == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) return decoded;
  }
}

/// Whatever the encoded bytes decode to so far, by the coding's reference decoder. gzip is decoded as
/// gzip only (windowBits 15 + 16) and deflate as the zlib format only (15), so a wrong wrapper fails.
Decoded decode(ContentCoding coding, std::string_view encoded) {
  switch (coding) {
    case ContentCoding::gzip:
      return inflate_all(encoded, 15 + 16);
    case ContentCoding::deflate:
      return inflate_all(encoded, 15);
    case ContentCoding::br:
      return brotli_decode_stream(encoded);
    case ContentCoding::identity:
      break;
  }
  return {std::string{encoded}, true};
}

// ---- inputs ----

/// JSON-ish lines with varying numbers: compressible like an API response, not trivially so.
std::string compressible_text(std::size_t size) {
  std::mt19937 generator{7};
  std::string text;
  while (text.size() < size) {
    text += R"({"id": )" + std::to_string(generator() % 100000) + R"(, "name": "user )" +
            std::to_string(generator() % 1000) + R"(", "active": true, "tags": ["alpha", "beta"]})" + "\n";
  }
  text.resize(size);
  return text;
}

std::string random_bytes(std::size_t size) {
  std::mt19937_64 generator{20240607};
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(generator() & 0xff);
  return bytes;
}

// Decoded bytes are compared by size and equality, not with EXPECT_EQ on the strings: a mismatch in a
// megabyte should not print two megabytes.
void expect_decodes_to(ContentCoding coding, std::string_view encoded, std::string_view expected) {
  auto decoded = decode(coding, encoded);
  EXPECT_TRUE(decoded.complete) << coding_name(coding);
  EXPECT_EQ(decoded.bytes.size(), expected.size()) << coding_name(coding);
  EXPECT_TRUE(decoded.bytes == expected) << coding_name(coding);
}

// ---- negotiation ----

TEST(HttpCompression, CodingNames) {
  EXPECT_EQ(coding_name(ContentCoding::identity), "identity");
  EXPECT_EQ(coding_name(ContentCoding::gzip), "gzip");
  EXPECT_EQ(coding_name(ContentCoding::deflate), "deflate");
  EXPECT_EQ(coding_name(ContentCoding::br), "br");
}

TEST(HttpCompression, NegotiatesLikeRfc9110) {
  using enum ContentCoding;
  struct Case {
    std::optional<std::string_view> header;  // nullopt: no Accept-Encoding at all
    std::span<const ContentCoding> server;   // the server's codings, best first
    std::optional<ContentCoding> expected;   // nullopt: nothing acceptable
  };
  const std::vector<Case> cases = {
      // No header gets identity (what servers do), an empty one too (identity only, per the RFC).
      {std::nullopt, kBrGzipDeflate, identity},
      {"", kBrGzipDeflate, identity},
      {" \t ", kBrGzipDeflate, identity},
      {",, ,", kBrGzipDeflate, identity},
      // One coding.
      {"gzip", kBrGzipDeflate, gzip},
      {"br", kBrGzipDeflate, br},
      {"deflate", kBrGzipDeflate, deflate},
      {"identity", kBrGzipDeflate, identity},
      // Equal weights: the server's order decides, not the client's.
      {"gzip, deflate, br", kBrGzipDeflate, br},
      {"gzip, deflate, br", kGzipDeflateBr, gzip},
      {"gzip, deflate, br", kDeflateGzipBr, deflate},
      {"deflate, gzip", kBrGzipDeflate, gzip},
      {"br;q=0.5, gzip;q=0.5, deflate;q=0.5", kDeflateGzipBr, deflate},
      {"br;q=1.0, gzip;q=1", kBrGzipDeflate, br},
      // Weights: the highest wins over the server's order.
      {"gzip;q=0.5, deflate;q=0.8", kBrGzipDeflate, deflate},
      {"br;q=0.1, gzip;q=0.9", kBrGzipDeflate, gzip},
      {"br;q=0.001, gzip;q=0", kBrGzipDeflate, br},
      {"gzip;q=0., br;q=1.", kBrGzipDeflate, br},
      {"br;q=0.999, gzip;q=1.000", kBrGzipDeflate, gzip},
      // q=0 is "not acceptable"; identity stays acceptable unless excluded.
      {"gzip;q=0", kBrGzipDeflate, identity},
      {"br;q=0, gzip;q=0, deflate;q=0", kBrGzipDeflate, identity},
      {"gzip;q=0, identity;q=0", kBrGzipDeflate, std::nullopt},
      {"identity;q=0", kBrGzipDeflate, std::nullopt},
      {"identity;q=0, deflate", kBrGzipDeflate, deflate},
      // Identity listed competes on weight, and loses ties.
      {"gzip, identity", kBrGzipDeflate, gzip},
      {"gzip;q=0.5, identity", kBrGzipDeflate, identity},
      {"identity;q=0.5, gzip;q=0.6", kBrGzipDeflate, gzip},
      // "*": every coding not listed by name, identity included.
      {"*", kBrGzipDeflate, br},
      {"*", kGzipDeflateBr, gzip},
      {"*;q=0", kBrGzipDeflate, std::nullopt},
      {"*;q=0, identity", kBrGzipDeflate, identity},
      {"*;q=0, gzip", kBrGzipDeflate, gzip},
      {"*, br;q=0", kBrGzipDeflate, gzip},
      {"*;q=0.1, gzip", kBrGzipDeflate, gzip},
      {"*;q=0.5, gzip;q=0.2", kGzipOnly, identity},
      {"zstd, *;q=0.3", kBrGzipDeflate, br},
      {"*;q=0", kGzipOnly, std::nullopt},
      // Names: case-insensitive; x-gzip is gzip; unknown codings are not ours to send.
      {"GZIP", kBrGzipDeflate, gzip},
      {"Br, GZip", kGzipDeflateBr, gzip},
      {"x-gzip", kBrGzipDeflate, gzip},
      {"X-GZIP;q=0.7, deflate;q=0.6", kBrGzipDeflate, gzip},
      {"compress, zstd", kBrGzipDeflate, identity},
      {"gzip;Q=0.5, br;q=0.4", kBrGzipDeflate, gzip},
      // Whitespace (OWS around elements and around ';').
      {" gzip ; q=0.5 ,\tbr;q=0.6 ", kBrGzipDeflate, br},
      {"gzip\t;\tq=0.2,deflate;q=0.1", kBrGzipDeflate, gzip},
      // A malformed element is ignored alone.
      {"br;q=2, gzip", kBrGzipDeflate, gzip},
      {"br;q=1.001, gzip;q=0.5", kBrGzipDeflate, gzip},
      {"br;q=0.1234, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;q=, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;q=abc", kBrGzipDeflate, identity},
      {"br;q=.5, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;q=-0, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;q = 0.5, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;, gzip;q=0.1", kBrGzipDeflate, gzip},
      {"br;level=1, gzip;q=0.2", kBrGzipDeflate, gzip},
      {"br;q=0.5;x=1, deflate;q=0.1", kBrGzipDeflate, deflate},
      {"gz ip, deflate", kBrGzipDeflate, deflate},
      {"identity;q=zero", kBrGzipDeflate, identity},
      // A coding listed twice keeps its lower weight.
      {"gzip, gzip;q=0", kBrGzipDeflate, identity},
      {"br;q=0.2, gzip;q=0.5, br", kBrGzipDeflate, gzip},
      // The server's list: only what it has, identity in it changes nothing.
      {"br", kGzipOnly, identity},
      {"br, gzip", {}, identity},
      {"gzip", kIdentityGzip, gzip},
      {"identity;q=0, gzip", kIdentityGzip, gzip},
  };
  ASSERT_GE(cases.size(), 25u);
  for (const Case& c : cases) {
    auto got = negotiate_coding(c.header, c.server);
    EXPECT_EQ(got, c.expected) << "Accept-Encoding: " << (c.header ? std::string{*c.header} : "(absent)") << " -> "
                               << describe(got) << ", expected " << describe(c.expected);
  }
}

// ---- encoders ----

TEST(HttpCompression, RoundTripsThroughTheReferenceDecoders) {
  const std::vector<std::pair<std::string_view, std::string>> inputs = {
      {"empty", ""},
      {"small text", "Hello, World! Hello, World! Hello, World!\n"},
      {"1 MiB of text", compressible_text(1 << 20)},
      {"incompressible", random_bytes(256 * 1024)},
  };
  for (auto coding : kCompressed) {
    for (const auto& [name, input] : inputs) {
      SCOPED_TRACE(std::string{coding_name(coding)} + ", " + std::string{name});
      auto encoded = compress(coding, input);
      expect_decodes_to(coding, encoded, input);
    }
  }
}

TEST(HttpCompression, BrotliOneShotDecoderAgrees) {
  for (const auto& input : {std::string{}, compressible_text(100 * 1024), random_bytes(64 * 1024)}) {
    auto encoded = compress(ContentCoding::br, input);
    std::string decoded(input.size(), '\0');
    std::size_t decoded_size = decoded.size();
    ASSERT_EQ(BrotliDecoderDecompress(encoded.size(), reinterpret_cast<const std::uint8_t*>(encoded.data()),
                                      &decoded_size, reinterpret_cast<std::uint8_t*>(decoded.data())),
              BROTLI_DECODER_RESULT_SUCCESS);
    EXPECT_EQ(decoded_size, input.size());
    EXPECT_TRUE(decoded == input);
  }
}

TEST(HttpCompression, TextShrinksAndRandomBytesBarelyGrow) {
  const auto text = compressible_text(1 << 20);
  const auto noise = random_bytes(256 * 1024);
  for (auto coding : kCompressed) {
    SCOPED_TRACE(coding_name(coding));
    EXPECT_LT(compress(coding, text).size(), text.size() / 4);
    // Stored blocks: a few bytes per 16 or 64 KiB, plus the header and trailer.
    EXPECT_LE(compress(coding, noise).size(), noise.size() + noise.size() / 1000 + 64);
  }
}

TEST(HttpCompression, IdentityPassesBytesThrough) {
  const auto input = random_bytes(1000);
  EXPECT_EQ(compress(ContentCoding::identity, input), input);
  Compressor identity{ContentCoding::identity};
  std::string out;
  identity.write("abc", out);
  identity.flush(out);
  identity.write("def", out);
  identity.finish(out);
  EXPECT_EQ(out, "abcdef");
}

TEST(HttpCompression, EveryLevelRoundTrips) {
  const auto input = compressible_text(20 * 1024);
  for (int level = 0; level <= 9; ++level) {
    SCOPED_TRACE("zlib level " + std::to_string(level));
    expect_decodes_to(ContentCoding::gzip, compress(ContentCoding::gzip, input, level), input);
    expect_decodes_to(ContentCoding::deflate, compress(ContentCoding::deflate, input, level), input);
  }
  for (int quality = 0; quality <= 11; ++quality) {
    SCOPED_TRACE("brotli quality " + std::to_string(quality));
    expect_decodes_to(ContentCoding::br, compress(ContentCoding::br, input, quality), input);
  }
}

TEST(HttpCompression, RefusesLevelsOutOfRange) {
  EXPECT_THROW(Compressor(ContentCoding::gzip, 10), std::invalid_argument);
  EXPECT_THROW(Compressor(ContentCoding::deflate, -2), std::invalid_argument);
  EXPECT_THROW(Compressor(ContentCoding::br, 12), std::invalid_argument);
  EXPECT_THROW(compress(ContentCoding::br, "x", -5), std::invalid_argument);
  EXPECT_NO_THROW(Compressor(ContentCoding::br, 11));
  EXPECT_NO_THROW(Compressor(ContentCoding::identity, 42));  // identity has no level to check
}

// The point of flush(): after it, everything written so far reaches the client decodable, while the
// stream goes on. Each piece is checked by decoding all the bytes produced so far.
TEST(HttpCompression, FlushMakesEverythingWrittenSoFarDecodable) {
  const std::vector<std::string> pieces = {
      "data: first event\n\n", "",  "x", compressible_text(100 * 1024), random_bytes(10 * 1024),
      "data: last event\n\n",  "y",
  };
  for (auto coding : kCompressed) {
    SCOPED_TRACE(coding_name(coding));
    Compressor compressor{coding};
    std::string encoded;
    std::string written;
    for (const auto& piece : pieces) {
      compressor.write(piece, encoded);
      written += piece;
      compressor.flush(encoded);
      auto decoded = decode(coding, encoded);
      EXPECT_FALSE(decoded.complete);
      EXPECT_EQ(decoded.bytes.size(), written.size()) << "after a piece of " << piece.size() << " bytes";
      EXPECT_TRUE(decoded.bytes == written);
    }
    const auto size_before = encoded.size();
    compressor.flush(encoded);  // nothing new: nothing to add
    EXPECT_EQ(encoded.size(), size_before);
    compressor.finish(encoded);
    EXPECT_TRUE(compressor.is_finished());
    expect_decodes_to(coding, encoded, written);
  }
}

// Without flush() a small event stays in the encoder: the reason a streamed response must flush.
TEST(HttpCompression, WithoutFlushASmallWriteWaitsInTheEncoder) {
  const std::string event = "data: tick\n\n";
  for (auto coding : kCompressed) {
    SCOPED_TRACE(coding_name(coding));
    Compressor compressor{coding};
    std::string encoded;
    compressor.write(event, encoded);
    EXPECT_TRUE(decode(coding, encoded).bytes.empty());
    compressor.flush(encoded);
    EXPECT_EQ(decode(coding, encoded).bytes, event);
  }
}

TEST(HttpCompression, ByteAtATimeWritesRoundTrip) {
  const auto input = compressible_text(3000);
  for (auto coding : kCompressed) {
    SCOPED_TRACE(coding_name(coding));
    Compressor compressor{coding};
    std::string encoded;
    for (char c : input) compressor.write(std::string_view{&c, 1}, encoded);
    compressor.finish(encoded);
    expect_decodes_to(coding, encoded, input);
  }
}

TEST(HttpCompression, GzipHasItsMagicCrcAndLength) {
  const auto input = compressible_text(5000);
  const auto encoded = compress(ContentCoding::gzip, input);
  ASSERT_GE(encoded.size(), 18u);
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(encoded[i]); };
  EXPECT_EQ(byte(0), 0x1f);  // RFC 1952: ID1 ID2, then CM 8 (deflate)
  EXPECT_EQ(byte(1), 0x8b);
  EXPECT_EQ(byte(2), 8);
  auto little_endian = [&](std::size_t at) {
    return std::uint32_t{byte(at)} | std::uint32_t{byte(at + 1)} << 8 | std::uint32_t{byte(at + 2)} << 16 |
           std::uint32_t{byte(at + 3)} << 24;
  };
  const auto crc = crc32(0, reinterpret_cast<const Bytef*>(input.data()), static_cast<uInt>(input.size()));
  EXPECT_EQ(little_endian(encoded.size() - 8), crc);
  EXPECT_EQ(little_endian(encoded.size() - 4), input.size());
}

TEST(HttpCompression, DeflateIsTheZlibFormatNotRawDeflate) {
  const auto input = compressible_text(5000);
  const auto encoded = compress(ContentCoding::deflate, input);
  ASSERT_GE(encoded.size(), 6u);
  auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(encoded[i]); };
  // RFC 1950: CMF says deflate (CM 8) with a 32 KiB window (CINFO 7); FLG has no preset dictionary and
  // makes CMF*256 + FLG a multiple of 31.
  EXPECT_EQ(byte(0), 0x78);
  EXPECT_EQ((byte(0) * 256 + byte(1)) % 31, 0);
  EXPECT_EQ(byte(1) & 0x20, 0);
  const auto adler = adler32(1, reinterpret_cast<const Bytef*>(input.data()), static_cast<uInt>(input.size()));
  const auto n = encoded.size();
  EXPECT_EQ(std::uint32_t{byte(n - 4)} << 24 | std::uint32_t{byte(n - 3)} << 16 | std::uint32_t{byte(n - 2)} << 8 |
                std::uint32_t{byte(n - 1)},
            adler);
  // A raw-deflate decoder cannot read it: the header is not a deflate block.
  EXPECT_THROW(inflate_all(encoded, -15), std::runtime_error);
}

TEST(HttpCompression, UseAfterFinishIsALogicError) {
  for (auto coding : {ContentCoding::identity, ContentCoding::gzip, ContentCoding::br}) {
    SCOPED_TRACE(coding_name(coding));
    Compressor compressor{coding};
    std::string out;
    compressor.write("abc", out);
    compressor.finish(out);
    EXPECT_THROW(compressor.write("more", out), std::logic_error);
    EXPECT_THROW(compressor.flush(out), std::logic_error);
    EXPECT_THROW(compressor.finish(out), std::logic_error);
  }
}

TEST(HttpCompression, MovingKeepsTheStreamAndFinishesTheSource) {
  const auto input = compressible_text(10000);
  Compressor original{ContentCoding::gzip};
  std::string encoded;
  original.write(std::string_view{input}.substr(0, 4000), encoded);
  Compressor moved{std::move(original)};
  EXPECT_TRUE(original.is_finished());  // NOLINT(bugprone-use-after-move): what a moved-from one does
  EXPECT_THROW(original.write("x", encoded), std::logic_error);
  moved.write(std::string_view{input}.substr(4000), encoded);
  Compressor assigned{ContentCoding::br};
  assigned = std::move(moved);
  EXPECT_EQ(assigned.coding(), ContentCoding::gzip);
  assigned.finish(encoded);
  expect_decodes_to(ContentCoding::gzip, encoded, input);
}

// ---- content types ----

TEST(HttpCompression, CompressibleContentTypes) {
  struct Case {
    std::string_view content_type;
    bool compressible;
  };
  const std::vector<Case> cases = {
      {"text/html", true},
      {"text/html; charset=utf-8", true},
      {"Text/HTML;charset=UTF-8", true},
      {"  text/plain  ", true},
      {"text/css", true},
      {"text/csv", true},
      {"text/javascript", true},
      {"text/event-stream", true},
      {"application/json", true},
      {"application/JSON; charset=utf-8", true},
      {"application/javascript", true},
      {"application/xml", true},
      {"application/wasm", true},
      {"application/x-ndjson", true},
      {"application/problem+json", true},
      {"application/vnd.api+json", true},
      {"application/ld+json", true},
      {"application/atom+xml", true},
      {"application/rss+xml", true},
      {"application/xhtml+xml", true},
      {"image/svg+xml", true},
      {"font/ttf", true},
      {"font/otf", true},
      {"image/x-icon", true},
      {"image/bmp", true},
      {"image/png", false},
      {"image/jpeg", false},
      {"image/gif", false},
      {"image/webp", false},
      {"image/avif", false},
      {"video/mp4", false},
      {"audio/mpeg", false},
      {"audio/ogg", false},
      {"font/woff", false},
      {"font/woff2", false},
      {"application/octet-stream", false},
      {"application/zip", false},
      {"application/gzip", false},
      {"application/x-gzip", false},
      {"application/zstd", false},
      {"application/pdf", false},
      {"application/grpc", false},
      {"application/vnd.something+zip", false},
      {"multipart/form-data; boundary=x", false},
      {"", false},
      {"text", false},
      {"/json", false},
      {"text/", false},
      {"text /html", false},
      {"json", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(is_compressible_content_type(c.content_type), c.compressible) << "'" << c.content_type << "'";
  }
}

}  // namespace
