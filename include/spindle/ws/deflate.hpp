#pragma once
// permessage-deflate (RFC 7692): the handshake's negotiation and the per-message codec. The connection
// (websocket.cpp) negotiates with negotiate_deflate (server) or deflate_offer and accept_deflate_answer
// (client), then compresses each outgoing message whole with a MessageDeflater and feeds each incoming
// compressed message (RSV1 on its first frame) to a MessageInflater, frame by frame.
//
// Memory. zlib's streams are large next to the rest of a connection, so by default neither side keeps
// one between messages ("no context takeover" both ways): a message takes a stream from a small
// per-thread pool of idle ones and gives it back when it is done, and an idle connection holds no zlib
// memory at all. With context takeover each direction keeps its stream for the connection's life,
// which compresses many small, similar messages better. Bytes per stream, counted through zlib's zalloc
// and zfree (zlib 1.2.13, Debian 12; DeflateMemory.Figures in tests/ws_deflate_test.cpp prints them),
// plus 136 bytes of our own around each z_stream:
//
//   inflate, state only (the window comes with the first output)     7,160
//   inflate, windowBits 15 / 12 / 9                                 39,928 / 11,256 / 7,672
//   deflate, windowBits 15, memLevel 8 (zlib's and our default)    268,096
//   deflate, windowBits 15, memLevel 9                             399,168
//   deflate, windowBits 12, memLevel 5                              38,720
//   deflate, windowBits 9,  memLevel 1                               9,024
//
// deflate allocates everything in deflateInit2: a window of 2^(windowBits+1) bytes, hash chains of
// 2^(windowBits+1), a hash table of 2^(memLevel+8) and a pending buffer of 2^(memLevel+8), plus a
// 5.8 KB state. So a compressed connection holds:
//  - without context takeover (the default): 0 bytes between messages. A message in progress holds
//    one stream for its duration (an incoming one across its frames: 40 KB; an outgoing one only inside
//    MessageDeflater::deflate). Each thread keeps at most 8 idle streams, 4 of a kind, for all its
//    connections: about 160 KB of inflate plus 268 KB per deflate setting in use.
//  - with context takeover both ways, at the defaults: 268 KB + 40 KB = 308 KB, for the connection's
//    life. Windows of 12 bits and memLevel 5 make it 39 KB + 11 KB = 50 KB.
//
// Decisions:
//  - 8-bit windows. zlib's deflate cannot use a 256-byte window (deflateInit2 refuses raw windowBits 8
//    since 1.2.9, zlib issue #171), but a peer may ask for one (server_max_window_bits=8 in an offer,
//    client_max_window_bits=8 in an answer). We then compress with windowBits 9, which is safe: zlib's
//    deflate never looks further back than its window size minus MIN_LOOKAHEAD (262) bytes (MAX_DIST in
//    deflate.h), 250 bytes for a 512-byte window, which a 256-byte window decodes. The test
//    WindowBits8.NineBitDeflateDecodesWithEightBitWindow checks it against the zlib we link: data that
//    repeats at distances up to 520, compressed at several levels and memLevels, decodes with an
//    inflater that takes every back-reference from its 256-byte window (and 15-bit output does not).
//    Declining such offers would also be correct, but costs the peer compression for nothing.
//  - An empty message compresses to the single byte 0x00 (RFC 7692 7.2.3.6: with the tail the receiver
//    appends, an empty stored block). An empty compressed payload is accepted too, as empty.
//  - Level 1 by default (zlib's default is 6): messages are compressed on the connection's thread as
//    they are sent. On JSON messages without context takeover (one core, zlib 1.2.13), level 1 runs
//    1.4, 2.1 and 2.6 times as fast as level 6 at 2 KB, 20 KB and 200 KB per message (153, 334, 330
//    MB/s against 109, 159, 125) for output 9, 21 and 27% larger; under 1 KB the two are alike.
//
// zlib stays behind this header: its streams live in deflate.cpp.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "spindle/result.hpp"

namespace spindle::ws {

/// permessage-deflate settings of one side, server or client. The defaults keep zlib memory per
/// connection at zero while it is idle (see the top of this header): no context takeover either way,
/// so a zlib stream exists only while a message is being compressed or decompressed, taken from and
/// returned to a small per-thread pool.
///
///   DeflateConfig chat{.server_no_context_takeover = false};  // the server keeps its compressor: many
///                                                             // small, similar messages compress better
///
/// Out-of-range values are a bug: the functions that take a config throw std::invalid_argument.
struct DeflateConfig {
  /// The server resets its compressor for every message. A server sets it in its answer even if the
  /// client did not ask; a client asks for it in its offer, and fails the connection if refused.
  bool server_no_context_takeover = true;
  /// The client resets its compressor for every message. A server sets it in its answer; a client
  /// promises it in its offer.
  bool client_no_context_takeover = true;
  /// The largest LZ77 window of the server's compressor, 9 to 15 (512 bytes to 32 KiB; 8 is not
  /// offered, as zlib cannot compress with it: see the top of this header).
  int server_max_window_bits = 15;
  /// The largest window of the client's compressor, 9 to 15. A server can only ask a client that
  /// offered client_max_window_bits (browsers do); others may use 15.
  int client_max_window_bits = 15;
  /// zlib level (0 to 9, -1 for zlib's 6) of the messages this side sends. 1, zlib's fastest: messages
  /// are compressed as they are sent, and on JSON of 2 to 200 KB level 1 is 1.4 to 2.6 times as fast
  /// as level 6 for 9 to 27% more bytes (measured: see the top of this header).
  int level = 1;
  /// zlib memLevel (1 to 9) of this side's compressor: its hash table and its pending buffer are
  /// 2^(mem_level + 8) bytes each; 8 is zlib's default.
  int mem_level = 8;
  /// Messages shorter than this are sent uncompressed (RSV1 clear), which RFC 7692 allows per message:
  /// below about 64 bytes deflate's block header and Huffman codes cost as much as they save.
  std::size_t min_size = 64;
};

/// The parameters both sides agreed on in the handshake. Each direction then has a window and a
/// context rule: the server's messages use server_*, the client's client_*.
///
///   // on the server: decode what the client sends, encode what the server sends
///   detail::MessageInflater inflater{params.client_max_window_bits, params.client_no_context_takeover};
///   detail::MessageDeflater deflater{params.server_max_window_bits, params.server_no_context_takeover,
///                                    config.level, config.mem_level};
struct DeflateParams {
  bool server_no_context_takeover = false;
  bool client_no_context_takeover = false;
  int server_max_window_bits = 15;  ///< 8 to 15
  int client_max_window_bits = 15;  ///< 8 to 15
  bool operator==(const DeflateParams&) const = default;
};

namespace detail {

/// What the server accepted: the parameters, and the Sec-WebSocket-Extensions value to answer with.
struct DeflateAgreement {
  DeflateParams params;
  std::string response;  ///< "permessage-deflate; server_no_context_takeover; ..."
};

/// Server side: the first acceptable permessage-deflate offer in the request's Sec-WebSocket-Extensions
/// value (several header lines joined with ", "), or nullopt for no compression.
///
///   auto agreement = negotiate_deflate("permessage-deflate; client_max_window_bits", DeflateConfig{});
///   // agreement->response == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
///
/// Offers are comma-separated, parameters `;`-separated, names case-insensitive, values tokens or quoted
/// strings. An offer with an unknown, repeated or invalid parameter is declined and the next one tried;
/// other extensions are ignored. The answer:
///  - adds server_no_context_takeover and client_no_context_takeover when the config asks for them,
///    even if not offered (RFC 7692 7.1.1), and keeps them when offered;
///  - honours a server_max_window_bits offer, with the config's value if smaller (8 is accepted: we
///    compress with 9, which a 256-byte window decodes; see the top of this header);
///  - asks for the config's client_max_window_bits only if the offer named that parameter, and no more
///    than the offer's value; otherwise the client may use a 32 KiB window.
std::optional<DeflateAgreement> negotiate_deflate(std::string_view extensions, const DeflateConfig& config);

/// Client side: the Sec-WebSocket-Extensions value to send.
///
///   deflate_offer(DeflateConfig{})
///   // "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
std::string deflate_offer(const DeflateConfig& config);

/// Client side: the server's Sec-WebSocket-Extensions answer to deflate_offer(config), when there is one
/// (no header means no compression). An answer the client cannot accept is the error: the client must
/// then fail the connection (RFC 7692 5). That is an unknown, repeated or malformed parameter, another
/// extension or more than one, client_max_window_bits above what was offered, a server window above the
/// one asked for or not confirmed, or server_no_context_takeover asked for and not confirmed.
///
///   auto params = accept_deflate_answer("permessage-deflate; server_no_context_takeover; "
///                                       "client_no_context_takeover; client_max_window_bits=10", config);
///   // params->client_max_window_bits == 10
Result<DeflateParams, std::string> accept_deflate_answer(std::string_view answer, const DeflateConfig& config);

/// A zlib stream and its allocation count (defined in deflate.cpp, which keeps zlib.h out of here).
struct ZlibStream;

/// Gives a stream back to this thread's pool, reset, or frees it if the pool has enough.
struct ZlibStreamRecycler {
  void operator()(ZlibStream* stream) const noexcept;
};
using PooledZlibStream = std::unique_ptr<ZlibStream, ZlibStreamRecycler>;

/// How many idle streams this thread's pool holds (for tests and metrics).
std::size_t idle_stream_count() noexcept;

/// Decompresses the messages one side receives. A stream may be taken on one thread and returned on
/// another (a coroutine moves between workers): the pool is per thread, the streams are not.
///
///   MessageInflater inflater{params.client_max_window_bits, params.client_no_context_takeover};
///   std::string message;
///   for (each frame of a message with RSV1 set on its first frame)
///     if (inflater.inflate(frame_payload, message, max_message_size) != MessageInflater::Status::ok) fail;
///   if (inflater.finish(message, max_message_size) != MessageInflater::Status::ok) fail;
///
/// `window_bits` is the peer's largest window (8 to 15); `no_context_takeover` whether the peer resets
/// its compressor for every message. Without context takeover the stream comes from the pool with a
/// 15-bit window, whatever `window_bits` says: a larger window decodes anything a smaller one made, and
/// one kind of stream then serves every connection (a peer that uses more window than it agreed to is
/// not caught). With context takeover the stream has exactly `window_bits` and stays for the
/// connection's life. A failure (too_big, corrupt) is final: the object keeps returning it.
class MessageInflater {
 public:
  enum class Status {
    ok,
    too_big,  ///< the message would be larger than the limit (close with 1009)
    corrupt,  ///< not valid deflate data (close with 1007)
  };

  MessageInflater(int window_bits, bool no_context_takeover);
  MessageInflater(MessageInflater&&) noexcept = default;
  MessageInflater& operator=(MessageInflater&&) noexcept = default;
  ~MessageInflater() = default;

  /// Inflates the next piece of a compressed message, appending to `out`. too_big as soon as `out`
  /// would grow past `limit` bytes: it never does, so a deflate bomb costs at most `limit` bytes of
  /// output plus a 16 KiB stack buffer.
  Status inflate(std::string_view input, std::string& out, std::size_t limit);

  /// Ends the message: feeds the 0x00 0x00 0xff 0xff tail RFC 7692 7.2.2 says to append, checks that
  /// the data ended where a message must (at the end of a block), and without context takeover gives
  /// the stream back to the pool. The next inflate() starts the next message.
  Status finish(std::string& out, std::size_t limit);

  /// Bytes of zlib state this object holds now: 0 between messages without context takeover.
  std::size_t memory() const noexcept;

 private:
  Status run(std::string_view input, std::string& out, std::size_t limit);
  void restart_stream();
  Status fail(Status status) noexcept;

  PooledZlibStream stream_;
  int window_bits_;
  bool no_context_takeover_;
  Status failure_ = Status::ok;
  bool message_has_input_ = false;       // an empty payload is an empty message
  bool at_stream_start_ = false;         // the data so far ended with a final block (BFINAL)
  bool restarted_this_message_ = false;  // the window was carried over a final block once already
};

/// Compresses the messages one side sends, each whole (RFC 7692 7.2.1: Z_SYNC_FLUSH, and the
/// 00 00 ff ff it ends with removed). Send the result in frames with RSV1 set on the first one.
///
///   MessageDeflater deflater{params.server_max_window_bits, params.server_no_context_takeover,
///                            config.level, config.mem_level};
///   std::string payload;
///   deflater.deflate(message, payload);
///
/// With context takeover every compressed message must reach the peer, in order: the peer's window has
/// to follow ours. `window_bits` 8 compresses with 9 (see the top of this header); `level` is -1 to 9,
/// `mem_level` 1 to 9. Without context takeover the stream comes from the thread's pool for the call.
class MessageDeflater {
 public:
  MessageDeflater(int window_bits, bool no_context_takeover, int level, int mem_level);

  /// Appends `message` compressed to `out`; an empty message gives the single byte 0x00.
  void deflate(std::string_view message, std::string& out);

  /// Bytes of zlib state this object holds now: always 0 without context takeover.
  std::size_t memory() const noexcept;

 private:
  PooledZlibStream stream_;
  int window_bits_;
  int level_;
  int mem_level_;
  bool no_context_takeover_;
};

}  // namespace detail
}  // namespace spindle::ws
