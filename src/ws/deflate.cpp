// permessage-deflate (RFC 7692): negotiation, and the per-message codec on top of zlib's raw deflate.
// The design, the memory figures and the decisions (8-bit windows, empty messages, the default level)
// are in include/spindle/ws/deflate.hpp; what is here is how.
//
// Streams. Every z_stream lives in a heap-allocated ZlibStream (zlib's state points back at the
// z_stream, so it must not move) whose allocations go through counting_alloc/counting_free: memory()
// is then exact, not an estimate. A stream that is not needed between messages goes back to a
// thread_local pool of idle streams, reset; the next message on this thread, whichever connection it
// belongs to, takes it instead of paying deflateInit2's 256 KiB allocation and zeroing again.

#include "spindle/ws/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <stdexcept>
#include <vector>

#include "spindle/http/detail/field_syntax.hpp"

namespace spindle::ws {
namespace detail {

using spindle::http::detail::iequals;
using spindle::http::detail::is_tchar;
using spindle::http::detail::is_token;
using spindle::http::detail::trim_ows;

namespace {

constexpr std::string_view kExtensionName = "permessage-deflate";
constexpr int kLargestWindowBits = 15;  // RFC 7692 7.1.2: 8 to 15, absent means 15
constexpr int kSmallestWindowBits = 8;
// zlib's deflate cannot honour an 8-bit window (deflateInit2 refuses -8); 9 is safe: see the header.
constexpr int kSmallestDeflateWindowBits = 9;
// RFC 7692 7.2.1: Z_SYNC_FLUSH ends the data with an empty stored block whose LEN and NLEN are these
// four bytes; the sender removes them and the receiver (7.2.2) puts them back.
constexpr std::string_view kSyncFlushTail{"\x00\x00\xff\xff", 4};

// Inflated output is produced into this much stack, then appended: zlib needs a place to write more than
// the limit allows (to learn that the message is too big) without `out` ever growing past the limit.
constexpr std::size_t kInflateChunk = 16 * 1024;
// zlib counts input in 32-bit uInt: a larger piece is fed in parts.
constexpr std::size_t kMaxZlibInput = std::size_t{1} << 30;

// ---- negotiation: the Sec-WebSocket-Extensions grammar (RFC 6455 9.1) ----
//
//   extension-list = 1#extension
//   extension      = extension-token *( ";" extension-param )
//   extension-param = token [ "=" (token | quoted-string) ]
//
// "When using the quoted-string syntax variant, the value after quoted-string unescaping MUST conform to
// the 'token' ABNF": a quoted value is unquoted and must then be a token.

/// Splits `list` at every `separator` that is not inside a quoted string (a value may quote a comma).
std::vector<std::string_view> split_outside_quotes(std::string_view list, char separator) {
  std::vector<std::string_view> parts;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < list.size(); ++i) {
    char c = list[i];
    if (quoted) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        quoted = false;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == separator) {
      parts.push_back(list.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(list.substr(start));
  return parts;
}

/// A quoted-string's content with its escapes resolved, or nullopt if `text` is not one quoted string.
std::optional<std::string> unquote(std::string_view text) {
  if (text.size() < 2 || text.front() != '"' || text.back() != '"') return std::nullopt;
  std::string value;
  for (std::size_t i = 1; i + 1 < text.size(); ++i) {
    char c = text[i];
    if (c == '"') return std::nullopt;  // a quote that ends the string early: `"a"b"`
    if (c == '\\') {
      if (i + 2 >= text.size()) return std::nullopt;  // the backslash escapes the closing quote
      c = text[++i];
    }
    value.push_back(c);
  }
  return value;
}

struct ExtensionParameter {
  std::string_view name;
  std::optional<std::string> value;  // unquoted
};

struct Extension {
  std::string_view name;
  std::vector<ExtensionParameter> parameters;
};

/// One element of the list, or nullopt if it does not follow the grammar.
std::optional<Extension> parse_extension(std::string_view element) {
  auto pieces = split_outside_quotes(element, ';');
  Extension extension{trim_ows(pieces[0]), {}};
  if (!is_token(extension.name)) return std::nullopt;
  for (std::size_t i = 1; i < pieces.size(); ++i) {
    auto piece = trim_ows(pieces[i]);
    auto equals = piece.find('=');  // a name is a token, which has no '=' and no '"'
    ExtensionParameter parameter{trim_ows(piece.substr(0, equals)), std::nullopt};
    if (!is_token(parameter.name)) return std::nullopt;
    if (equals != std::string_view::npos) {
      auto raw = trim_ows(piece.substr(equals + 1));
      if (!raw.empty() && raw.front() == '"') {
        parameter.value = unquote(raw);
        if (!parameter.value || !is_token(*parameter.value)) return std::nullopt;
      } else {
        if (!is_token(raw)) return std::nullopt;
        parameter.value = std::string{raw};
      }
    }
    extension.parameters.push_back(std::move(parameter));
  }
  return extension;
}

/// The list's elements that are not empty (RFC 9110 5.6.1 allows empty ones, which mean nothing), each
/// parsed or nullopt.
std::vector<std::optional<Extension>> parse_extension_list(std::string_view list) {
  std::vector<std::optional<Extension>> extensions;
  for (auto element : split_outside_quotes(list, ',')) {
    if (trim_ows(element).empty()) continue;
    extensions.push_back(parse_extension(element));
  }
  return extensions;
}

/// "8" to "15", decimal without leading zeros (RFC 7692 7.1.2.1).
std::optional<int> parse_window_bits(std::string_view text) noexcept {
  if (text.size() == 1 && (text[0] == '8' || text[0] == '9')) return text[0] - '0';
  if (text.size() == 2 && text[0] == '1' && text[1] >= '0' && text[1] <= '5') return 10 + (text[1] - '0');
  return std::nullopt;
}

/// The permessage-deflate parameters of one offer or answer, each checked on its own.
struct DeflateParameters {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  std::optional<int> server_max_window_bits;
  bool has_client_max_window_bits = false;
  std::optional<int> client_max_window_bits;  // an offer's may have no value
};

/// Reads the parameters; an unknown, repeated or malformed one is an error (RFC 7692 5: "the server
/// MUST decline an offer" with any of those, and "the client MUST fail" on such an answer).
Result<DeflateParameters, std::string> read_parameters(const Extension& extension, bool is_offer) {
  DeflateParameters parameters;
  bool seen_server_window = false;
  for (const auto& parameter : extension.parameters) {
    auto name = parameter.name;
    auto repeated = [&] { return Err{"permessage-deflate parameter " + std::string{name} + " appears twice"}; };
    auto bad_value = [&] {
      return Err{"permessage-deflate parameter " + std::string{name} + " has an invalid value" +
                 (parameter.value ? " \"" + *parameter.value + "\"" : std::string{" (none)"})};
    };
    if (iequals(name, "server_no_context_takeover") || iequals(name, "client_no_context_takeover")) {
      bool& flag = iequals(name, "server_no_context_takeover") ? parameters.server_no_context_takeover
                                                               : parameters.client_no_context_takeover;
      if (flag) return repeated();
      if (parameter.value) return bad_value();
      flag = true;
    } else if (iequals(name, "server_max_window_bits")) {
      if (seen_server_window) return repeated();
      seen_server_window = true;
      parameters.server_max_window_bits = parameter.value ? parse_window_bits(*parameter.value) : std::nullopt;
      if (!parameters.server_max_window_bits) return bad_value();
    } else if (iequals(name, "client_max_window_bits")) {
      if (parameters.has_client_max_window_bits) return repeated();
      parameters.has_client_max_window_bits = true;
      // An offer may name it without a value ("I can limit my window if you say so"); an answer sets
      // the limit, so it needs one.
      if (parameter.value || !is_offer) {
        parameters.client_max_window_bits = parameter.value ? parse_window_bits(*parameter.value) : std::nullopt;
        if (!parameters.client_max_window_bits) return bad_value();
      }
    } else {
      return Err{"unknown permessage-deflate parameter " + std::string{name}};
    }
  }
  return parameters;
}

void check_window_bits(const char* what, int bits, int smallest) {
  if (bits < smallest || bits > kLargestWindowBits) {
    throw std::invalid_argument(std::string{what} + " is " + std::to_string(bits) + ", outside " +
                                std::to_string(smallest) + " to 15");
  }
}

void check_level(int level, int mem_level) {
  if (level < Z_DEFAULT_COMPRESSION || level > Z_BEST_COMPRESSION) {
    throw std::invalid_argument("deflate level " + std::to_string(level) + " is outside -1 to 9");
  }
  if (mem_level < 1 || mem_level > MAX_MEM_LEVEL) {
    throw std::invalid_argument("deflate mem_level " + std::to_string(mem_level) + " is outside 1 to 9");
  }
}

void check_config(const DeflateConfig& config) {
  check_window_bits("DeflateConfig::server_max_window_bits", config.server_max_window_bits, kSmallestDeflateWindowBits);
  check_window_bits("DeflateConfig::client_max_window_bits", config.client_max_window_bits, kSmallestDeflateWindowBits);
  check_level(config.level, config.mem_level);
}

void append_parameter(std::string& header, std::string_view name) {
  header += "; ";
  header += name;
}

void append_parameter(std::string& header, std::string_view name, int value) {
  append_parameter(header, name);
  header += '=';
  header += std::to_string(value);
}

}  // namespace

// ---- negotiation ----

std::optional<DeflateAgreement> negotiate_deflate(std::string_view extensions, const DeflateConfig& config) {
  check_config(config);
  for (const auto& extension : parse_extension_list(extensions)) {
    // A malformed element may have been meant as permessage-deflate; declining it is all we can do.
    if (!extension || !iequals(extension->name, kExtensionName)) continue;
    auto offer = read_parameters(*extension, /*is_offer=*/true);
    if (!offer) continue;

    DeflateParams params;
    // RFC 7692 7.1.1: the server may ask for either even if the client did not; when the client asked,
    // accepting the offer means agreeing (server_...) or the client resets anyway (client_..., a hint).
    params.server_no_context_takeover = offer->server_no_context_takeover || config.server_no_context_takeover;
    params.client_no_context_takeover = offer->client_no_context_takeover || config.client_no_context_takeover;
    // 7.1.2.1: the client's limit for the server's window; ours may be smaller still.
    params.server_max_window_bits =
        std::min(config.server_max_window_bits, offer->server_max_window_bits.value_or(kLargestWindowBits));
    // 7.1.2.2: only a client that names client_max_window_bits can be told to limit its window; its value,
    // if any, is the most it will use, and the answer may only lower it.
    params.client_max_window_bits =
        offer->has_client_max_window_bits
            ? std::min(config.client_max_window_bits, offer->client_max_window_bits.value_or(kLargestWindowBits))
            : kLargestWindowBits;

    std::string answer{kExtensionName};
    if (params.server_no_context_takeover) append_parameter(answer, "server_no_context_takeover");
    if (params.client_no_context_takeover) append_parameter(answer, "client_no_context_takeover");
    // Accepting a server_max_window_bits offer means answering it (7.1.2.1); otherwise 15 goes unsaid.
    if (offer->server_max_window_bits || params.server_max_window_bits < kLargestWindowBits) {
      append_parameter(answer, "server_max_window_bits", params.server_max_window_bits);
    }
    if (params.client_max_window_bits < kLargestWindowBits) {
      append_parameter(answer, "client_max_window_bits", params.client_max_window_bits);
    }
    return DeflateAgreement{params, std::move(answer)};
  }
  return std::nullopt;
}

std::string deflate_offer(const DeflateConfig& config) {
  check_config(config);
  std::string offer{kExtensionName};
  if (config.server_no_context_takeover) append_parameter(offer, "server_no_context_takeover");
  if (config.client_no_context_takeover) append_parameter(offer, "client_no_context_takeover");
  if (config.server_max_window_bits < kLargestWindowBits) {
    append_parameter(offer, "server_max_window_bits", config.server_max_window_bits);
  }
  // Always named: it costs nothing and lets a server with little memory ask for a smaller window.
  if (config.client_max_window_bits < kLargestWindowBits) {
    append_parameter(offer, "client_max_window_bits", config.client_max_window_bits);
  } else {
    append_parameter(offer, "client_max_window_bits");
  }
  return offer;
}

Result<DeflateParams, std::string> accept_deflate_answer(std::string_view answer, const DeflateConfig& config) {
  check_config(config);
  auto extensions = parse_extension_list(answer);
  if (extensions.empty()) return Err{std::string{"the server answered an empty Sec-WebSocket-Extensions"}};
  if (extensions.size() > 1) {
    return Err{"the server answered " + std::to_string(extensions.size()) +
               " extensions where one (permessage-deflate) was offered"};
  }
  if (!extensions[0]) return Err{"malformed Sec-WebSocket-Extensions answer: " + std::string{answer}};
  if (!iequals(extensions[0]->name, kExtensionName)) {
    return Err{"the server answered the extension " + std::string{extensions[0]->name} + ", which was not offered"};
  }
  auto parameters = read_parameters(*extensions[0], /*is_offer=*/false);
  if (!parameters) return Err{std::move(parameters).error()};

  // 7.1.1.1: a server that accepts an offer with server_no_context_takeover must say so.
  if (config.server_no_context_takeover && !parameters->server_no_context_takeover) {
    return Err{std::string{"the server did not agree to server_no_context_takeover"}};
  }
  // 7.1.2.1: an offered server_max_window_bits must be answered, with the same value or less.
  if (config.server_max_window_bits < kLargestWindowBits) {
    if (!parameters->server_max_window_bits) {
      return Err{"the server did not answer server_max_window_bits=" + std::to_string(config.server_max_window_bits)};
    }
    if (*parameters->server_max_window_bits > config.server_max_window_bits) {
      return Err{"the server's window (server_max_window_bits=" + std::to_string(*parameters->server_max_window_bits) +
                 ") is larger than the " + std::to_string(config.server_max_window_bits) + " offered"};
    }
  }
  // 7.1.2.2: the answer may only lower the value offered (15 when offered without one).
  if (parameters->client_max_window_bits && *parameters->client_max_window_bits > config.client_max_window_bits) {
    return Err{"the server allows client_max_window_bits=" + std::to_string(*parameters->client_max_window_bits) +
               ", more than the " + std::to_string(config.client_max_window_bits) + " offered"};
  }

  DeflateParams params;
  params.server_no_context_takeover = parameters->server_no_context_takeover;
  // Offering client_no_context_takeover is a promise (7.1.1.2) whatever the answer says.
  params.client_no_context_takeover = parameters->client_no_context_takeover || config.client_no_context_takeover;
  params.server_max_window_bits = parameters->server_max_window_bits.value_or(kLargestWindowBits);
  params.client_max_window_bits = parameters->client_max_window_bits.value_or(config.client_max_window_bits);
  return params;
}

// ---- zlib streams and the per-thread pool ----

/// One z_stream and what it is: streams of the same kind are interchangeable once reset.
struct ZlibStream {
  enum class Kind : unsigned char { inflate, deflate };
  struct Settings {
    Kind kind;
    int window_bits;
    int level;      // deflate only
    int mem_level;  // deflate only
    bool operator==(const Settings&) const = default;
  };

  explicit ZlibStream(Settings stream_settings) : settings(stream_settings) {}

  Settings settings;
  z_stream zlib{};
  std::size_t allocated = 0;  // bytes zlib holds through counting_alloc
};

namespace {

// Each block starts with its size, so that counting_free can subtract it (zfree gets only the address);
// a whole max_align_t keeps the block as aligned as malloc's.
constexpr std::size_t kBlockHeader = alignof(std::max_align_t);

voidpf counting_alloc(voidpf opaque, uInt items, uInt size) noexcept {
  std::size_t bytes = std::size_t{items} * size;  // two 32-bit factors: no overflow in 64 bits
  void* block = std::malloc(kBlockHeader + bytes);
  if (block == nullptr) return Z_NULL;
  std::memcpy(block, &bytes, sizeof bytes);
  static_cast<ZlibStream*>(opaque)->allocated += bytes;
  return static_cast<char*>(block) + kBlockHeader;
}

void counting_free(voidpf opaque, voidpf address) noexcept {
  if (address == Z_NULL) return;
  char* block = static_cast<char*>(address) - kBlockHeader;
  std::size_t bytes = 0;
  std::memcpy(&bytes, block, sizeof bytes);
  static_cast<ZlibStream*>(opaque)->allocated -= bytes;
  std::free(block);
}

[[noreturn]] void throw_zlib_error(const z_stream& stream, int code, const char* during) {
  if (code == Z_MEM_ERROR) throw std::bad_alloc{};
  std::string message = std::string{"zlib "} + during + " failed (code " + std::to_string(code) + ")";
  if (stream.msg != nullptr) message += std::string{": "} + stream.msg;
  throw std::logic_error(message);  // anything but out-of-memory is a misuse of zlib: a bug here
}

void end_stream(ZlibStream* stream) noexcept {
  if (stream->settings.kind == ZlibStream::Kind::inflate) {
    inflateEnd(&stream->zlib);
  } else {
    deflateEnd(&stream->zlib);
  }
  delete stream;
}

ZlibStream* create_stream(ZlibStream::Settings settings) {
  auto stream = std::make_unique<ZlibStream>(settings);
  stream->zlib.zalloc = counting_alloc;
  stream->zlib.zfree = counting_free;
  stream->zlib.opaque = stream.get();
  // Negative windowBits: raw deflate, no zlib header or checksum (RFC 7692 7.2.1).
  int code = settings.kind == ZlibStream::Kind::inflate
                 ? inflateInit2(&stream->zlib, -settings.window_bits)
                 : deflateInit2(&stream->zlib, settings.level, Z_DEFLATED, -settings.window_bits, settings.mem_level,
                                Z_DEFAULT_STRATEGY);
  if (code != Z_OK) {
    // A failed init frees what it allocated; the stream is not ended, only deleted.
    throw_zlib_error(stream->zlib, code, settings.kind == ZlibStream::Kind::inflate ? "inflateInit2" : "deflateInit2");
  }
  return stream.release();
}

// At most this many idle streams of one kind per thread. Deflate takes and returns its stream within
// one call, so a thread keeps one per kind in practice; inflate holds one per message in progress,
// across frames and awaits, and 4 cover a burst of messages without keeping one per connection.
constexpr std::size_t kMaxIdlePerKind = 4;
// And at most this many in all, whatever the number of kinds (levels and windows) a program uses.
constexpr std::size_t kMaxIdle = 8;

enum class PoolState : unsigned char { unborn, alive, dead };
// Trivially destructible, so it can still be read while the thread's destructors run: a stream freed by
// another thread_local's destructor after the pool is gone must then be ended, not pooled.
thread_local PoolState pool_state = PoolState::unborn;

/// The idle streams of this thread.
class IdleStreams {
 public:
  IdleStreams() noexcept { pool_state = PoolState::alive; }
  IdleStreams(const IdleStreams&) = delete;
  IdleStreams& operator=(const IdleStreams&) = delete;
  ~IdleStreams() {
    pool_state = PoolState::dead;
    for (std::size_t i = 0; i < count_; ++i) end_stream(streams_[i]);
  }

  ZlibStream* take(const ZlibStream::Settings& settings) noexcept {
    for (std::size_t i = count_; i-- > 0;) {  // the most recently returned first: its memory is warm
      if (streams_[i]->settings == settings) {
        ZlibStream* stream = streams_[i];
        std::copy(streams_.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                  streams_.begin() + static_cast<std::ptrdiff_t>(count_),
                  streams_.begin() + static_cast<std::ptrdiff_t>(i));
        --count_;
        return stream;
      }
    }
    return nullptr;
  }

  /// Keeps a reset stream; false when this thread already keeps enough of them.
  bool keep(ZlibStream* stream) noexcept {
    if (count_ == kMaxIdle) return false;
    auto same_kind = std::count_if(streams_.begin(), streams_.begin() + static_cast<std::ptrdiff_t>(count_),
                                   [&](ZlibStream* idle) { return idle->settings == stream->settings; });
    if (static_cast<std::size_t>(same_kind) >= kMaxIdlePerKind) return false;
    streams_[count_++] = stream;
    return true;
  }

  std::size_t size() const noexcept { return count_; }

 private:
  std::array<ZlibStream*, kMaxIdle> streams_{};
  std::size_t count_ = 0;
};

IdleStreams& idle_streams() {
  thread_local IdleStreams streams;
  return streams;
}

PooledZlibStream acquire_stream(ZlibStream::Settings settings) {
  if (pool_state != PoolState::dead) {
    if (ZlibStream* idle = idle_streams().take(settings)) return PooledZlibStream{idle};
  }
  return PooledZlibStream{create_stream(settings)};
}

}  // namespace

void ZlibStreamRecycler::operator()(ZlibStream* stream) const noexcept {
  if (pool_state != PoolState::dead) {
    int code =
        stream->settings.kind == ZlibStream::Kind::inflate ? inflateReset(&stream->zlib) : deflateReset(&stream->zlib);
    if (code == Z_OK && idle_streams().keep(stream)) return;
  }
  end_stream(stream);
}

std::size_t idle_stream_count() noexcept { return pool_state == PoolState::alive ? idle_streams().size() : 0; }

// ---- MessageInflater ----

namespace {

// A pooled inflater always has the largest window: it decodes whatever window the peer used (distances
// up to 2^15 cover every smaller one), so one kind serves every connection on the thread.
constexpr ZlibStream::Settings kPooledInflate{ZlibStream::Kind::inflate, kLargestWindowBits, 0, 0};

}  // namespace

MessageInflater::MessageInflater(int window_bits, bool no_context_takeover)
    : window_bits_(window_bits), no_context_takeover_(no_context_takeover) {
  check_window_bits("MessageInflater window_bits", window_bits, kSmallestWindowBits);
}

MessageInflater::Status MessageInflater::fail(Status status) noexcept {
  failure_ = status;
  stream_.reset();  // the context is lost either way: the connection is about to close
  return status;
}

/// Starts a new deflate stream after one that ended (a block with BFINAL set, RFC 7692 7.2.3.3),
/// keeping the window once per message so that later data may still refer to earlier data.
void MessageInflater::restart_stream() {
  z_stream& zlib = stream_->zlib;
  // inflateReset forgets the window; inflateGetDictionary/inflateSetDictionary carry it over. Only
  // once a message: a peer could otherwise send two-byte final blocks to make us copy 32 KiB for each.
  std::unique_ptr<Bytef[]> window;
  uInt window_size = 0;
  if (!restarted_this_message_) {
    window = std::make_unique_for_overwrite<Bytef[]>(std::size_t{1} << stream_->settings.window_bits);
    if (inflateGetDictionary(&zlib, window.get(), &window_size) != Z_OK) window_size = 0;
    restarted_this_message_ = true;
  }
  // Reset keeps next_in and avail_in: the rest of the input is decoded as the new stream.
  int code = inflateReset(&zlib);
  if (code != Z_OK) throw_zlib_error(zlib, code, "inflateReset");
  if (window_size > 0) {
    code = inflateSetDictionary(&zlib, window.get(), window_size);
    if (code != Z_OK) throw_zlib_error(zlib, code, "inflateSetDictionary");
  }
}

MessageInflater::Status MessageInflater::run(std::string_view input, std::string& out, std::size_t limit) {
  z_stream& zlib = stream_->zlib;
  std::array<char, kInflateChunk> buffer;  // NOLINT: written by inflate before it is read
  do {
    auto piece = input.substr(0, kMaxZlibInput);
    input.remove_prefix(piece.size());
    zlib.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));  // zlib does not write it
    zlib.avail_in = static_cast<uInt>(piece.size());
    if (!piece.empty()) at_stream_start_ = false;
    for (;;) {
      std::size_t room = out.size() < limit ? limit - out.size() : 0;
      // One byte more than the room: zlib producing it is how the message turns out too big.
      std::size_t offered = room < buffer.size() ? room + 1 : buffer.size();
      zlib.next_out = reinterpret_cast<Bytef*>(buffer.data());
      zlib.avail_out = static_cast<uInt>(offered);
      int code = ::inflate(&zlib, Z_SYNC_FLUSH);
      std::size_t produced = offered - zlib.avail_out;
      if (produced > room) return fail(Status::too_big);
      out.append(buffer.data(), produced);
      if (code == Z_STREAM_END) {
        restart_stream();
        if (zlib.avail_in == 0) {
          at_stream_start_ = true;
          break;
        }
        continue;
      }
      if (code == Z_DATA_ERROR) return fail(Status::corrupt);
      if (code == Z_BUF_ERROR) break;  // no progress possible: the input is used up and the output flushed
      if (code != Z_OK) throw_zlib_error(zlib, code, "inflate");
      // Output space left over means inflate ran out of input, not of room.
      if (zlib.avail_in == 0 && zlib.avail_out != 0) break;
    }
  } while (!input.empty());
  return Status::ok;
}

MessageInflater::Status MessageInflater::inflate(std::string_view input, std::string& out, std::size_t limit) {
  if (failure_ != Status::ok) return failure_;
  if (input.empty()) return Status::ok;
  if (!stream_) {
    stream_ = acquire_stream(
        no_context_takeover_ ? kPooledInflate : ZlibStream::Settings{ZlibStream::Kind::inflate, window_bits_, 0, 0});
    at_stream_start_ = true;
  }
  message_has_input_ = true;
  return run(input, out, limit);
}

MessageInflater::Status MessageInflater::finish(std::string& out, std::size_t limit) {
  if (failure_ != Status::ok) return failure_;
  Status status = Status::ok;
  // Two endings need no tail: an empty payload (RFC 7692 7.2.3.6 asks for a single 0x00, but some
  // senders send nothing, and every decoder we know reads it as empty), and data whose last block had
  // BFINAL set (7.2.3.3 adds a 0x00 after it; the tail would then start a block it cannot finish).
  if (message_has_input_ && !at_stream_start_) {
    status = run(kSyncFlushTail, out, limit);
    // The tail ends an empty stored block: if inflate is not back at a block boundary (data_type's 128
    // bit), the payload was cut short or had bytes after its last block.
    if (status == Status::ok && (stream_->zlib.data_type & 128) == 0) status = fail(Status::corrupt);
  }
  message_has_input_ = false;
  restarted_this_message_ = false;
  if (status == Status::ok && no_context_takeover_) stream_.reset();  // back to the pool until the next message
  return status;
}

std::size_t MessageInflater::memory() const noexcept { return stream_ ? sizeof(ZlibStream) + stream_->allocated : 0; }

// ---- MessageDeflater ----

namespace {

/// The window zlib compresses with for an agreed `window_bits`: 9 for 8 (see the header).
int deflate_window_bits(int window_bits) {
  check_window_bits("MessageDeflater window_bits", window_bits, kSmallestWindowBits);
  return std::max(window_bits, kSmallestDeflateWindowBits);
}

int checked_level(int level, int mem_level) {
  check_level(level, mem_level);
  return level;
}

}  // namespace

MessageDeflater::MessageDeflater(int window_bits, bool no_context_takeover, int level, int mem_level)
    : window_bits_(deflate_window_bits(window_bits)),
      level_(checked_level(level, mem_level)),
      mem_level_(mem_level),
      no_context_takeover_(no_context_takeover) {}

void MessageDeflater::deflate(std::string_view message, std::string& out) {
  // RFC 7692 7.2.3.6: an empty message is the single byte 0x00, the header of an empty stored block
  // whose LEN and NLEN are the tail the receiver appends. zlib would give nothing at all on a stream
  // with context (a second sync flush adds no block), which decoders need not accept. Leaving zlib out
  // keeps both sides' windows as they are.
  if (message.empty()) {
    out.push_back('\0');
    return;
  }
  if (!stream_) stream_ = acquire_stream({ZlibStream::Kind::deflate, window_bits_, level_, mem_level_});
  z_stream& zlib = stream_->zlib;
  std::size_t start = out.size();
  try {
    // Room for all of it at once: deflateBound's worst case for this input, plus the sync flush's
    // empty block. Writing straight into `out` saves a copy; a second round is for safety only.
    std::size_t bound = deflateBound(&zlib, static_cast<uLong>(std::min(message.size(), kMaxZlibInput))) + 16;
    std::size_t written = start;
    do {
      auto piece = message.substr(0, kMaxZlibInput);
      message.remove_prefix(piece.size());
      int flush = message.empty() ? Z_SYNC_FLUSH : Z_NO_FLUSH;  // one flush, after all the input
      zlib.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
      zlib.avail_in = static_cast<uInt>(piece.size());
      do {
        out.resize(written + bound);
        zlib.next_out = reinterpret_cast<Bytef*>(out.data() + written);
        zlib.avail_out = static_cast<uInt>(bound);
        int code = ::deflate(&zlib, flush);
        if (code != Z_OK && code != Z_BUF_ERROR) throw_zlib_error(zlib, code, "deflate");
        written += bound - zlib.avail_out;
      } while (zlib.avail_out == 0);
    } while (!message.empty());
    out.resize(written);
    // 7.2.1: the sync flush ends with 00 00 ff ff, which is not sent.
    if (written - start < kSyncFlushTail.size() ||
        std::string_view{out}.substr(written - kSyncFlushTail.size()) != kSyncFlushTail) {
      throw std::logic_error("zlib's sync flush did not end with 00 00 ff ff");
    }
    out.resize(written - kSyncFlushTail.size());
  } catch (...) {
    // Half a message went into the window but will not reach the peer: this context is useless now.
    // A fresh one is fine for the next message (a compressor that ignores the history is always
    // decodable), and without context takeover the pool resets it anyway.
    out.resize(start);
    stream_.reset();
    throw;
  }
  if (no_context_takeover_) stream_.reset();
}

std::size_t MessageDeflater::memory() const noexcept { return stream_ ? sizeof(ZlibStream) + stream_->allocated : 0; }

}  // namespace detail
}  // namespace spindle::ws
