#pragma once
// The codec half of response compression: which content coding to answer with (Accept-Encoding, RFC
// 9110 12.5.3), the encoders for gzip, deflate and br, and which media types are worth compressing. The
// compression middleware decides when to use them (a body large enough, no Content-Encoding yet, not a
// HEAD or a 206) and rewrites the header fields; nothing here looks at a request or a response.
//
// zlib and brotli stay behind this header (their states live in the .cpp): a program that includes
// Spindle's headers does not need theirs.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace spindle::http::detail {

/// A content coding a response can be sent with (RFC 9110 8.4.1).
///
/// "deflate" is the zlib format (RFC 1950: a header, raw deflate, an Adler-32), as RFC 9110 8.4.1.2
/// defines it, not raw deflate: some old clients got this wrong, which is why servers rank it last.
enum class ContentCoding : std::uint8_t { identity, gzip, deflate, br };

/// The coding's name as Content-Encoding and Accept-Encoding spell it ("identity", "gzip", "deflate", "br").
std::string_view coding_name(ContentCoding coding) noexcept;

/// The coding to send a response with, given the request's Accept-Encoding (nullopt when the request has
/// none) and the codings the server can produce, best first (say br, gzip, deflate):
///
///   constexpr ContentCoding kServerOrder[] = {ContentCoding::br, ContentCoding::gzip, ContentCoding::deflate};
///   auto coding = negotiate_coding(request.headers.get("accept-encoding"), kServerOrder);
///   // "gzip;q=0.8, br" -> br; "gzip, br" -> br (a tie: the server's order); "deflate, gzip;q=0" -> deflate
///
/// RFC 9110 12.5.3: each coding may carry a weight `;q=` from 0 to 1 with at most three decimals, and the
/// highest weight wins; names are case-insensitive; "*" stands for every coding not listed by name;
/// "x-gzip" is gzip (RFC 9110 8.4.1.3); q=0 means "not acceptable"; an element whose weight is
/// malformed (or that has another parameter, which the grammar does not allow) is ignored as a whole.
/// A coding listed twice keeps its lower weight: sending a coding the client refused breaks the
/// response, not sending one it also asked for only costs bytes.
///
/// Identity (the body as it is) is acceptable unless "identity;q=0", or "*;q=0" without an "identity"
/// element, excludes it. Listed by name or through "*" it competes on weight like any coding (and loses
/// ties: compressing is why the server asked); otherwise it is the fallback when no listed coding is
/// acceptable. Whether `supported` includes identity changes nothing.
///
/// An absent header gets identity. RFC 9110 reads absence as "any coding is acceptable", but clients
/// that send no Accept-Encoding are mostly scripts and old tools that could not decode the result, so
/// servers (nginx, tower-http) send them identity; an empty value means identity only, as the RFC says.
///
/// nullopt means nothing is acceptable, identity included ("gzip;q=0, identity;q=0", or "*;q=0" to a
/// server without the coding asked for). RFC 9110 allows a 415 then, but the caller should send identity
/// anyway, as most servers do: an uncompressed body is more useful to the client than an error.
std::optional<ContentCoding> negotiate_coding(std::optional<std::string_view> accept_encoding,
                                              std::span<const ContentCoding> supported);

/// The level a Compressor uses when given -1: zlib's default for gzip and deflate (what tower-http and
/// nginx use); brotli's quality 5, where br is 4 to 7% smaller than gzip on web text (jQuery, HTML pages)
/// in no more CPU time. Quality 4 is faster but no smaller than gzip; 6 saves another 1 to 2% for 60%
/// more time, too much for a response compressed on every request.
inline constexpr int kDefaultZlibLevel = 6;
inline constexpr int kDefaultBrotliQuality = 5;

/// An encoder for one body, fed in pieces; its output is appended to the caller's string. Move-only: it
/// owns a zlib or brotli stream (see compression.cpp for what each costs in memory).
///
///   Compressor gzip{ContentCoding::gzip};
///   std::string out;
///   gzip.write("data: tick 1\n\n", out);
///   gzip.flush(out);   // a streamed event: out now decodes to everything written so far
///   gzip.write("data: tick 2\n\n", out);
///   gzip.finish(out);  // the trailer; the Compressor is done
///
/// `level` is -1 for the coding's default, else 0 to 9 (gzip, deflate) or 0 to 11 (br); another value
/// is std::invalid_argument. identity copies its input, so a caller can treat every coding alike. A
/// write or flush after finish() is std::logic_error. zlib or brotli running out of memory is
/// std::bad_alloc; any other failure of theirs is std::runtime_error saying which library and why.
class Compressor {
 public:
  explicit Compressor(ContentCoding coding, int level = -1);
  Compressor(Compressor&& other) noexcept;
  Compressor& operator=(Compressor&& other) noexcept;
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  ~Compressor();

  ContentCoding coding() const noexcept { return coding_; }

  /// Compresses `input`, appending to `out` whatever output is ready. The encoder keeps back what it may
  /// still match against later input, so a small write often appends nothing.
  void write(std::string_view input, std::string& out);
  /// Appends everything written so far, ending on a byte boundary the client can decode up to (zlib's
  /// Z_SYNC_FLUSH, brotli's BROTLI_OPERATION_FLUSH), without ending the stream. A streamed response
  /// (server-sent events, progress lines) needs this after each piece, or the piece waits in the encoder
  /// until enough follows. It costs a few bytes each time and resets the encoder's block statistics,
  /// so flush per message, not per byte. Nothing is appended when nothing was written since the last flush.
  void flush(std::string& out);
  /// Appends the rest of the body and the coding's trailer (gzip's CRC-32 and length, zlib's Adler-32,
  /// brotli's last meta-block). The encoder's memory is released now, not at destruction.
  void finish(std::string& out);
  /// finish() has been called.
  bool is_finished() const noexcept;

 private:
  struct State;
  ContentCoding coding_;
  std::unique_ptr<State> state_;  // null for identity, and once finished
  bool finished_ = false;
};

/// A whole body compressed at once (a Compressor written once and finished).
std::string compress(ContentCoding coding, std::string_view whole, int level = -1);

/// Whether a body of this media type (a Content-Type value; parameters and case do not matter) gets
/// smaller when compressed: text, JSON, JavaScript, XML (and the +json, +xml and +yaml types, SVG among
/// them), WebAssembly, uncompressed fonts and bitmaps. Images, audio and video, WOFF fonts, archives and
/// application/octet-stream are already compressed or unknown: compressing them again costs CPU time
/// and saves nothing, sometimes adds bytes. An absent or malformed type is false (RFC 9110 8.3: it may
/// be taken for application/octet-stream). text/event-stream is true: the caller must flush after each
/// event.
bool is_compressible_content_type(std::string_view content_type) noexcept;

}  // namespace spindle::http::detail
