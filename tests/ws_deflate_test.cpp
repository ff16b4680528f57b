// permessage-deflate (RFC 7692): negotiation against the RFC's rules and examples, and the codec checked
// against zlib's own raw deflate and inflate, run independently here, rather than only against itself:
// the RFC's example payloads, many messages with and without context takeover, input a byte at a time,
// a deflate bomb, corrupt data, 8-bit windows, and the memory a stream costs (the figures quoted at the
// top of deflate.hpp come from DeflateMemory.Figures).
#include "spindle/ws/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using spindle::ws::DeflateConfig;
using spindle::ws::DeflateParams;
using spindle::ws::detail::accept_deflate_answer;
using spindle::ws::detail::deflate_offer;
using spindle::ws::detail::idle_stream_count;
using spindle::ws::detail::MessageDeflater;
using spindle::ws::detail::MessageInflater;
using spindle::ws::detail::negotiate_deflate;
using Status = MessageInflater::Status;

namespace {

using namespace std::string_literals;

constexpr std::size_t kNoLimit = std::size_t{1} << 40;
constexpr std::string_view kTail{"\x00\x00\xff\xff", 4};

std::string bytes(std::initializer_list<unsigned> values) {
  std::string out;
  for (unsigned value : values) out.push_back(static_cast<char>(value));
  return out;
}

std::string hex(std::string_view data) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    if (!out.empty()) out += ' ';
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

DeflateConfig context_config() {
  DeflateConfig config;
  config.server_no_context_takeover = false;
  config.client_no_context_takeover = false;
  return config;
}

// ---- zlib, used directly: the reference the codec is checked against ----

/// A raw deflate or inflate stream of zlib's, with its own default allocator.
class ReferenceStream {
 public:
  static ReferenceStream deflater(int window_bits, int level = 6, int mem_level = 8) {
    ReferenceStream stream{true};
    if (deflateInit2(stream.zlib_.get(), level, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
      throw std::runtime_error("deflateInit2 failed");
    }
    return stream;
  }
  static ReferenceStream inflater(int window_bits) {
    ReferenceStream stream{false};
    if (inflateInit2(stream.zlib_.get(), -window_bits) != Z_OK) throw std::runtime_error("inflateInit2 failed");
    return stream;
  }

  /// One message as RFC 7692 7.2.1 says: all of it, Z_SYNC_FLUSH, the 00 00 ff ff tail removed. An
  /// empty message after others gives an empty payload: zlib adds nothing on a second flush in a row,
  /// and naive senders send that as it is.
  std::string compress_message(std::string_view message) {
    std::string out;
    zlib_->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
    zlib_->avail_in = static_cast<uInt>(message.size());
    std::array<char, 4096> buffer{};
    do {
      zlib_->next_out = reinterpret_cast<Bytef*>(buffer.data());
      zlib_->avail_out = static_cast<uInt>(buffer.size());
      int code = ::deflate(zlib_.get(), Z_SYNC_FLUSH);
      if (code != Z_OK && code != Z_BUF_ERROR) throw std::runtime_error("deflate failed");
      out.append(buffer.data(), buffer.size() - zlib_->avail_out);
    } while (zlib_->avail_out == 0);
    if (out.empty() && message.empty()) return out;
    if (out.size() < 4 || out.substr(out.size() - 4) != kTail) throw std::runtime_error("no sync flush tail");
    out.resize(out.size() - 4);
    return out;
  }

  z_stream& zlib() { return *zlib_; }

  /// One message as RFC 7692 7.2.2 says: the payload and 00 00 ff ff, inflated; nullopt on an error.
  std::optional<std::string> decompress_message(std::string_view payload) {
    std::string input = std::string{payload} + std::string{kTail};
    zlib_->next_in = reinterpret_cast<Bytef*>(input.data());
    zlib_->avail_in = static_cast<uInt>(input.size());
    std::string out;
    std::array<char, 4096> buffer{};
    do {
      zlib_->next_out = reinterpret_cast<Bytef*>(buffer.data());
      zlib_->avail_out = static_cast<uInt>(buffer.size());
      int code = ::inflate(zlib_.get(), Z_SYNC_FLUSH);
      if (code != Z_OK && code != Z_BUF_ERROR) return std::nullopt;
      out.append(buffer.data(), buffer.size() - zlib_->avail_out);
    } while (zlib_->avail_out == 0 || zlib_->avail_in != 0);
    return out;
  }

 private:
  explicit ReferenceStream(bool deflate)
      : zlib_(new z_stream{}, [deflate](z_stream* zlib) {
          if (deflate) {
            deflateEnd(zlib);
          } else {
            inflateEnd(zlib);
          }
          delete zlib;
        }) {}

  std::unique_ptr<z_stream, std::function<void(z_stream*)>> zlib_;
};

/// Inflates one whole message with `inflater`, in pieces of `piece` bytes.
std::pair<Status, std::string> inflate_message(MessageInflater& inflater, std::string_view payload,
                                               std::size_t piece = SIZE_MAX, std::size_t limit = kNoLimit) {
  std::string out;
  while (!payload.empty()) {
    Status status = inflater.inflate(payload.substr(0, piece), out, limit);
    if (status != Status::ok) return {status, out};
    payload.remove_prefix(std::min(piece, payload.size()));
  }
  Status status = inflater.finish(out, limit);
  return {status, out};
}

std::string deflate_message(MessageDeflater& deflater, std::string_view message) {
  std::string out;
  deflater.deflate(message, out);
  return out;
}

/// Messages like a chat or a live feed sends: JSON of varying size with repeated keys, some binary noise,
/// a few empty and a few large.
std::vector<std::string> sample_messages(std::size_t count, unsigned seed) {
  std::mt19937 random{seed};
  std::vector<std::string> messages;
  const char* const kUsers[] = {"ada", "grace", "linus", "barbara", "ken", "margaret"};
  for (std::size_t i = 0; i < count; ++i) {
    std::string message;
    switch (random() % 8) {
      case 0:
        break;  // empty
      case 1: {
        std::size_t size = random() % 3000;
        for (std::size_t k = 0; k < size; ++k) message.push_back(static_cast<char>(random()));
        break;
      }
      case 2: {
        std::size_t repeats = 1000 + random() % 5000;  // 25 KB to 150 KB of JSON
        for (std::size_t k = 0; k < repeats; ++k) {
          message += R"({"seq":)" + std::to_string(k) + R"(,"user":")" + kUsers[random() % 6] + R"("},)";
        }
        break;
      }
      default: {
        message = R"({"type":"message","channel":"general","user":")" + std::string{kUsers[random() % 6]} +
                  R"(","text":"hello number )" + std::to_string(random() % 1000) + R"(","ts":)" +
                  std::to_string(1700000000 + random() % 100000) + "}";
        break;
      }
    }
    messages.push_back(std::move(message));
  }
  return messages;
}

}  // namespace

// ---- negotiation, server side ----

TEST(DeflateNegotiation, BareOfferGetsNoContextTakeoverBothWaysByDefault) {
  auto agreement = negotiate_deflate("permessage-deflate", DeflateConfig{});
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(agreement->params, (DeflateParams{true, true, 15, 15}));
}

TEST(DeflateNegotiation, ContextTakeoverConfigAnswersTheBareName) {
  auto agreement = negotiate_deflate("permessage-deflate", context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->response, "permessage-deflate");
  EXPECT_EQ(agreement->params, (DeflateParams{false, false, 15, 15}));
}

TEST(DeflateNegotiation, OfferedNoContextTakeoverIsKeptEvenIfTheConfigAllowsContext) {
  auto agreement =
      negotiate_deflate("permessage-deflate; server_no_context_takeover; client_no_context_takeover", context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
  EXPECT_EQ(agreement->params, (DeflateParams{true, true, 15, 15}));
}

// RFC 7692 section 7.1 ("permessage-deflate" parameters) with the section 5 examples of several offers.
TEST(DeflateNegotiation, FirstAcceptableOfferOfSeveralWins) {
  // Section 5.1's example: the server accepts the first, honouring its server_max_window_bits.
  auto agreement = negotiate_deflate(
      "permessage-deflate; client_max_window_bits; server_max_window_bits=10, "
      "permessage-deflate; client_max_window_bits",
      context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->response, "permessage-deflate; server_max_window_bits=10");
  EXPECT_EQ(agreement->params, (DeflateParams{false, false, 10, 15}));
}

TEST(DeflateNegotiation, OfferWithAnUnknownParameterIsDeclinedAndTheNextTried) {
  auto agreement = negotiate_deflate(
      "permessage-deflate; server_max_window_bits=10; mystery_parameter, "
      "permessage-deflate; server_max_window_bits=12",
      context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->params.server_max_window_bits, 12);
  EXPECT_EQ(agreement->response, "permessage-deflate; server_max_window_bits=12");

  EXPECT_FALSE(negotiate_deflate("permessage-deflate; mystery_parameter", DeflateConfig{}));
}

TEST(DeflateNegotiation, QuotedValuesAreUnquoted) {
  auto quoted = negotiate_deflate(R"(permessage-deflate; server_max_window_bits="10")", context_config());
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->params.server_max_window_bits, 10);
  // A quoted-pair inside: "1\0" is 10 once unescaped.
  auto escaped = negotiate_deflate(R"(permessage-deflate; client_max_window_bits="1\1")", context_config());
  ASSERT_TRUE(escaped);
  EXPECT_EQ(escaped->params.client_max_window_bits, 11);
  EXPECT_EQ(escaped->response, "permessage-deflate; client_max_window_bits=11");
  // A quoted comma does not split the list: the first offer is one (declined) element.
  auto comma = negotiate_deflate(R"(permessage-deflate; x="a,b", permessage-deflate; server_max_window_bits=9)",
                                 context_config());
  ASSERT_TRUE(comma);
  EXPECT_EQ(comma->params.server_max_window_bits, 9);
}

TEST(DeflateNegotiation, InvalidValuesAreDeclined) {
  for (const char* offer : {
           "permessage-deflate; server_max_window_bits",           // needs a value
           "permessage-deflate; server_max_window_bits=",          // an empty one
           "permessage-deflate; server_max_window_bits=7",         // below 8
           "permessage-deflate; server_max_window_bits=16",        // above 15
           "permessage-deflate; server_max_window_bits=010",       // leading zero
           "permessage-deflate; server_max_window_bits=+10",       // not a plain decimal
           "permessage-deflate; server_max_window_bits=ten",       //
           R"(permessage-deflate; server_max_window_bits="10)",    // unterminated quote
           R"(permessage-deflate; server_max_window_bits="1 0")",  // unquoted, not a token
           R"(permessage-deflate; server_max_window_bits="")",     // empty once unquoted
           "permessage-deflate; client_max_window_bits=16",        //
           "permessage-deflate; client_max_window_bits=abc",       //
           "permessage-deflate; server_no_context_takeover=1",     // takes no value
           "permessage-deflate; client_no_context_takeover=\"\"",
           "permessage-deflate;",      // an empty parameter
           "permessage-deflate; =10",  // no name
           "permessage deflate",       // not a token
       }) {
    EXPECT_FALSE(negotiate_deflate(offer, DeflateConfig{})) << offer;
  }
}

TEST(DeflateNegotiation, RepeatedParametersAreDeclined) {
  for (const char* offer : {
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
           "permessage-deflate; client_no_context_takeover; Client_No_Context_Takeover",
           "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
           "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
       }) {
    EXPECT_FALSE(negotiate_deflate(offer, DeflateConfig{})) << offer;
  }
}

TEST(DeflateNegotiation, OtherExtensionsAreIgnored) {
  EXPECT_FALSE(negotiate_deflate("", DeflateConfig{}));
  EXPECT_FALSE(negotiate_deflate("x-webkit-deflate-frame, mux; max-channels=4", DeflateConfig{}));
  auto agreement = negotiate_deflate("x-webkit-deflate-frame, mux; max-channels=4; flow-control, , permessage-deflate",
                                     context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->response, "permessage-deflate");
}

TEST(DeflateNegotiation, NamesAreCaseInsensitiveAndWhitespaceIsOptional) {
  auto agreement =
      negotiate_deflate("PerMessage-Deflate ;Server_Max_Window_Bits = 11 ;\tCLIENT_MAX_WINDOW_BITS", context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->params, (DeflateParams{false, false, 11, 15}));
  EXPECT_EQ(agreement->response, "permessage-deflate; server_max_window_bits=11");
}

TEST(DeflateNegotiation, ServerWindowIsTheSmallerOfOfferAndConfig) {
  DeflateConfig config = context_config();
  config.server_max_window_bits = 10;
  // No request: the server announces its own limit (RFC 7692 7.1.2.1 allows it).
  auto unasked = negotiate_deflate("permessage-deflate", config);
  ASSERT_TRUE(unasked);
  EXPECT_EQ(unasked->response, "permessage-deflate; server_max_window_bits=10");
  EXPECT_EQ(unasked->params.server_max_window_bits, 10);
  // A larger request: the config's smaller window, which the client must accept.
  auto larger = negotiate_deflate("permessage-deflate; server_max_window_bits=12", config);
  ASSERT_TRUE(larger);
  EXPECT_EQ(larger->params.server_max_window_bits, 10);
  // A smaller request is honoured.
  auto smaller = negotiate_deflate("permessage-deflate; server_max_window_bits=9", config);
  ASSERT_TRUE(smaller);
  EXPECT_EQ(smaller->params.server_max_window_bits, 9);
  EXPECT_EQ(smaller->response, "permessage-deflate; server_max_window_bits=9");
  // Even with a 15-bit config, a 15 asked for is answered (accepting the parameter means echoing it).
  auto fifteen = negotiate_deflate("permessage-deflate; server_max_window_bits=15", context_config());
  ASSERT_TRUE(fifteen);
  EXPECT_EQ(fifteen->response, "permessage-deflate; server_max_window_bits=15");
}

TEST(DeflateNegotiation, ServerWindowOf8IsAcceptedAndCompressedWith9) {
  auto agreement = negotiate_deflate("permessage-deflate; server_max_window_bits=8", context_config());
  ASSERT_TRUE(agreement);
  EXPECT_EQ(agreement->params.server_max_window_bits, 8);
  EXPECT_EQ(agreement->response, "permessage-deflate; server_max_window_bits=8");
  // The deflater takes it (and uses 9: WindowBits8 below shows the result decodes with 256 bytes).
  MessageDeflater deflater{agreement->params.server_max_window_bits, false, 1, 8};
  EXPECT_FALSE(deflate_message(deflater, "hello hello hello").empty());
}

TEST(DeflateNegotiation, ClientWindowOnlyWhenTheClientOfferedTheParameter) {
  DeflateConfig config = context_config();
  config.client_max_window_bits = 10;
  // Offered without a value: the server picks (RFC 7692 7.1.2.2).
  auto no_value = negotiate_deflate("permessage-deflate; client_max_window_bits", config);
  ASSERT_TRUE(no_value);
  EXPECT_EQ(no_value->response, "permessage-deflate; client_max_window_bits=10");
  EXPECT_EQ(no_value->params.client_max_window_bits, 10);
  // Offered with a smaller value: that value, the client will not use more anyway.
  auto smaller = negotiate_deflate("permessage-deflate; client_max_window_bits=9", config);
  ASSERT_TRUE(smaller);
  EXPECT_EQ(smaller->response, "permessage-deflate; client_max_window_bits=9");
  EXPECT_EQ(smaller->params.client_max_window_bits, 9);
  // Offered with a larger value: lowered to the config's.
  auto larger = negotiate_deflate("permessage-deflate; client_max_window_bits=14", config);
  ASSERT_TRUE(larger);
  EXPECT_EQ(larger->params.client_max_window_bits, 10);
  // Not offered: the response must not include it, and the client may use 15.
  auto absent = negotiate_deflate("permessage-deflate", config);
  ASSERT_TRUE(absent);
  EXPECT_EQ(absent->response, "permessage-deflate");
  EXPECT_EQ(absent->params.client_max_window_bits, 15);
  // Offered with 15 and a 15-bit config: nothing to say.
  auto fifteen = negotiate_deflate("permessage-deflate; client_max_window_bits=15", context_config());
  ASSERT_TRUE(fifteen);
  EXPECT_EQ(fifteen->response, "permessage-deflate");
}

TEST(DeflateNegotiation, ConfigOutOfRangeIsABug) {
  DeflateConfig config;
  config.server_max_window_bits = 8;
  EXPECT_THROW((void)negotiate_deflate("permessage-deflate", config), std::invalid_argument);
  config = DeflateConfig{};
  config.client_max_window_bits = 16;
  EXPECT_THROW((void)deflate_offer(config), std::invalid_argument);
  config = DeflateConfig{};
  config.level = 10;
  EXPECT_THROW((void)accept_deflate_answer("permessage-deflate", config), std::invalid_argument);
  config = DeflateConfig{};
  config.mem_level = 0;
  EXPECT_THROW((void)negotiate_deflate("permessage-deflate", config), std::invalid_argument);
}

// ---- negotiation, client side ----

TEST(DeflateClient, OfferFollowsTheConfig) {
  EXPECT_EQ(deflate_offer(DeflateConfig{}),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits");
  DeflateConfig config = context_config();
  config.server_max_window_bits = 10;
  config.client_max_window_bits = 12;
  EXPECT_EQ(deflate_offer(config), "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12");
}

TEST(DeflateClient, AcceptsAnswersWithinTheOffer) {
  auto plain = accept_deflate_answer("permessage-deflate", context_config());
  ASSERT_TRUE(plain) << plain.error();
  EXPECT_EQ(*plain, (DeflateParams{false, false, 15, 15}));

  // The server may add both context parameters and windows of its own (RFC 7692 7.1.1, 7.1.2.1).
  auto added = accept_deflate_answer(
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; "
      "client_max_window_bits=9",
      context_config());
  ASSERT_TRUE(added) << added.error();
  EXPECT_EQ(*added, (DeflateParams{true, true, 8, 9}));

  // The default config asks for no context takeover both ways and gets it.
  auto defaults = accept_deflate_answer("Permessage-Deflate; Server_No_Context_Takeover; client_no_context_takeover",
                                        DeflateConfig{});
  ASSERT_TRUE(defaults) << defaults.error();
  EXPECT_EQ(*defaults, (DeflateParams{true, true, 15, 15}));

  // client_no_context_takeover was promised in the offer: kept even if the answer leaves it out.
  DeflateConfig promise = context_config();
  promise.client_no_context_takeover = true;
  auto kept = accept_deflate_answer("permessage-deflate", promise);
  ASSERT_TRUE(kept) << kept.error();
  EXPECT_TRUE(kept->client_no_context_takeover);

  // Windows asked for, confirmed with the same value or less.
  DeflateConfig windows = context_config();
  windows.server_max_window_bits = 10;
  windows.client_max_window_bits = 12;
  auto confirmed =
      accept_deflate_answer(R"(permessage-deflate; server_max_window_bits="9"; client_max_window_bits=12)", windows);
  ASSERT_TRUE(confirmed) << confirmed.error();
  EXPECT_EQ(*confirmed, (DeflateParams{false, false, 9, 12}));
  // client_max_window_bits offered with a value and not answered: we keep to the value we offered.
  auto hint = accept_deflate_answer("permessage-deflate; server_max_window_bits=10", windows);
  ASSERT_TRUE(hint) << hint.error();
  EXPECT_EQ(hint->client_max_window_bits, 12);
}

TEST(DeflateClient, RejectsAnswersItCannotAccept) {
  DeflateConfig windows = context_config();
  windows.server_max_window_bits = 10;
  windows.client_max_window_bits = 12;
  struct Case {
    const char* answer;
    DeflateConfig config;
  };
  const Case cases[] = {
      {"", context_config()},
      {"permessage-deflate, permessage-deflate", context_config()},  // two extensions
      {"permessage-deflate; server_max_window_bits=10, x-other", context_config()},
      {"x-webkit-deflate-frame", context_config()},  // not offered
      {"permessage-deflate; unknown", context_config()},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", context_config()},
      {"permessage-deflate; client_max_window_bits", context_config()},  // an answer needs a value
      {"permessage-deflate; client_max_window_bits=7", context_config()},
      {"permessage-deflate; server_max_window_bits=16", context_config()},
      {"permessage-deflate; server_max_window_bits=\"12", context_config()},
      {"permessage-deflate; client_max_window_bits=13", windows},           // above the 12 offered
      {"permessage-deflate; client_max_window_bits=12", windows},           // server window not confirmed
      {"permessage-deflate; server_max_window_bits=11", windows},           // above the 10 asked for
      {"permessage-deflate; client_no_context_takeover", DeflateConfig{}},  // server_no_context_takeover ignored
  };
  for (const auto& [answer, config] : cases) {
    auto result = accept_deflate_answer(answer, config);
    EXPECT_FALSE(result) << "accepted: " << answer;
    if (!result) {
      EXPECT_FALSE(result.error().empty());
    }
  }
}

TEST(DeflateClient, EveryOfferTheClientMakesIsAcceptedByTheServerAndTheAnswerByTheClient) {
  std::vector<DeflateConfig> configs;
  for (bool server_context : {false, true}) {
    for (bool client_context : {false, true}) {
      for (int server_bits : {9, 12, 15}) {
        for (int client_bits : {9, 11, 15}) {
          DeflateConfig config;
          config.server_no_context_takeover = !server_context;
          config.client_no_context_takeover = !client_context;
          config.server_max_window_bits = server_bits;
          config.client_max_window_bits = client_bits;
          configs.push_back(config);
        }
      }
    }
  }
  for (const auto& client : configs) {
    for (const auto& server : configs) {
      auto agreement = negotiate_deflate(deflate_offer(client), server);
      ASSERT_TRUE(agreement) << deflate_offer(client);
      auto params = accept_deflate_answer(agreement->response, client);
      ASSERT_TRUE(params) << agreement->response << ": " << params.error();
      EXPECT_EQ(*params, agreement->params) << deflate_offer(client) << " -> " << agreement->response;
      // Both sides got at least what they asked for.
      EXPECT_LE(params->server_max_window_bits, std::min(client.server_max_window_bits, server.server_max_window_bits));
      EXPECT_LE(params->client_max_window_bits, std::min(client.client_max_window_bits, server.client_max_window_bits));
      EXPECT_GE(params->server_no_context_takeover,
                client.server_no_context_takeover || server.server_no_context_takeover);
      EXPECT_GE(params->client_no_context_takeover,
                client.client_no_context_takeover || server.client_no_context_takeover);
    }
  }
}

// ---- the RFC's examples (RFC 7692 7.2.3) ----

const std::string kHelloCompressed = bytes({0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00});

TEST(DeflateRfcExamples, HelloDecodesAndEncodes) {  // 7.2.3.1
  MessageInflater inflater{15, true};
  EXPECT_EQ(inflate_message(inflater, kHelloCompressed), std::pair(Status::ok, "Hello"s));
  // zlib's output for "Hello" is the RFC's, byte for byte, at every level that compresses.
  for (int level = 1; level <= 9; ++level) {
    MessageDeflater deflater{15, true, level, 8};
    EXPECT_EQ(hex(deflate_message(deflater, "Hello")), hex(kHelloCompressed)) << "level " << level;
  }
}

TEST(DeflateRfcExamples, HelloInTwoFragments) {  // 7.2.3.1, the fragmented variant
  MessageInflater inflater{15, true};
  std::string out;
  EXPECT_EQ(inflater.inflate(bytes({0xf2, 0x48, 0xcd}), out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.inflate(bytes({0xc9, 0xc9, 0x07, 0x00}), out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.finish(out, kNoLimit), Status::ok);
  EXPECT_EQ(out, "Hello");
}

TEST(DeflateRfcExamples, SharedSlidingWindow) {  // 7.2.3.2
  const std::string second = bytes({0xf2, 0x00, 0x11, 0x00, 0x00});
  MessageInflater inflater{15, false};
  EXPECT_EQ(inflate_message(inflater, kHelloCompressed), std::pair(Status::ok, "Hello"s));
  EXPECT_EQ(inflate_message(inflater, second), std::pair(Status::ok, "Hello"s));
  // And our deflater with context takeover produces exactly those two payloads.
  MessageDeflater deflater{15, false, 1, 8};
  EXPECT_EQ(hex(deflate_message(deflater, "Hello")), hex(kHelloCompressed));
  EXPECT_EQ(hex(deflate_message(deflater, "Hello")), hex(second));
  // The second refers back to the first: alone, it points before the start of the data.
  MessageInflater fresh{15, true};
  EXPECT_EQ(inflate_message(fresh, second).first, Status::corrupt);
}

TEST(DeflateRfcExamples, BlockWithBfinalSet) {  // 7.2.3.3
  const std::string payload = bytes({0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00});
  for (bool no_context : {true, false}) {
    MessageInflater inflater{15, no_context};
    EXPECT_EQ(inflate_message(inflater, payload), std::pair(Status::ok, "Hello"s));
    EXPECT_EQ(inflate_message(inflater, payload, 1), std::pair(Status::ok, "Hello"s));
    // Without the trailing 0x00 the RFC asks for: still "Hello" (the stream simply ended).
    EXPECT_EQ(inflate_message(inflater, std::string_view{payload}.substr(0, 7)), std::pair(Status::ok, "Hello"s));
  }
  // With context takeover the window survives the final block: the 7.2.3.2 back-reference still works.
  MessageInflater inflater{15, false};
  EXPECT_EQ(inflate_message(inflater, payload), std::pair(Status::ok, "Hello"s));
  EXPECT_EQ(inflate_message(inflater, bytes({0xf2, 0x00, 0x11, 0x00, 0x00})), std::pair(Status::ok, "Hello"s));
}

TEST(DeflateRfcExamples, BlockWithNoCompression) {  // 7.2.3.4
  MessageInflater inflater{15, true};
  EXPECT_EQ(inflate_message(inflater, bytes({0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00})),
            std::pair(Status::ok, "Hello"s));
}

TEST(DeflateRfcExamples, TwoBlocksInOneMessage) {  // 7.2.3.5
  MessageInflater inflater{15, true};
  EXPECT_EQ(
      inflate_message(inflater, bytes({0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00})),
      std::pair(Status::ok, "Hello"s));
}

TEST(DeflateRfcExamples, EmptyMessage) {  // 7.2.3.6
  for (bool no_context : {true, false}) {
    MessageDeflater deflater{15, no_context, 1, 8};
    EXPECT_EQ(hex(deflate_message(deflater, "")), "00");
    // Also after messages, with the context kept: still a valid empty message for zlib itself.
    ReferenceStream reference = ReferenceStream::inflater(15);
    for (const char* message : {"", "abc", "", "abcabc", ""}) {
      auto payload = deflate_message(deflater, message);
      EXPECT_EQ(reference.decompress_message(payload), std::optional<std::string>{message});
      if (no_context) reference = ReferenceStream::inflater(15);
    }
  }
  MessageInflater inflater{15, false};
  EXPECT_EQ(inflate_message(inflater, bytes({0x00})), std::pair(Status::ok, ""s));
  EXPECT_EQ(inflate_message(inflater, ""), std::pair(Status::ok, ""s));  // nothing at all: empty too
  EXPECT_EQ(inflate_message(inflater, kHelloCompressed), std::pair(Status::ok, "Hello"s));
  EXPECT_EQ(inflate_message(inflater, ""), std::pair(Status::ok, ""s));
  EXPECT_EQ(inflate_message(inflater, bytes({0xf2, 0x00, 0x11, 0x00, 0x00})), std::pair(Status::ok, "Hello"s));
}

// ---- round trips against zlib ----

struct CodecCase {
  int window_bits;
  bool no_context_takeover;
  int level;
  int mem_level;
};

// gtest would print the parameter's bytes, padding included, which valgrind reports as uninitialised.
void PrintTo(const CodecCase& c, std::ostream* out) {
  *out << "window " << c.window_bits << (c.no_context_takeover ? ", no context takeover" : ", context takeover")
       << ", level " << c.level << ", memLevel " << c.mem_level;
}

class DeflateRoundTrip : public ::testing::TestWithParam<CodecCase> {};

TEST_P(DeflateRoundTrip, ManyMessagesBothWaysAgainstZlib) {
  const auto [window_bits, no_context, level, mem_level] = GetParam();
  const auto messages = sample_messages(80, static_cast<unsigned>(window_bits * 100 + level));

  // Ours to zlib's, and ours to ours.
  MessageDeflater deflater{window_bits, no_context, level, mem_level};
  MessageInflater inflater{window_bits, no_context};
  auto reference_inflater = ReferenceStream::inflater(window_bits);
  std::size_t compressed_total = 0, plain_total = 0;
  for (const auto& message : messages) {
    auto payload = deflate_message(deflater, message);
    compressed_total += payload.size();
    plain_total += message.size();
    if (no_context) reference_inflater = ReferenceStream::inflater(window_bits);
    auto by_zlib = reference_inflater.decompress_message(payload);
    ASSERT_TRUE(by_zlib);
    ASSERT_EQ(*by_zlib, message);
    auto [status, by_us] = inflate_message(inflater, payload);
    ASSERT_EQ(status, Status::ok);
    ASSERT_EQ(by_us, message);
  }
  if (level != 0) {
    EXPECT_LT(compressed_total, plain_total / 3);  // it compresses (JSON dominates the sample)
  }

  // zlib's to ours, frames of 1000 bytes.
  auto reference_deflater = ReferenceStream::deflater(window_bits, 6, 8);
  MessageInflater second{window_bits, no_context};
  for (const auto& message : messages) {
    if (no_context) reference_deflater = ReferenceStream::deflater(window_bits, 6, 8);
    auto payload = reference_deflater.compress_message(message);
    auto [status, by_us] = inflate_message(second, payload, 1000);
    ASSERT_EQ(status, Status::ok);
    ASSERT_EQ(by_us, message);
  }
}

INSTANTIATE_TEST_SUITE_P(Settings, DeflateRoundTrip,
                         ::testing::Values(CodecCase{15, true, 1, 8}, CodecCase{15, false, 1, 8},
                                           CodecCase{15, false, 6, 9}, CodecCase{12, false, 9, 5},
                                           CodecCase{9, false, 1, 1}, CodecCase{9, true, 6, 8},
                                           CodecCase{10, true, 0, 8}),
                         [](const auto& info) {
                           const auto& c = info.param;
                           return "window" + std::to_string(c.window_bits) +
                                  (c.no_context_takeover ? "_reset" : "_context") + "_level" + std::to_string(c.level) +
                                  "_mem" + std::to_string(c.mem_level);
                         });

TEST(DeflateFragmentation, OneByteAtATimeGivesTheSameMessages) {
  auto messages = sample_messages(40, 7);
  for (bool no_context : {true, false}) {
    MessageDeflater deflater{15, no_context, 6, 8};
    MessageInflater whole{15, no_context};
    MessageInflater bytewise{15, no_context};
    for (const auto& message : messages) {
      if (message.size() > 50000) continue;  // a byte at a time is slow under valgrind
      auto payload = deflate_message(deflater, message);
      ASSERT_EQ(inflate_message(whole, payload), std::pair(Status::ok, message));
      ASSERT_EQ(inflate_message(bytewise, payload, 1), std::pair(Status::ok, message));
    }
  }
}

TEST(DeflateFragmentation, EmptyPiecesChangeNothing) {
  MessageInflater inflater{15, true};
  std::string out;
  EXPECT_EQ(inflater.inflate("", out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.memory(), 0u);  // no stream taken for nothing
  EXPECT_EQ(inflater.inflate(kHelloCompressed.substr(0, 3), out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.inflate("", out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.inflate(kHelloCompressed.substr(3), out, kNoLimit), Status::ok);
  EXPECT_EQ(inflater.finish(out, kNoLimit), Status::ok);
  EXPECT_EQ(out, "Hello");
}

TEST(DeflateFragmentation, InflaterMovesMidMessage) {
  MessageInflater first{15, false};
  std::string out;
  ASSERT_EQ(first.inflate(kHelloCompressed.substr(0, 4), out, kNoLimit), Status::ok);
  MessageInflater second = std::move(first);
  ASSERT_EQ(second.inflate(kHelloCompressed.substr(4), out, kNoLimit), Status::ok);
  ASSERT_EQ(second.finish(out, kNoLimit), Status::ok);
  EXPECT_EQ(out, "Hello");
}

// ---- limits and bad input ----

/// 100 MB of zeros, deflated by zlib at level 9 (about 100 KB).
const std::string& deflate_bomb() {
  static const std::string bomb = [] {
    auto deflater = ReferenceStream::deflater(15, 9, 9);
    // Compressing 100 MB takes zlib a second, valgrind a minute: build it from repeats instead. After
    // the first megabyte zlib's state is periodic, so every further megabyte of zeros compresses to the
    // same bytes; the test checks that the result really is 100 MB below.
    const std::string megabyte(1 << 20, '\0');
    std::string first = deflater.compress_message(megabyte) + std::string{kTail};
    std::string second = deflater.compress_message(megabyte) + std::string{kTail};
    std::string third = deflater.compress_message(megabyte) + std::string{kTail};
    if (second != third) throw std::runtime_error("zlib's output for zeros is not periodic after all");
    std::string payload = first;
    for (int i = 1; i < 100; ++i) payload += second;
    return payload.substr(0, payload.size() - kTail.size());
  }();
  return bomb;
}

TEST(DeflateLimits, DeflateBombStopsAtTheLimit) {
  const std::string& bomb = deflate_bomb();
  ASSERT_LT(bomb.size(), 200'000u);
  constexpr std::size_t kLimit = 1 << 20;

  // Fed whole: too_big, with at most the limit produced.
  MessageInflater inflater{15, true};
  std::string out;
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(inflater.inflate(bomb, out, kLimit), Status::too_big);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LE(out.size(), kLimit);
  EXPECT_EQ(inflater.memory(), 0u);  // the stream went back as soon as it failed
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  // Final: the next pieces and finish say the same without doing anything.
  EXPECT_EQ(inflater.inflate(bomb, out, kLimit), Status::too_big);
  EXPECT_EQ(inflater.finish(out, kLimit), Status::too_big);

  // Fed in 4 KiB frames: it fails within the frames that hold the first megabyte (at 1:1000 or so,
  // one or two), holding no more than a stream's worth of zlib memory meanwhile.
  MessageInflater framed{15, true};
  std::string framed_out;
  std::size_t frames = 0;
  std::size_t peak_memory = 0;
  Status status = Status::ok;
  for (std::size_t offset = 0; offset < bomb.size() && status == Status::ok; offset += 4096) {
    status = framed.inflate(std::string_view{bomb}.substr(offset, 4096), framed_out, kLimit);
    peak_memory = std::max(peak_memory, framed.memory());
    ++frames;
  }
  EXPECT_EQ(status, Status::too_big);
  EXPECT_LE(frames, 3u);
  EXPECT_LE(framed_out.size(), kLimit);
  EXPECT_LT(peak_memory, 48u * 1024);

  // And it is a real 100 MB of zeros, as an unlimited inflater shows.
  MessageInflater unlimited{15, true};
  std::string all;
  ASSERT_EQ(unlimited.inflate(bomb, all, kNoLimit), Status::ok);
  ASSERT_EQ(unlimited.finish(all, kNoLimit), Status::ok);
  EXPECT_EQ(all.size(), 100u << 20);
  EXPECT_EQ(all.find_first_not_of('\0'), std::string::npos);
}

TEST(DeflateLimits, LimitIsExactAndCountsWhatOutAlreadyHolds) {
  const std::string message(10'000, 'x');
  MessageDeflater deflater{15, true, 1, 8};
  auto payload = deflate_message(deflater, message);
  {
    MessageInflater inflater{15, true};
    EXPECT_EQ(inflate_message(inflater, payload, SIZE_MAX, 10'000), std::pair(Status::ok, message));
  }
  {
    MessageInflater inflater{15, true};
    EXPECT_EQ(inflate_message(inflater, payload, SIZE_MAX, 9'999).first, Status::too_big);
  }
  {
    MessageInflater inflater{15, true};
    std::string out = "prefix";  // the limit is on out's whole size
    EXPECT_EQ(inflater.inflate(payload, out, 10'005), Status::too_big);
    EXPECT_LE(out.size(), 10'005u);
  }
}

TEST(DeflateCorrupt, InvalidDataIsCorruptAndFinal) {
  const std::string cases[] = {
      bytes({0xff, 0xff, 0xff, 0xff}),        // block type 3 does not exist
      bytes({0x00, 0x05, 0x00, 0x00, 0x00}),  // stored block whose NLEN is not ~LEN
      bytes({0xf2, 0x48, 0xcd}),              // "Hello" cut short: no block end before the tail
      kHelloCompressed + "\x12\x34",          // bytes after the last block
      bytes({0xfd, 0xff, 0xff}),              // a dynamic block with 288 literal/length codes
  };
  for (const auto& payload : cases) {
    for (std::size_t piece : {std::size_t{1}, SIZE_MAX}) {
      MessageInflater inflater{15, true};
      EXPECT_EQ(inflate_message(inflater, payload, piece).first, Status::corrupt) << hex(payload);
      EXPECT_EQ(inflater.memory(), 0u);
      std::string out;
      EXPECT_EQ(inflater.inflate(kHelloCompressed, out, kNoLimit), Status::corrupt);  // final
      EXPECT_EQ(inflater.finish(out, kNoLimit), Status::corrupt);
    }
  }
}

TEST(DeflateCorrupt, ReferenceToAnEarlierMessageBeyondTheAgreedWindowIsCorrupt) {
  // 1000 random bytes in two messages: zlib with a 32 KiB window refers the second to the first, 1000
  // bytes back, beyond the 512-byte window a 9-bit agreement gives the receiver. (Within one inflate
  // call zlib does not check the window, only what it keeps from earlier calls: a peer that breaks
  // the agreement inside one message may or may not be caught.)
  std::mt19937 random{3};
  std::string block;
  for (int i = 0; i < 1000; ++i) block.push_back(static_cast<char>(random()));
  auto reference = ReferenceStream::deflater(15);
  auto first = reference.compress_message(block);
  auto second = reference.compress_message(block);
  ASSERT_LT(second.size(), 100u);  // all of it a back-reference
  MessageInflater exact{9, false};
  EXPECT_EQ(inflate_message(exact, first), std::pair(Status::ok, block));
  EXPECT_EQ(inflate_message(exact, second).first, Status::corrupt);
  MessageInflater full{15, false};
  EXPECT_EQ(inflate_message(full, first), std::pair(Status::ok, block));
  EXPECT_EQ(inflate_message(full, second), std::pair(Status::ok, block));
}

TEST(DeflateCodec, ConstructorArgumentsOutOfRangeAreBugs) {
  EXPECT_THROW((MessageInflater{7, true}), std::invalid_argument);
  EXPECT_THROW((MessageInflater{16, false}), std::invalid_argument);
  EXPECT_THROW((MessageDeflater{16, true, 1, 8}), std::invalid_argument);
  EXPECT_THROW((MessageDeflater{15, true, 10, 8}), std::invalid_argument);
  EXPECT_THROW((MessageDeflater{15, true, 1, 10}), std::invalid_argument);
  EXPECT_NO_THROW((MessageDeflater{8, true, -1, 1}));
  EXPECT_NO_THROW((MessageInflater{8, false}));
}

// ---- 8-bit windows ----

namespace {

/// Inflates a message with a `window_bits` window, one output byte per call: every back-reference then
/// comes from zlib's window, so one that reaches further back than the window fails. (Given more output
/// room, zlib resolves references into the output of the same call without checking the window.)
std::optional<std::string> inflate_checking_the_window(std::string_view payload, int window_bits) {
  auto stream = ReferenceStream::inflater(window_bits);
  std::string input = std::string{payload} + std::string{kTail};
  z_stream& zlib = stream.zlib();
  zlib.next_in = reinterpret_cast<Bytef*>(input.data());
  zlib.avail_in = static_cast<uInt>(input.size());
  std::string out;
  for (;;) {
    char byte = 0;
    zlib.next_out = reinterpret_cast<Bytef*>(&byte);
    zlib.avail_out = 1;
    int code = ::inflate(&zlib, Z_SYNC_FLUSH);
    if (code != Z_OK && code != Z_BUF_ERROR) return std::nullopt;
    if (zlib.avail_out == 1) return out;  // nothing more to come
    out.push_back(byte);
  }
}

}  // namespace

TEST(WindowBits8, NineBitDeflateDecodesWithEightBitWindow) {
  // Random bytes, so that the only long matches are these: a run of d bytes, then the same run again,
  // for d from 1 to 16 and from 240 to 520. A deflater that looked more than 256 bytes back would use
  // the repeats beyond 256.
  std::mt19937 random{8};
  std::string data;
  auto add_repeat = [&](int distance) {
    std::string run;
    for (int i = 0; i < distance; ++i) run.push_back(static_cast<char>(random()));
    data += run + run;
  };
  for (int distance = 1; distance <= 16; ++distance) add_repeat(distance);
  for (int distance = 240; distance <= 520; distance += 4) add_repeat(distance);

  // The check is real: zlib with a 15-bit window does refer beyond 256 bytes.
  MessageDeflater wide{15, true, 6, 8};
  EXPECT_EQ(inflate_checking_the_window(deflate_message(wide, data), 15), std::optional<std::string>{data});
  EXPECT_EQ(inflate_checking_the_window(deflate_message(wide, data), 8), std::nullopt);

  // Levels 1 to 3 use deflate_fast, 4 to 9 deflate_slow (lazy matching), each with its own limits.
  for (int level : {1, 4, 9}) {
    for (int mem_level : {1, 8}) {
      for (bool no_context : {true, false}) {
        MessageDeflater deflater{8, no_context, level, mem_level};
        MessageInflater ours{8, no_context};
        std::string history;  // with context takeover, messages refer to the ones before
        for (int message = 0; message < (no_context ? 1 : 2); ++message) {
          auto payload = deflate_message(deflater, data);
          // Without context each message stands alone; with it, the peer's window spans both.
          auto decoded = inflate_checking_the_window(no_context ? payload : history + payload, 8);
          if (!no_context) history += payload + std::string{kTail};
          ASSERT_TRUE(decoded) << "level " << level << " memLevel " << mem_level;
          ASSERT_EQ(decoded->substr(decoded->size() - data.size()), data);
          ASSERT_EQ(inflate_message(ours, payload), std::pair(Status::ok, data));
        }
      }
    }
  }
  // zlib really refuses 8 for raw deflate, which is why MessageDeflater uses 9.
  z_stream refused{};
  EXPECT_EQ(deflateInit2(&refused, 1, Z_DEFLATED, -8, 8, Z_DEFAULT_STRATEGY), Z_STREAM_ERROR);
}

// ---- memory and the pool ----

TEST(DeflateMemory, NothingHeldBetweenMessagesWithoutContextTakeover) {
  MessageDeflater deflater{15, true, 1, 8};
  MessageInflater inflater{15, true};
  EXPECT_EQ(deflater.memory(), 0u);
  EXPECT_EQ(inflater.memory(), 0u);
  for (const auto& message : sample_messages(20, 11)) {
    auto payload = deflate_message(deflater, message);
    EXPECT_EQ(deflater.memory(), 0u);
    std::string out;
    ASSERT_EQ(inflater.inflate(payload, out, kNoLimit), Status::ok);
    EXPECT_GT(inflater.memory(), 0u);  // mid-message: a stream
    ASSERT_EQ(inflater.finish(out, kNoLimit), Status::ok);
    EXPECT_EQ(inflater.memory(), 0u);
    ASSERT_EQ(out, message);
  }
  EXPECT_GE(idle_stream_count(), 2u);  // one of each kind, waiting for the next message on this thread
}

TEST(DeflateMemory, ContextTakeoverKeepsItsStreams) {
  MessageDeflater deflater{15, false, 1, 8};
  MessageInflater inflater{15, false};
  auto payload = deflate_message(deflater, "some message, some message");
  EXPECT_GT(deflater.memory(), 256u * 1024);
  EXPECT_EQ(inflate_message(inflater, payload), std::pair(Status::ok, "some message, some message"s));
  EXPECT_GT(inflater.memory(), 32u * 1024);
}

TEST(DeflateMemory, PoolIsBoundedAndStreamsCrossThreads) {
  // Ten messages in progress at once on this thread, each holding a stream.
  std::vector<MessageInflater> inflaters;
  std::vector<std::string> outs(10);
  for (int i = 0; i < 10; ++i) {
    inflaters.emplace_back(15, true);
    ASSERT_EQ(inflaters.back().inflate(kHelloCompressed.substr(0, 3), outs[static_cast<std::size_t>(i)], kNoLimit),
              Status::ok);
  }
  // Half of them finish on another thread (their coroutines moved): that thread's pool takes at most 4.
  std::size_t other_thread_idle = 0;
  std::thread other{[&] {
    for (std::size_t i = 0; i < 5; ++i) {
      ASSERT_EQ(inflaters[i].inflate(kHelloCompressed.substr(3), outs[i], kNoLimit), Status::ok);
      ASSERT_EQ(inflaters[i].finish(outs[i], kNoLimit), Status::ok);
      EXPECT_EQ(outs[i], "Hello");
    }
    other_thread_idle = idle_stream_count();
  }};
  other.join();
  EXPECT_EQ(other_thread_idle, 4u);
  for (std::size_t i = 5; i < 10; ++i) {
    ASSERT_EQ(inflaters[i].inflate(kHelloCompressed.substr(3), outs[i], kNoLimit), Status::ok);
    ASSERT_EQ(inflaters[i].finish(outs[i], kNoLimit), Status::ok);
    EXPECT_EQ(outs[i], "Hello");
  }
  EXPECT_LE(idle_stream_count(), 8u);
  // A stream that comes back from the pool is clean: the next message decodes as if it were new.
  MessageInflater again{15, true};
  EXPECT_EQ(inflate_message(again, kHelloCompressed), std::pair(Status::ok, "Hello"s));
}

namespace {

/// zlib allocations counted independently of the library: a cross-check of its memory() figures.
struct CountingAllocator {
  std::size_t live = 0;
  static voidpf alloc(voidpf opaque, uInt items, uInt size) {
    auto bytes = std::size_t{items} * size;
    auto* block = static_cast<std::size_t*>(std::malloc(bytes + 16));
    if (block == nullptr) return Z_NULL;
    *block = bytes;
    static_cast<CountingAllocator*>(opaque)->live += bytes;
    return reinterpret_cast<char*>(block) + 16;
  }
  static void free(voidpf opaque, voidpf address) {
    auto* block = reinterpret_cast<std::size_t*>(static_cast<char*>(address) - 16);
    static_cast<CountingAllocator*>(opaque)->live -= *block;
    std::free(block);
  }
};

std::size_t reference_deflate_bytes(int window_bits, int mem_level) {
  CountingAllocator counter;
  z_stream stream{};
  stream.zalloc = CountingAllocator::alloc;
  stream.zfree = CountingAllocator::free;
  stream.opaque = &counter;
  if (deflateInit2(&stream, 1, Z_DEFLATED, -window_bits, mem_level, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  std::size_t bytes = counter.live;
  deflateEnd(&stream);
  return bytes;
}

}  // namespace

namespace {

void measure_memory() {
  auto deflate_bytes = [](int window_bits, int mem_level) {
    MessageDeflater deflater{window_bits, false, 1, mem_level};
    (void)deflate_message(deflater, "warm up");
    return deflater.memory();
  };
  auto inflate_bytes = [](int window_bits, bool with_output) {
    MessageInflater inflater{window_bits, false};
    std::string out;
    EXPECT_EQ(inflater.inflate(with_output ? kHelloCompressed : bytes({0x00}), out, kNoLimit), Status::ok);
    return inflater.memory();
  };
  const std::size_t inflate_idle = inflate_bytes(15, false);
  const std::size_t inflate_15 = inflate_bytes(15, true);
  const std::size_t inflate_12 = inflate_bytes(12, true);
  const std::size_t inflate_9 = inflate_bytes(9, true);
  const std::size_t deflate_15_8 = deflate_bytes(15, 8);
  const std::size_t deflate_15_9 = deflate_bytes(15, 9);
  const std::size_t deflate_12_5 = deflate_bytes(12, 5);
  const std::size_t deflate_9_1 = deflate_bytes(9, 1);
  std::cout << "zlib " << zlibVersion() << ", bytes per stream (zlib allocations + wrapper)\n"
            << "  inflate, before output  " << inflate_idle << "\n"
            << "  inflate 15              " << inflate_15 << "\n"
            << "  inflate 12              " << inflate_12 << "\n"
            << "  inflate 9               " << inflate_9 << "\n"
            << "  deflate 15, memLevel 8  " << deflate_15_8 << "\n"
            << "  deflate 15, memLevel 9  " << deflate_15_9 << "\n"
            << "  deflate 12, memLevel 5  " << deflate_12_5 << "\n"
            << "  deflate 9, memLevel 1   " << deflate_9_1 << "\n"
            << "  of which the wrapper    " << deflate_15_8 - reference_deflate_bytes(15, 8) << "\n";

  // zlib.h's formulas: deflate 2^(windowBits+2) + 2^(memLevel+9), inflate 2^windowBits, plus the states.
  EXPECT_GE(deflate_15_8, (1u << 17) + (1u << 17));
  EXPECT_LT(deflate_15_8, (1u << 17) + (1u << 17) + 16 * 1024);
  EXPECT_GE(inflate_15, 1u << 15);
  EXPECT_LT(inflate_15, (1u << 15) + 12 * 1024);
  EXPECT_EQ(inflate_15 - inflate_idle, 1u << 15);  // the window, allocated on first output
  EXPECT_EQ(inflate_12 - inflate_idle, 1u << 12);
  // deflate: a window and hash chains of 2^(windowBits+1) bytes each, a hash table and a pending buffer
  // of 2^(memLevel+8) each, and a state of the same size whatever the settings.
  const std::size_t deflate_state = deflate_15_8 - (std::size_t{1} << 18);
  EXPECT_EQ(deflate_9_1, deflate_state + (1u << 11) + (1u << 10));
  EXPECT_EQ(deflate_12_5, deflate_state + (1u << 14) + (1u << 14));
  EXPECT_EQ(deflate_15_9, deflate_state + (1u << 17) + (1u << 18));
  EXPECT_LT(deflate_9_1, deflate_12_5);
  EXPECT_LT(deflate_12_5, deflate_15_8);
  EXPECT_LT(deflate_15_8, deflate_15_9);
  // The library's count agrees with one made here, separately (its wrapper aside).
  const std::size_t wrapper = deflate_15_8 - reference_deflate_bytes(15, 8);
  EXPECT_LT(wrapper, 256u);
  EXPECT_EQ(deflate_9_1 - reference_deflate_bytes(9, 1), wrapper);
}

}  // namespace

TEST(DeflateMemory, Figures) {
  // The table at the top of deflate.hpp. memory() counts zlib's allocations plus the library's wrapper.
  // On a thread of its own: streams from this thread's pool would come with windows already allocated.
  std::thread{[] { measure_memory(); }}.join();
}
