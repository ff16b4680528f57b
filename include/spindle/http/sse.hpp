#pragma once
// Server-sent events (WHATWG HTML, "Server-sent events"): a response that stays open and carries events
// as the server has them, which a browser reads with `new EventSource(url)`. After Axum's Sse.
//
// The events travel through a streamed Body (Body::channel), written chunked by the server, one event
// per chunk. When no event has gone out for a while the body sends a keep-alive comment itself
// (Body::keep_alive: no task or timer of its own per stream). The comment keeps proxies from closing an
// idle stream, and it is how a client that left is noticed even when the producer has nothing to say:
// the write fails, the server drops the body, and the producer's next send returns false.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "spindle/http/body.hpp"
#include "spindle/http/extract.hpp"
#include "spindle/http/response.hpp"
#include "spindle/json.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// One event, built field by field; every field is optional. A client fires an event only if it has
/// data (possibly empty): one without data can still set the id or the retry delay.
///
///   Event{}.event("update").id("7").data("line 1\nline 2").retry(std::chrono::seconds(3))
///   // event: update\nid: 7\nretry: 3000\ndata: line 1\ndata: line 2\n\n
///
/// A field value that would break the stream is refused with std::invalid_argument rather than sent:
/// CR or LF in the event type or the id (they would end the field early and start another), NUL in the
/// id (the client would ignore the id), a negative retry delay. Data and comments may hold any text:
/// they are split into lines at CRLF, CR and LF, one field each, and the client joins the data lines
/// back with LF. On a temporary, each setter returns the event by value, so that a chain can be kept in
/// a `const Event&` safely.
class Event {
 public:
  /// The event type, for `source.addEventListener(type, ...)`; without one the client fires "message".
  Event& event(std::string_view type) &;
  Event event(std::string_view type) && { return std::move(event(type)); }
  /// The id the client sends back in Last-Event-ID when it reconnects, to resume where it was.
  Event& id(std::string_view value) &;
  Event id(std::string_view value) && { return std::move(id(value)); }
  /// The payload (replacing any earlier data).
  Event& data(std::string_view text) &;
  Event data(std::string_view text) && { return std::move(data(text)); }
  /// The payload as JSON (spindle::json::to_string, which writes no line breaks: one data line).
  ///
  ///   auto sending = events.send(Event{}.event("score").json_data(score));   // GCC 12: a named local
  ///   const bool sent = co_await std::move(sending);
  template <class T>
  Event& json_data(const T& value) & {
    return data(json::to_string(value));
  }
  template <class T>
  Event json_data(const T& value) && {
    return std::move(json_data(value));
  }
  /// How long the client waits before reconnecting once the stream is lost (it keeps that setting).
  Event& retry(std::chrono::milliseconds delay) &;
  Event retry(std::chrono::milliseconds delay) && { return std::move(retry(delay)); }
  /// A comment, which clients ignore (appended to any earlier one; one `:` line per line of text).
  Event& comment(std::string_view text) &;
  Event comment(std::string_view text) && { return std::move(comment(text)); }

  /// The event on the wire: comments, event, id, retry, data, each as lines ending in LF, then an
  /// empty line that ends the event.
  std::string serialize() const;

 private:
  std::optional<std::string> event_;
  std::optional<std::string> id_;
  std::optional<std::string> data_;
  std::optional<std::chrono::milliseconds> retry_;
  std::optional<std::string> comment_;
};

/// Sends the events of one Sse stream; copy it for more producers. The stream ends (the response
/// completes) when every sender is gone; a browser's EventSource then reconnects after its retry delay.
class SseSender {
 public:
  /// Queues `event`, waiting while the stream's capacity is full (a slow client slows the producer
  /// down). False once the client is gone: stop producing then.
  ///
  ///   while (true) {
  ///     auto sending = events.send(Event{}.event("tick").data(std::to_string(n++)));
  ///     const bool sent = co_await std::move(sending);
  ///     if (!sent) co_return;   // the client left
  ///     co_await sleep(std::chrono::seconds(1));
  ///   }
  Task<bool> send(Event event) const { return body_.send(event.serialize()); }
  /// send() of an event with just data: `co_await events.send_data("hello")`.
  Task<bool> send_data(std::string_view text) const;
  /// True once the client is known to be gone (a write to it failed; the keep-alive makes sure one is
  /// tried every interval, so an idle producer may poll this).
  bool is_closed() const { return body_.is_closed(); }

 private:
  friend class Sse;
  explicit SseSender(BodySender body) noexcept : body_(std::move(body)) {}
  BodySender body_;
};

/// A server-sent event stream, as a handler returns it: 200 with `content-type: text/event-stream`,
/// `cache-control: no-cache` (a cached stream would replay old events) and `x-accel-buffering: no`
/// (nginx would otherwise hold events back in its buffer).
///
///   Sse live(State<App> app) {
///     auto [events, sse] = Sse::channel();
///     spawn([](SseSender events, Feed feed) -> Task<void> {
///       for (;;) {
///         std::optional<Score> score = co_await feed.next();
///         if (!score) co_return;
///         auto sending = events.send(Event{}.event("score").json_data(*score));
///         const bool sent = co_await std::move(sending);
///         if (!sent) co_return;   // the client left
///       }
///     }(std::move(events), app->feed())).detach();
///     return sse.keep_alive(std::chrono::seconds(15));
///   }
class Sse {
 public:
  /// Keep-alive comments go out after this long without an event unless keep_alive() says otherwise.
  static constexpr std::chrono::seconds kDefaultKeepAlive{15};

  /// A stream and the sender that feeds it; at most `capacity` events wait to be written.
  static std::pair<SseSender, Sse> channel(std::size_t capacity = 16);

  /// Sends a comment (`: comment`, or `:` when empty) after `interval` without an event; a zero
  /// interval turns keep-alive off. Returns the Sse as an rvalue, to be returned from the handler
  /// (`return sse.keep_alive(5s);` moves it); called alone, it just changes the setting.
  Sse&& keep_alive(std::chrono::nanoseconds interval, std::string_view comment = {});
  /// No keep-alive comments: the server then notices a client that left only when an event is written.
  Sse&& without_keep_alive() { return keep_alive(std::chrono::nanoseconds::zero()); }

  /// The response: what IntoResponse<Sse> gives, for a handler that returns Response.
  Response into_response() &&;

 private:
  explicit Sse(Body body) noexcept : body_(std::move(body)) {}
  Body body_;
};

template <>
struct IntoResponse<Sse> {
  static Response into(Sse sse) { return std::move(sse).into_response(); }
};

}  // namespace spindle::http
