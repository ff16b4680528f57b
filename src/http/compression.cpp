// Response compression, the codec half: Accept-Encoding negotiation and the zlib and brotli encoders.
//
// Negotiation (RFC 9110 12.5.3). Weights are kept in thousandths (0 to 1000): the grammar allows at most
// three decimals, so integers compare them exactly. Only the codings Spindle can produce are tracked, plus
// "*"; a coding's weight is its own element's, else "*"'s, else it was not asked for. Identity differs
// only in that "not asked for" still means acceptable. An element that does not parse is dropped alone,
// not the header: one client's odd extension should not cost it compression altogether.
//
// Memory per stream, measured by counting malloc's usable sizes around this code, zlib 1.2.13 and brotli
// 1.0.9 (Debian 12):
//  - gzip and deflate, level 6, windowBits 15, memLevel 8: 262 KiB (268,272 bytes), all of it allocated
//    by deflateInit2 and constant whatever the body: a 64 KiB window, 64 KiB of hash chains, a 64 KiB hash
//    head table and a 64 KiB pending buffer (zconf.h's 2^(windowBits+2) + 2^(memLevel+9)), plus 6 KiB.
//  - br, quality 5, lgwin 18: 6.5 KiB at creation; brotli allocates when input arrives and keeps it
//    until finish. About 1.1 MiB once anything is written (a 1 MiB hash table is most of it); a stream
//    flushed every 4 KiB then holds 1.7 MiB; a body written at once peaks at 1.2 MiB (10 KiB of text),
//    2.6 MiB (100 KiB) and 3.7 MiB (1 MiB and up: ring buffer, commands and pending output grow with
//    the unflushed input). brotli's default window (lgwin 22, 4 MiB) makes the last figure 12 MiB; a
//    256 KiB window gives the same output for bodies up to 256 KiB and up to 15% more on multi-megabyte
//    ones, a fair price for a third of the memory.
// So a long-lived compressed stream (server-sent events to many clients) costs 262 KiB with gzip and
// about 1.7 MiB with br: the middleware's to weigh, not the encoder's. compress() frees everything
// before it returns, so a thread holds at most one such peak for whole bodies.
//
// Out of memory: zlib reports it (Z_MEM_ERROR, std::bad_alloc here). brotli's encoder, as built by
// default (BROTLI_ENCODER_EXIT_ON_OOM, Debian's too), ends the process when an allocation fails; throwing
// from a custom allocator instead would unwind through C frames that do not expect it and leave the
// encoder inconsistent. With Linux's overcommit an allocation almost never fails anyway: the process is
// killed for memory long before malloc returns null.

#include "spindle/http/detail/compression.hpp"

#include <brotli/encode.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>

#include "spindle/http/detail/field_syntax.hpp"

namespace spindle::http::detail {

namespace {

using namespace std::string_view_literals;

// ---- negotiation ----

constexpr int kFullWeight = 1000;  // q=1, in thousandths
constexpr int kNotListed = -1;

/// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
std::optional<int> parse_qvalue(std::string_view text) noexcept {
  if (text.empty() || (text[0] != '0' && text[0] != '1')) return std::nullopt;
  int weight = (text[0] - '0') * kFullWeight;
  if (text.size() == 1) return weight;
  if (text[1] != '.' || text.size() > 5) return std::nullopt;
  int scale = kFullWeight / 10;
  for (char c : text.substr(2)) {
    if (c < '0' || c > '9') return std::nullopt;
    weight += (c - '0') * scale;
    scale /= 10;
  }
  if (weight > kFullWeight) return std::nullopt;  // "1.5"
  return weight;
}

/// The weights an Accept-Encoding value gives the codings Spindle knows, and "*".
struct Weights {
  std::array<int, 4> by_coding{kNotListed, kNotListed, kNotListed, kNotListed};  // indexed by ContentCoding
  int any = kNotListed;                                                          // "*"

  int of(ContentCoding coding) const noexcept {
    int own = by_coding[static_cast<std::size_t>(coding)];
    return own != kNotListed ? own : any;
  }
};

void keep_lower(int& slot, int weight) noexcept { slot = slot == kNotListed ? weight : std::min(slot, weight); }

Weights parse_accept_encoding(std::string_view header) noexcept {
  Weights weights;
  while (!header.empty()) {
    auto comma = header.find(',');
    auto element = trim_ows(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    if (element.empty()) continue;  // RFC 9110 5.6.1: empty list elements are allowed and mean nothing

    auto semicolon = element.find(';');
    auto name = trim_ows(element.substr(0, semicolon));
    if (!is_token(name)) continue;
    int weight = kFullWeight;
    if (semicolon != std::string_view::npos) {
      // weight = OWS ";" OWS "q=" qvalue, and nothing else: a second parameter lands in `parameter`
      // and fails the qvalue.
      auto parameter = trim_ows(element.substr(semicolon + 1));
      if (parameter.size() < 2 || ascii_lower(parameter[0]) != 'q' || parameter[1] != '=') continue;
      auto q = parse_qvalue(parameter.substr(2));
      if (!q) continue;
      weight = *q;
    }

    if (name == "*") {
      keep_lower(weights.any, weight);
    } else if (iequals(name, "gzip") || iequals(name, "x-gzip")) {
      keep_lower(weights.by_coding[static_cast<std::size_t>(ContentCoding::gzip)], weight);
    } else if (iequals(name, "br")) {
      keep_lower(weights.by_coding[static_cast<std::size_t>(ContentCoding::br)], weight);
    } else if (iequals(name, "deflate")) {
      keep_lower(weights.by_coding[static_cast<std::size_t>(ContentCoding::deflate)], weight);
    } else if (iequals(name, "identity")) {
      keep_lower(weights.by_coding[static_cast<std::size_t>(ContentCoding::identity)], weight);
    }
    // Other codings (zstd, compress...) cannot be produced; they matter only in that "*" no longer
    // covers them, which does not matter either.
  }
  return weights;
}

// ---- encoders ----

// Output is produced into this much stack, then appended: a copy of compressed bytes only, which are few,
// and no zero-filling of `out` ahead of deflate as resizing it would do.
constexpr std::size_t kOutputChunk = 16 * 1024;
// zlib counts input in 32-bit uInt: a larger write is fed in pieces.
constexpr std::size_t kMaxZlibInput = std::size_t{1} << 30;

// windowBits 15 is the largest window (32 KiB); +16 asks zlib for the gzip wrapper instead of zlib's.
constexpr int kZlibWindowBits = 15;
constexpr int kGzipWindowBits = kZlibWindowBits + 16;
// zlib's default: 8 of 9, the compression of 9 for half its hash memory.
constexpr int kZlibMemLevel = 8;
// 256 KiB: see the memory note at the top of the file.
constexpr int kBrotliWindowBits = 18;

int checked_level(ContentCoding coding, int level) {
  if (coding == ContentCoding::identity) return 0;
  bool brotli = coding == ContentCoding::br;
  if (level == -1) return brotli ? kDefaultBrotliQuality : kDefaultZlibLevel;
  int max = brotli ? BROTLI_MAX_QUALITY : Z_BEST_COMPRESSION;
  if (level < 0 || level > max) {
    throw std::invalid_argument("compression level " + std::to_string(level) + " for " +
                                std::string{coding_name(coding)} + " is out of range (-1, or 0 to " +
                                std::to_string(max) + ")");
  }
  return level;
}

[[noreturn]] void throw_zlib_error(const z_stream& stream, int code, const char* during) {
  if (code == Z_MEM_ERROR) throw std::bad_alloc{};
  std::string message = std::string{"zlib "} + during + " failed (code " + std::to_string(code) + ")";
  if (stream.msg != nullptr) message += std::string{": "} + stream.msg;
  throw std::runtime_error(message);
}

}  // namespace

std::string_view coding_name(ContentCoding coding) noexcept {
  switch (coding) {
    case ContentCoding::identity:
      return "identity";
    case ContentCoding::gzip:
      return "gzip";
    case ContentCoding::deflate:
      return "deflate";
    case ContentCoding::br:
      return "br";
  }
  return "identity";
}

std::optional<ContentCoding> negotiate_coding(std::optional<std::string_view> accept_encoding,
                                              std::span<const ContentCoding> supported) {
  if (!accept_encoding) return ContentCoding::identity;
  auto weights = parse_accept_encoding(*accept_encoding);

  std::optional<ContentCoding> best;
  int best_weight = 0;  // a coding must weigh more than 0 to be acceptable
  for (auto coding : supported) {
    if (coding == ContentCoding::identity) continue;
    int weight = weights.of(coding);
    if (weight > best_weight) {  // strictly: on a tie the server's earlier choice stays
      best = coding;
      best_weight = weight;
    }
  }

  int identity_weight = weights.of(ContentCoding::identity);
  if (best && identity_weight <= best_weight) return best;  // not listed (-1) or a tie: compress
  if (identity_weight == 0) return std::nullopt;
  return ContentCoding::identity;
}

/// The encoder. Heap-allocated behind the Compressor: a z_stream must not move once initialised (zlib's
/// internal state points back at it), and the Compressor must.
struct Compressor::State {
  explicit State(ContentCoding coding, int level) : is_brotli(coding == ContentCoding::br) {
    if (is_brotli) {
      brotli = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
      if (brotli == nullptr) throw std::bad_alloc{};
      // Generic mode: a text hint would only tune the literal context modelling, and the content type
      // is the middleware's business. Every parameter here is valid, so SetParameter cannot fail.
      BrotliEncoderSetParameter(brotli, BROTLI_PARAM_QUALITY, static_cast<std::uint32_t>(level));
      BrotliEncoderSetParameter(brotli, BROTLI_PARAM_LGWIN, kBrotliWindowBits);
    } else {
      int window_bits = coding == ContentCoding::gzip ? kGzipWindowBits : kZlibWindowBits;
      int code = deflateInit2(&zlib, level, Z_DEFLATED, window_bits, kZlibMemLevel, Z_DEFAULT_STRATEGY);
      if (code != Z_OK) throw_zlib_error(zlib, code, "deflateInit2");
    }
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    if (is_brotli) {
      BrotliEncoderDestroyInstance(brotli);
    } else {
      deflateEnd(&zlib);
    }
  }

  /// Runs deflate over `input` with `flush`, appending its output, until zlib has nothing more to give.
  void run_zlib(std::string_view input, int flush, std::string& out) {
    std::array<char, kOutputChunk> buffer;  // NOLINT: written by deflate before it is read
    do {
      auto piece = input.substr(0, kMaxZlibInput);
      input.remove_prefix(piece.size());
      // Z_NO_FLUSH for all but the last piece: a flush or finish applies once, after all the input.
      int mode = input.empty() ? flush : Z_NO_FLUSH;
      zlib.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));  // zlib does not write it
      zlib.avail_in = static_cast<uInt>(piece.size());
      // deflate stops when its output is full; output space left over means it is done (for Z_FINISH,
      // that it returned Z_STREAM_END).
      do {
        zlib.next_out = reinterpret_cast<Bytef*>(buffer.data());
        zlib.avail_out = static_cast<uInt>(buffer.size());
        int code = deflate(&zlib, mode);
        // Z_BUF_ERROR only says no progress was possible (a repeated flush): not a failure.
        if (code != Z_OK && code != Z_STREAM_END && code != Z_BUF_ERROR) throw_zlib_error(zlib, code, "deflate");
        out.append(buffer.data(), buffer.size() - zlib.avail_out);
      } while (zlib.avail_out == 0);
    } while (!input.empty());
  }

  /// Runs the brotli encoder over `input` with `operation` until it is done with it. The output is taken
  /// from brotli's own buffer (BrotliEncoderTakeOutput), so it is copied once, into `out`.
  void run_brotli(std::string_view input, BrotliEncoderOperation operation, std::string& out) {
    std::size_t available_in = input.size();
    const auto* next_in = reinterpret_cast<const std::uint8_t*>(input.data());
    for (;;) {
      std::size_t available_out = 0;
      if (!BrotliEncoderCompressStream(brotli, operation, &available_in, &next_in, &available_out, nullptr, nullptr)) {
        throw std::runtime_error("brotli encoder failed (BrotliEncoderCompressStream returned false)");
      }
      std::size_t size = 0;
      const std::uint8_t* output = BrotliEncoderTakeOutput(brotli, &size);
      out.append(reinterpret_cast<const char*>(output), size);
      bool done = operation == BROTLI_OPERATION_FINISH
                      ? BrotliEncoderIsFinished(brotli) != BROTLI_FALSE
                      : available_in == 0 && BrotliEncoderHasMoreOutput(brotli) == BROTLI_FALSE;
      if (done) return;
    }
  }

  void write(std::string_view input, std::string& out) {
    if (is_brotli) {
      run_brotli(input, BROTLI_OPERATION_PROCESS, out);
    } else {
      run_zlib(input, Z_NO_FLUSH, out);
    }
  }
  void flush(std::string& out) {
    if (is_brotli) {
      run_brotli({}, BROTLI_OPERATION_FLUSH, out);
    } else {
      run_zlib({}, Z_SYNC_FLUSH, out);
    }
  }
  void finish(std::string& out) {
    if (is_brotli) {
      run_brotli({}, BROTLI_OPERATION_FINISH, out);
    } else {
      run_zlib({}, Z_FINISH, out);
    }
  }

  bool is_brotli;
  z_stream zlib{};  // zalloc, zfree and opaque null: zlib's malloc and free
  BrotliEncoderState* brotli = nullptr;
  bool unflushed = false;  // written to since the last flush
};

Compressor::Compressor(ContentCoding coding, int level) : coding_(coding) {
  int checked = checked_level(coding, level);
  if (coding != ContentCoding::identity) state_ = std::make_unique<State>(coding, checked);
}

// A moved-from Compressor is finished: without its state it must not pass its input through unencoded.
Compressor::Compressor(Compressor&& other) noexcept
    : coding_(other.coding_), state_(std::move(other.state_)), finished_(std::exchange(other.finished_, true)) {}

Compressor& Compressor::operator=(Compressor&& other) noexcept {
  if (this != &other) {
    coding_ = other.coding_;
    state_ = std::move(other.state_);
    finished_ = std::exchange(other.finished_, true);
  }
  return *this;
}

Compressor::~Compressor() = default;

void Compressor::write(std::string_view input, std::string& out) {
  if (finished_) throw std::logic_error("Compressor::write after finish");
  if (input.empty()) return;
  if (!state_) {
    out.append(input);
    return;
  }
  state_->write(input, out);
  state_->unflushed = true;
}

void Compressor::flush(std::string& out) {
  if (finished_) throw std::logic_error("Compressor::flush after finish");
  // A flush with nothing new would add an empty block (5 bytes for zlib) and say nothing.
  if (!state_ || !state_->unflushed) return;
  state_->flush(out);
  state_->unflushed = false;
}

void Compressor::finish(std::string& out) {
  if (finished_) throw std::logic_error("Compressor::finish called twice");
  if (state_) {
    state_->finish(out);
    state_.reset();
  }
  finished_ = true;
}

bool Compressor::is_finished() const noexcept { return finished_; }

std::string compress(ContentCoding coding, std::string_view whole, int level) {
  Compressor compressor{coding, level};
  std::string out;
  compressor.write(whole, out);
  compressor.finish(out);
  return out;
}

namespace {

// Subtypes of application/ that are text in all but name, or binary that compresses well (WebAssembly,
// fonts in the uncompressed sfnt format). Anything unknown stays uncompressed: it may already be.
constexpr std::string_view kCompressibleApplication[] = {
    "json",
    "javascript",
    "x-javascript",
    "ecmascript",
    "xml",
    "wasm",
    "x-ndjson",
    "yaml",
    "x-yaml",
    "toml",
    "graphql",
    "sql",
    "x-sh",
    "rtf",
    "x-www-form-urlencoded",
    "font-sfnt",
    "vnd.ms-fontobject",
    "x-font-ttf",
    "x-font-otf",
};
// TrueType and OpenType are uncompressed; WOFF is zlib inside and WOFF2 is brotli inside.
constexpr std::string_view kCompressibleFont[] = {"ttf", "otf", "sfnt", "collection"};
// The bitmaps browsers still fetch that are stored uncompressed (favicon.ico is usually a BMP inside).
constexpr std::string_view kCompressibleImage[] = {"bmp", "x-ms-bmp", "x-icon", "vnd.microsoft.icon"};

bool contains_ignoring_case(std::span<const std::string_view> list, std::string_view name) noexcept {
  return std::any_of(list.begin(), list.end(), [&](std::string_view entry) { return iequals(entry, name); });
}

}  // namespace

bool is_compressible_content_type(std::string_view content_type) noexcept {
  auto essence = media_type_essence(content_type);
  auto slash = essence.find('/');
  if (slash == std::string_view::npos) return false;
  auto type = essence.substr(0, slash);
  auto subtype = essence.substr(slash + 1);
  if (!is_token(type) || !is_token(subtype)) return false;

  if (iequals(type, "text")) return true;  // text/event-stream too: the caller flushes after each event
  // Structured syntax suffixes (RFC 6839, RFC 9512): application/problem+json, image/svg+xml,
  // application/atom+xml... are JSON, XML or YAML whatever their type.
  if (auto plus = subtype.rfind('+'); plus != std::string_view::npos) {
    auto suffix = subtype.substr(plus + 1);
    if (iequals(suffix, "json") || iequals(suffix, "xml") || iequals(suffix, "yaml")) return true;
  }
  if (iequals(type, "application")) return contains_ignoring_case(kCompressibleApplication, subtype);
  if (iequals(type, "font")) return contains_ignoring_case(kCompressibleFont, subtype);
  if (iequals(type, "image")) return contains_ignoring_case(kCompressibleImage, subtype);
  return false;  // audio and video (compressed by their codecs), multipart (its parts say), the rest unknown
}

}  // namespace spindle::http::detail
