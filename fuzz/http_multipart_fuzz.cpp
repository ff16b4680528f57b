// libFuzzer target for the multipart/form-data parser. The input is a body for the boundary "XyZ", fed
// in two slices split where its first byte says. Besides the sanitizers it checks that the parser keeps
// its contract (a step never uses more than it was given; "more" means all of it was used; data is never
// empty), that the events come in a legal order, that the same body fed whole gives the same events,
// and that a body is accepted only if the close delimiter is in it.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spindle/http/detail/multipart_parser.hpp"

namespace {

using spindle::http::detail::MultipartParser;

void check(bool condition) {
  if (!condition) std::abort();
}

// What the parser said, data joined (its cut depends on the slices), one letter per event.
struct Transcript {
  std::string events;
  std::string data;
  bool accepted = false;
};

Transcript parse(std::string_view first, std::string_view second) {
  MultipartParser parser{"XyZ", 256, 16};
  Transcript transcript;
  bool in_part = false;
  const auto record = [&](const MultipartParser::Step& step) {
    switch (step.event) {
      case MultipartParser::Event::part:
        check(!in_part);
        in_part = true;
        transcript.events += 'P';
        transcript.events += parser.part().name;
        transcript.events += '\0';
        break;
      case MultipartParser::Event::data:
        check(in_part && !step.data.empty());
        if (transcript.events.empty() || transcript.events.back() != 'D') transcript.events += 'D';
        transcript.data.append(step.data);
        break;
      case MultipartParser::Event::part_end:
        check(in_part);
        in_part = false;
        transcript.events += 'E';
        break;
      case MultipartParser::Event::done:
        check(!in_part);
        transcript.events += '$';
        transcript.accepted = true;
        break;
      case MultipartParser::Event::error:
        transcript.events += '!';
        transcript.events += parser.error().message;
        break;
      case MultipartParser::Event::more:
        std::abort();
    }
    return step.event == MultipartParser::Event::done || step.event == MultipartParser::Event::error;
  };
  for (std::string_view input : {first, second}) {
    for (;;) {
      const MultipartParser::Step step = parser.step(input);
      check(step.consumed <= input.size());
      input.remove_prefix(step.consumed);
      if (step.event == MultipartParser::Event::more) {
        check(input.empty());
        break;
      }
      if (record(step)) return transcript;
    }
  }
  record(parser.finish());
  return transcript;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = data[0] % (body.size() + 1);
  const Transcript sliced = parse(body.substr(0, split), body.substr(split));
  const Transcript whole = parse(body, {});
  check(sliced.events == whole.events && sliced.data == whole.data && sliced.accepted == whole.accepted);
  // Accepted only with the close delimiter: at the body's start or after a CRLF.
  if (whole.accepted) check(body.starts_with("--XyZ--") || body.find("\r\n--XyZ--") != std::string_view::npos);
  return 0;
}
