// Server-sent events: the wire format of an event, and the response that streams them.

#include "spindle/http/sse.hpp"

#include <stdexcept>

namespace spindle::http {
namespace {

/// Calls `line` with each line of `text`, split at CRLF, CR and LF as the client splits the stream
/// (so that no part of a value can start a field of its own). "" is one empty line; "a\n" is "a" and "".
template <class F>
void for_each_line(std::string_view text, F line) {
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) {
      line(text.substr(start));
      return;
    }
    line(text.substr(start, end - start));
    start = end + (text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1);
  }
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).push_back('\n');
}

void refuse_line_breaks(std::string_view field, std::string_view value) {
  if (value.find_first_of("\r\n") != std::string_view::npos)
    throw std::invalid_argument("server-sent event: the " + std::string{field} +
                                " must not contain CR or LF (it would end the field and start another)");
}

}  // namespace

Event& Event::event(std::string_view type) & {
  refuse_line_breaks("event type", type);
  event_.emplace(type);
  return *this;
}

Event& Event::id(std::string_view value) & {
  refuse_line_breaks("id", value);
  if (value.find('\0') != std::string_view::npos)
    throw std::invalid_argument("server-sent event: the id must not contain NUL (the client would ignore it)");
  id_.emplace(value);
  return *this;
}

Event& Event::data(std::string_view text) & {
  data_.emplace(text);
  return *this;
}

Event& Event::retry(std::chrono::milliseconds delay) & {
  if (delay.count() < 0) throw std::invalid_argument("server-sent event: the retry delay must not be negative");
  retry_ = delay;
  return *this;
}

Event& Event::comment(std::string_view text) & {
  if (comment_)
    comment_->append("\n").append(text);
  else
    comment_.emplace(text);
  return *this;
}

std::string Event::serialize() const {
  std::string out;
  if (comment_) {
    // ": text", the space dropped for an empty line: the shortest keep-alive is ":\n\n".
    for_each_line(*comment_, [&](std::string_view line) {
      out.push_back(':');
      if (!line.empty()) out.append(" ").append(line);
      out.push_back('\n');
    });
  }
  // Always "name: value": the client removes one space after the colon, so a value that starts with a
  // space keeps it.
  if (event_) append_field(out, "event", *event_);
  if (id_) append_field(out, "id", *id_);
  if (retry_) append_field(out, "retry", std::to_string(retry_->count()));
  if (data_) for_each_line(*data_, [&](std::string_view line) { append_field(out, "data", line); });
  out.push_back('\n');
  return out;
}

Task<bool> SseSender::send_data(std::string_view text) const { return send(Event{}.data(text)); }

std::pair<SseSender, Sse> Sse::channel(std::size_t capacity) {
  auto [sender, body] = Body::channel(capacity);
  std::pair<SseSender, Sse> channel{SseSender{std::move(sender)}, Sse{std::move(body)}};
  channel.second.keep_alive(kDefaultKeepAlive);
  return channel;
}

Sse&& Sse::keep_alive(std::chrono::nanoseconds interval, std::string_view comment) {
  body_.keep_alive(interval, Event{}.comment(comment).serialize());
  return std::move(*this);
}

Response Sse::into_response() && {
  Response response{Status::ok, {}, std::move(body_)};
  response.headers.set_static("content-type", "text/event-stream");
  response.headers.set_static("cache-control", "no-cache");
  response.headers.set_static("x-accel-buffering", "no");
  return response;
}

}  // namespace spindle::http
