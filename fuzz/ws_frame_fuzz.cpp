// libFuzzer target: the WebSocket frame decoder on arbitrary bytes in arbitrary pieces, both roles. It
// must never read or write outside its input, deliver more payload than a header announced, or go on
// after an error.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "spindle/ws/frame.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using spindle::ws::detail::FrameDecoder;
  if (size < 1) return 0;
  const std::uint8_t control = data[0];
  std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  spindle::ws::detail::DecoderRules rules;
  rules.require_masked = (control & 1) != 0;
  rules.allow_rsv1 = (control & 2) != 0;
  rules.max_frame_size = (control & 4) != 0 ? 64 : 1 << 20;
  const std::size_t piece = 1 + (control >> 3);  // 1 to 32 bytes at a time

  FrameDecoder decoder{rules};
  std::uint64_t announced = 0, delivered = 0;
  bool in_frame = false;
  for (std::size_t at = 0; at < input.size();) {
    std::string chunk = input.substr(at, piece);
    at += chunk.size();
    std::span<char> rest{chunk};
    for (;;) {
      const FrameDecoder::Step step = decoder.next(rest);
      if (step.consumed > rest.size()) std::abort();
      rest = rest.subspan(step.consumed);
      if (step.event == FrameDecoder::Event::need_more) break;
      if (step.event == FrameDecoder::Event::error) {
        if (step.close_code != 1002 && step.close_code != 1009) std::abort();
        if (decoder.next(rest).event != FrameDecoder::Event::error) std::abort();
        return 0;
      }
      if (step.event == FrameDecoder::Event::header) {
        if (in_frame) std::abort();
        in_frame = true;
        announced = decoder.header().length;
        delivered = 0;
        if (announced > rules.max_frame_size) std::abort();
      }
      if (step.event == FrameDecoder::Event::payload) {
        delivered += step.payload.size();
        if (!in_frame || delivered > announced || step.payload.data() < chunk.data() ||
            step.payload.data() + step.payload.size() > chunk.data() + chunk.size())
          std::abort();
      }
      if (step.event == FrameDecoder::Event::frame_end) {
        if (!in_frame || delivered != announced) std::abort();
        in_frame = false;
      }
    }
  }
  return 0;
}
