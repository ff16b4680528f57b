// The HTTP/1.1 server. The design, for the memory figures in docs/benchmarks.md:
//
// - A connection is one task whose frame (run_connection) holds only the socket, its entry in the
//   server's registry and a few words. While the connection is idle it waits for readability without a
//   buffer, as nginx does; when bytes arrive it leases a Session (read buffer, parser, output buffer,
//   parameter scratch) from a per-thread pool and gives it back when the socket is drained again. So
//   10,000 idle keep-alive connections cost 10,000 small frames, not 10,000 buffers.
// - Pipelining and corking: serve_burst answers every complete request in the read buffer, appending the
//   responses to one output buffer, and writes it once, when it needs more input (or before awaiting a
//   handler that suspends, or past 64 KiB). A client that pipelines 16 requests gets one write.
// - A handler that waits (a Task) on a request with nothing behind it holds neither the session nor
//   serve_burst's frame: the head is copied out (DetachedHead), the burst ends, and the small
//   answer_detached frame awaits the handler, then calls serve_burst again with the response.
// - Timeouts are coarse and cost no timer per connection: each connection publishes its phase (waiting,
//   reading a head or a body, writing) and since when, and a sweeper task per serve() checks the registry
//   a few times per timeout period. It ends an expired wait with shutdown(2) on the socket, which wakes
//   the connection's own task: it answers 408 for a request cut short and closes. The registry's lock is
//   held while the sweeper calls shutdown and while a connection leaves, so the fd is never reused under
//   the sweeper.

#include "spindle/http/server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <climits>
#include <cstring>
#include <ctime>
#include <exception>
#include <mutex>

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/http/upgrade.hpp"
#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/runtime/detail/log.hpp"
#include "spindle/runtime/detail/task_header.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/when.hpp"

namespace spindle::http {
namespace detail {
namespace {

std::int64_t coarse_now_ms() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

std::int64_t to_ms(Duration d) noexcept { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

/// What a connection is doing, for the sweeper.
enum class Phase : std::uint8_t {
  fresh,     // accepted, no request yet (header timeout)
  idle,      // between keep-alive requests (idle timeout)
  head,      // reading a request head (header timeout)
  body,      // reading a request body (body timeout)
  handler,   // the handler runs (no timeout)
  writing,   // writing a response (write timeout)
  closing,   // the sweeper closed it
  upgraded,  // another protocol runs on it (no timeout; told when a graceful shutdown begins)
};

}  // namespace

/// A connection's entry in the server's registry; lives in the connection's frame.
struct ConnectionNode {
  explicit ConnectionNode(int descriptor) noexcept : fd(descriptor) {}

  void enter(Phase p) noexcept {
    // A handler has no timeout: no need to read the clock (a measurable share of a /plaintext answer).
    if (p != Phase::handler) since.store(coarse_now_ms(), std::memory_order_relaxed);
    phase.store(p, std::memory_order_release);  // the sweeper that sees the phase sees its `since`
  }
  /// Leaves a waiting phase for `head`, unless the sweeper closed the connection first.
  bool activate(Phase waiting) noexcept {
    since.store(coarse_now_ms(), std::memory_order_relaxed);
    return phase.compare_exchange_strong(waiting, Phase::head, std::memory_order_acq_rel);
  }
  bool timed_out() const noexcept { return expired.load(std::memory_order_acquire); }

  ConnectionNode* prev = nullptr;
  ConnectionNode* next = nullptr;
  const int fd;
  std::atomic<Phase> phase{Phase::fresh};
  std::atomic<bool> expired{false};  // a request was cut short by its timeout: answer 408
  std::atomic<std::int64_t> since{coarse_now_ms()};
  spindle::detail::TaskHeader* task = nullptr;  // the connection's task, aborted when the grace runs out
};

namespace {
/// Whether bytes wait unread on the socket (a peek: they stay for the connection's own read).
bool has_pending_input(int fd) noexcept {
  char byte;
  return ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}
}  // namespace

struct ServerState {
  ServerState(const RouterCore& routes, ServerConfig settings) : router(routes), config(settings) {}

  bool attach(ConnectionNode& node) {
    std::lock_guard lock(mutex);
    if (draining.load(std::memory_order_relaxed)) return false;
    node.next = first;
    if (first != nullptr) first->prev = &node;
    first = &node;
    ++open;
    return true;
  }
  void detach(ConnectionNode& node) {
    std::lock_guard lock(mutex);
    if (node.prev != nullptr)
      node.prev->next = node.next;
    else
      first = node.next;
    if (node.next != nullptr) node.next->prev = node.prev;
    --open;
  }
  std::size_t open_connections() {
    std::lock_guard lock(mutex);
    return open;
  }

  std::int64_t limit_for(Phase phase) const noexcept {
    switch (phase) {
      case Phase::fresh:
      case Phase::head:
        return to_ms(config.header_timeout);
      case Phase::idle:
        return to_ms(config.idle_timeout);
      case Phase::body:
        return to_ms(config.body_timeout);
      case Phase::writing:
        return to_ms(config.write_timeout);
      case Phase::handler:
      case Phase::closing:
      case Phase::upgraded:
        return INT64_MAX;
    }
    return INT64_MAX;
  }

  /// One pass of the sweeper over the registry.
  void sweep() {
    const std::int64_t now = coarse_now_ms();
    const bool drain = draining.load(std::memory_order_acquire);
    const bool force = drain && now >= drain_deadline.load(std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    for (ConnectionNode* node = first; node != nullptr; node = node->next) {
      if (force) {
        // Whatever it is doing (a handler may be waiting on anything, not only the socket): shut the
        // socket and abort the task. Both are idempotent, so every pass after the deadline repeats them.
        node->phase.store(Phase::closing, std::memory_order_relaxed);
        ::shutdown(node->fd, SHUT_RDWR);
        if (node->task != nullptr) node->task->request_abort();
        continue;
      }
      Phase phase = node->phase.load(std::memory_order_acquire);
      if (phase == Phase::closing) continue;
      if (phase == Phase::upgraded) {
        // Shut the reading side once: a task waiting to read wakes with end-of-stream, sees the server
        // draining, and can still write its goodbye (UpgradedConnection::draining).
        if (drain && !node->expired.exchange(true, std::memory_order_acq_rel)) ::shutdown(node->fd, SHUT_RD);
        continue;
      }
      const bool waiting = phase == Phase::fresh || phase == Phase::idle;
      const bool expired = now - node->since.load(std::memory_order_relaxed) >= limit_for(phase);
      if (waiting && (drain || expired)) {
        // A request that has already arrived is not closed under: the connection's task is about to wake
        // for it, answers it (with Connection: close when draining) and then closes. Closing now would
        // lose a request that reached the server before the shutdown or the timeout.
        if (has_pending_input(node->fd)) continue;
        // Only if the connection is still waiting: one that just woke for a request keeps it.
        if (node->phase.compare_exchange_strong(phase, Phase::closing, std::memory_order_acq_rel))
          ::shutdown(node->fd, SHUT_RDWR);
      } else if (expired && (phase == Phase::head || phase == Phase::body)) {
        // Shut only the reading side: the connection can still send its 408.
        if (!node->expired.exchange(true, std::memory_order_acq_rel)) ::shutdown(node->fd, SHUT_RD);
      } else if (expired && phase == Phase::writing) {
        // Only if it is still in that write: one that moved on (into a long handler, say) is not cut.
        if (node->phase.compare_exchange_strong(phase, Phase::closing, std::memory_order_acq_rel))
          ::shutdown(node->fd, SHUT_RDWR);
      }
    }
  }

  Duration sweep_period() const noexcept {
    const Duration shortest =
        std::min({config.header_timeout, config.idle_timeout, config.body_timeout, config.write_timeout});
    return std::clamp<Duration>(shortest / 4, std::chrono::milliseconds(5), std::chrono::seconds(1));
  }

  void begin_shutdown(Duration grace) {
    {
      std::lock_guard lock(mutex);
      if (draining.load(std::memory_order_relaxed)) return;
      drain_deadline.store(coarse_now_ms() + to_ms(grace), std::memory_order_relaxed);
      draining.store(true, std::memory_order_release);
    }
    stop.cancel();
    sweep();  // idle connections close now, not at the next tick
  }

  const RouterCore router;
  const ServerConfig config;
  std::mutex mutex;
  ConnectionNode* first = nullptr;  // guarded by mutex
  std::size_t open = 0;             // guarded by mutex
  std::atomic<bool> draining{false};
  std::atomic<std::int64_t> drain_deadline{INT64_MAX};
  CancellationToken stop;  // cancelled by shutdown(): the accept loops end
};

namespace {

/// The HTTP date of this second ("Sun, 06 Nov 1994 08:49:37 GMT"), formatted once per second per thread.
std::string_view http_date() noexcept {
  thread_local std::int64_t cached_second = -1;
  thread_local char text[32];
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cached_second) {
    cached_second = ts.tv_sec;
    tm parts{};
    gmtime_r(&ts.tv_sec, &parts);
    std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
  }
  return {text, 29};
}

enum class Framing { none, length, chunked, close };

/// Whether a handler's field is one the server writes itself: a handler's own framing fields would
/// contradict the body it returned.
bool is_server_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 4:
      return iequals(name, "date");
    case 10:
      return iequals(name, "connection");
    case 14:
      return iequals(name, "content-length");
    case 17:
      return iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

/// Writes a response's status line and header fields, the server's own fields included. The size is
/// computed first and the pieces copied into place: appending piece by piece (a capacity check and a
/// strlen each) was a tenth of a /plaintext answer's instructions under callgrind.
void append_head(std::string& out, const Response& response, Framing framing, std::size_t length, bool keep_alive,
                 int version_minor) {
  using namespace std::string_view_literals;
  int status = code(response.status);
  // A 1xx is not a final answer (the client would wait for another); the server sends 100 itself, and
  // a 101 only with an upgrade (serve_burst checks).
  if ((status < 200 && status != 101) || status > 599) status = 500;
  const std::string_view reason = reason_phrase(static_cast<Status>(status));
  const std::string_view date = http_date();
  char length_digits[24];
  std::size_t length_size = 0;
  if (framing == Framing::length)
    length_size = static_cast<std::size_t>(
        std::to_chars(length_digits, length_digits + sizeof length_digits, length).ptr - length_digits);
  const std::string_view connection = status == 101        ? "Connection: upgrade\r\n"sv
                                      : !keep_alive        ? "Connection: close\r\n"sv
                                      : version_minor == 0 ? "Connection: keep-alive\r\n"sv
                                                           : ""sv;
  constexpr std::string_view kLength = "Content-Length: "sv, kChunked = "Transfer-Encoding: chunked\r\n"sv;

  std::size_t size = "HTTP/1.1 200 "sv.size() + reason.size() + "\r\nDate: "sv.size() + date.size() + 2;
  for (const auto& field : response.headers)
    if (!is_server_field(field.name)) size += field.name.size() + 2 + field.value.size() + 2;
  if (framing == Framing::length) size += kLength.size() + length_size + 2;
  if (framing == Framing::chunked) size += kChunked.size();
  size += connection.size() + 2;

  const std::size_t start = out.size();
  out.resize(start + size);
  char* at = out.data() + start;
  const auto put = [&at](std::string_view piece) {
    std::memcpy(at, piece.data(), piece.size());
    at += piece.size();
  };
  put("HTTP/1.1 "sv);
  *at++ = static_cast<char>('0' + status / 100);
  *at++ = static_cast<char>('0' + status / 10 % 10);
  *at++ = static_cast<char>('0' + status % 10);
  *at++ = ' ';
  put(reason);
  put("\r\nDate: "sv);
  put(date);
  put("\r\n"sv);
  for (const auto& field : response.headers) {
    if (is_server_field(field.name)) continue;
    put(field.name);
    put(": "sv);
    put(field.value);
    put("\r\n"sv);
  }
  if (framing == Framing::length) {
    put(kLength);
    put({length_digits, length_size});
    put("\r\n"sv);
  } else if (framing == Framing::chunked) {
    put(kChunked);
  }
  put(connection);
  put("\r\n"sv);
}

bool wants_close(const Response& response) noexcept {
  const auto connection = response.headers.get("connection");
  return connection && iequals(*connection, "close");
}

constexpr std::size_t kInitialBuffer = 1024;
constexpr std::size_t kScratch = 16 * 1024;
constexpr std::size_t kCorkLimit = 64 * 1024;    // flush the output buffer beyond this
constexpr std::size_t kInlineBody = 16 * 1024;   // larger bodies are written from where they are
constexpr std::size_t kMaxDiscard = 256 * 1024;  // an unread body larger than this closes the connection
constexpr std::size_t kPooledSessions = 256;     // per thread

/// Per-request state, leased for a burst of activity and pooled per thread (see the top of this file).
class Session final : public BodySource {
 public:
  // --- the read buffer: [begin, end) is unread; a request's views point into it until it is answered.
  std::string_view unread() const noexcept { return {buffer_.get() + begin, end - begin}; }
  std::span<char> space() noexcept { return {buffer_.get() + end, capacity_ - end}; }
  bool empty() const noexcept { return begin == end; }

  /// Room to read more of a head: moves the unread bytes to the front, grows up to the head limit.
  bool make_room(std::size_t max_bytes) {
    if (begin > 0) {
      std::memmove(buffer_.get(), buffer_.get() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
    if (end < capacity_) return true;
    if (capacity_ >= max_bytes) return false;
    grow(std::min(max_bytes, capacity_ * 2));
    return true;
  }

  /// After a read into an empty buffer: if it filled the buffer, more is probably waiting (a large
  /// pipelined batch), so the buffer doubles, up to 16 KiB, for fewer reads. Nothing points into it yet.
  void grow_if_filled() {
    if (end == capacity_ && capacity_ < kScratch) grow(capacity_ * 2);
  }

  void prepare(ServerState& server, TcpStream& stream, ConnectionNode& node) {
    server_ = &server;
    stream_ = &stream;
    node_ = &node;
    if (buffer_ == nullptr) grow(kInitialBuffer);
    const ParserLimits& limits = server.config.limits;
    if (limits.max_request_line != limits_.max_request_line || limits.max_header_bytes != limits_.max_header_bytes ||
        limits.max_fields != limits_.max_fields) {
      limits_ = limits;
      parser = RequestParser{limits};
    }
    parser.reset();
  }
  /// Back to the pool: forget the connection, drop buffers that a large request grew.
  void recycle() noexcept {
    begin = end = 0;
    out.clear();
    carry_.clear();
    if (capacity_ > 4 * kInitialBuffer) {
      buffer_.reset();
      capacity_ = 0;
    }
    if (out.capacity() > kCorkLimit * 2) std::string{}.swap(out);
    if (scratch_.size() > kScratch) std::string{}.swap(scratch_);
    server_ = nullptr;
    stream_ = nullptr;
    node_ = nullptr;
    framing_ = BodyFraming::none;
    cursor_ = 0;
    body_done_ = true;
    continue_pending_ = false;
    must_close = false;
  }

  // --- the current request's body
  void start_body(const RequestHead& head, std::size_t body_start) {
    framing_ = head.framing;
    remaining_ = head.framing == BodyFraming::content_length ? head.content_length : 0;
    cursor_ = body_start;
    body_bytes_ = 0;
    body_done_ = head.framing == BodyFraming::none || (head.framing == BodyFraming::content_length && remaining_ == 0);
    continue_pending_ = head.expect_continue && head.version_minor == 1 && !body_done_;  // RFC 9110 10.1.1
    scratch_begin_ = scratch_end_ = 0;
    chunked_ = ChunkedDecoder{};
    must_close = false;
  }
  bool body_done() const noexcept { return body_done_; }
  bool continue_pending() const noexcept { return continue_pending_; }

  Task<Result<std::string_view, BodyError>> next() override {
    if (body_done_) co_return std::string_view{};
    if (continue_pending_) {
      continue_pending_ = false;
      const bool sent = co_await write_all("HTTP/1.1 100 Continue\r\n\r\n", Phase::body);
      if (!sent) co_return fail(Status::bad_request, "connection lost");
    }
    if (framing_ == BodyFraming::content_length) {
      if (cursor_ < end) {
        const std::size_t n = std::min<std::uint64_t>(remaining_, end - cursor_);
        const std::string_view piece{buffer_.get() + cursor_, n};
        cursor_ += n;
        consume_length(n);
        co_return piece;
      }
      if (scratch_.size() < kScratch) scratch_.resize(kScratch);
      const std::size_t want = std::min<std::uint64_t>(remaining_, scratch_.size());
      Result<std::size_t, BodyError> n = co_await read_body(std::span{scratch_.data(), want});
      if (!n) co_return Err{std::move(n).error()};
      consume_length(*n);
      co_return std::string_view{scratch_.data(), *n};
    }
    // chunked
    for (;;) {
      const bool from_buffer = cursor_ < end;
      const std::string_view input =
          from_buffer ? std::string_view{buffer_.get() + cursor_, end - cursor_}
                      : std::string_view{scratch_.data() + scratch_begin_, scratch_end_ - scratch_begin_};
      if (input.empty()) {
        if (scratch_.size() < kScratch) scratch_.resize(kScratch);
        Result<std::size_t, BodyError> n = co_await read_body(std::span{scratch_.data(), scratch_.size()});
        if (!n) co_return Err{std::move(n).error()};
        scratch_begin_ = 0;
        scratch_end_ = *n;
        continue;
      }
      const ChunkedDecoder::Result step = chunked_.decode(input);
      (from_buffer ? cursor_ : scratch_begin_) += step.consumed;
      if (step.status == ChunkedDecoder::Status::error)
        co_return fail(Status::bad_request, std::string{chunked_.error()});
      body_bytes_ += step.data.size();
      if (body_bytes_ > server_->config.max_body)
        co_return fail(Status::payload_too_large,
                       "request body larger than " + std::to_string(server_->config.max_body) + " bytes");
      if (step.status == ChunkedDecoder::Status::done) {
        body_done_ = true;
        // Bytes read past the body belong to the next request.
        if (!from_buffer) carry_.assign(scratch_.data() + scratch_begin_, scratch_end_ - scratch_begin_);
      }
      if (!step.data.empty() || body_done_) co_return step.data;
    }
  }

  /// Reads and drops what the handler left of the body; false if that is too much (close instead).
  Task<bool> discard_body() {
    std::size_t dropped = 0;
    while (!body_done_) {
      if (continue_pending_) co_return false;  // the client waits for our go-ahead: it may never send it
      if (framing_ == BodyFraming::content_length && remaining_ > kMaxDiscard) co_return false;
      Result<std::string_view, BodyError> piece = co_await next();
      if (!piece) co_return false;
      dropped += piece->size();
      if (dropped > kMaxDiscard) co_return false;
    }
    co_return true;
  }

  /// The request is answered: drop its bytes from the buffer.
  void finish_request() {
    begin = std::min(cursor_, end);
    if (begin == end) begin = end = 0;
    if (!carry_.empty()) {
      make_room(SIZE_MAX);
      if (capacity_ - end < carry_.size()) grow(end + carry_.size());
      std::memcpy(buffer_.get() + end, carry_.data(), carry_.size());
      end += carry_.size();
      carry_.clear();
    }
    parser.reset();
  }

  // --- output
  /// Writes `out` (and then `extra`) and empties it; false if the connection failed.
  Task<bool> flush(Phase after, std::string_view extra = {}) {
    node_->enter(Phase::writing);
    std::size_t done = 0;
    const std::size_t total = out.size() + extra.size();
    while (done < total) {
      iovec parts[2];
      int count = 0;
      if (done < out.size()) parts[count++] = {out.data() + done, out.size() - done};
      const std::size_t extra_done = done > out.size() ? done - out.size() : 0;
      if (extra_done < extra.size())
        parts[count++] = {const_cast<char*>(extra.data()) + extra_done, extra.size() - extra_done};
      IoResult<std::size_t> n = co_await stream_->writev(std::span{parts, static_cast<std::size_t>(count)});
      if (!n) co_return false;
      done += *n;
      // The write timeout is for a client that stops reading, not for a large answer it reads slowly.
      if (done < total) node_->since.store(coarse_now_ms(), std::memory_order_relaxed);
    }
    out.clear();
    node_->enter(after);
    co_return true;
  }
  Task<bool> write_all(std::string_view bytes, Phase after) {
    out += bytes;
    const bool written = co_await flush(after);
    co_return written;
  }

  RequestParser parser;
  Request request;  // the request being answered (here rather than in a coroutine frame: see answer())
  std::string out;
  std::vector<PathParam> params;
  std::size_t begin = 0;
  std::size_t end = 0;
  bool must_close = false;  // the request's body went wrong: answer, then close

 private:
  void grow(std::size_t capacity) {
    auto bigger = std::make_unique<char[]>(capacity);
    if (buffer_ != nullptr) std::memcpy(bigger.get(), buffer_.get(), end);
    buffer_ = std::move(bigger);
    capacity_ = capacity;
  }
  void consume_length(std::size_t n) noexcept {
    remaining_ -= n;
    if (remaining_ == 0) body_done_ = true;
  }
  Err<BodyError> fail(Status status, std::string message) {
    must_close = true;
    body_done_ = true;
    return Err{BodyError{status, std::move(message)}};
  }
  Task<Result<std::size_t, BodyError>> read_body(std::span<char> into) {
    node_->enter(Phase::body);
    IoResult<std::size_t> n = co_await stream_->read(into);
    const bool timed_out = node_->timed_out();
    node_->enter(Phase::handler);
    if (timed_out) co_return fail(Status::request_timeout, "timed out reading the request body");
    if (!n) co_return fail(Status::bad_request, "connection failed while reading the body");
    if (*n == 0) co_return fail(Status::bad_request, "connection closed in the middle of the body");
    co_return *n;
  }

  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  ParserLimits limits_;
  ServerState* server_ = nullptr;
  TcpStream* stream_ = nullptr;
  ConnectionNode* node_ = nullptr;

  BodyFraming framing_ = BodyFraming::none;
  std::uint64_t remaining_ = 0;
  std::size_t cursor_ = 0;  // where the body continues in the read buffer
  std::uint64_t body_bytes_ = 0;
  bool body_done_ = true;
  bool continue_pending_ = false;
  ChunkedDecoder chunked_;
  std::string scratch_;  // body bytes read from the socket once the read buffer's are used
  std::size_t scratch_begin_ = 0;
  std::size_t scratch_end_ = 0;
  std::string carry_;  // bytes of the next request read along with a chunked body
};

/// The per-thread pool of sessions.
class SessionPool {
 public:
  ~SessionPool() {
    for (Session* s : free_) delete s;
  }
  Session* acquire() {
    if (free_.empty()) return new Session;
    Session* s = free_.back();
    free_.pop_back();
    return s;
  }
  void release(Session* s) noexcept {
    s->recycle();
    if (free_.size() < kPooledSessions) {
      try {
        free_.push_back(s);
        return;
      } catch (...) {
      }
    }
    delete s;
  }

 private:
  std::vector<Session*> free_;
};

thread_local SessionPool session_pool;

/// A session on lease; back to the pool of whichever thread the connection ends up on.
class SessionLease {
 public:
  SessionLease() = default;
  SessionLease(const SessionLease&) = delete;
  SessionLease& operator=(const SessionLease&) = delete;
  ~SessionLease() { reset(); }
  Session& acquire() {
    if (session_ == nullptr) session_ = session_pool.acquire();
    return *session_;
  }
  void reset() noexcept {
    if (session_ != nullptr) session_pool.release(std::exchange(session_, nullptr));
  }

 private:
  Session* session_ = nullptr;
};

/// Reads and drops what the client still sends, up to 1 MiB or its end.
Task<void> drain_input(TcpStream& stream) {
  char sink[4096];
  std::size_t drained = 0;
  while (drained < 1024 * 1024) {
    IoResult<std::size_t> n = co_await stream.read(std::span{sink});
    if (!n || *n == 0) co_return;
    drained += *n;
  }
}

/// The end of a connection that closes after its last answer (as nginx's lingering close): a client may
/// still be sending (a body nobody read, requests pipelined behind), and closing a socket with unread
/// input makes the kernel send a reset, which can destroy the answer in the client's receive buffer
/// before it reads it. So: shut the sending side, then read and drop what comes, for at most 2 s.
Task<void> linger_close(TcpStream& stream) {
  (void)stream.shutdown(Shutdown::write);
  Task<void> draining = drain_input(stream);
  (void)co_await timeout(std::chrono::seconds(2), std::move(draining));
}

/// Sends an error response and closes: the request was refused before any handler saw it.
Task<void> refuse(Session& session, TcpStream& stream, Status status, std::string_view reason) {
  const Response response = Response::error(status, reason);
  append_head(session.out, response, Framing::length, response.body.bytes().size(), false, 1);
  session.out += response.body.bytes();
  const bool sent = co_await session.flush(Phase::closing);
  if (sent) co_await linger_close(stream);
}

/// The head of a request whose handler may wait, copied out of the session's read buffer into one block
/// (field array, parameter array, then the bytes) so that the session, with its buffers, goes back to the
/// pool while the handler waits: 10,000 requests waiting on a database hold 10,000 of these, not 10,000
/// sessions.
class DetachedHead {
 public:
  DetachedHead() = default;
  DetachedHead(const DetachedHead&) = delete;
  DetachedHead& operator=(const DetachedHead&) = delete;
  // The block stays where it is, so the Request that points into it needs no update.
  DetachedHead(DetachedHead&& other) noexcept
      : block_(std::exchange(other.block_, nullptr)), bytes_(other.bytes_), text_offset_(other.text_offset_) {}
  ~DetachedHead() {
    if (block_ != nullptr) spindle::detail::deallocate_frame(block_, bytes_);
  }

  void take(Request& request, std::string_view head, std::span<const HeaderField> fields,
            std::span<const PathParam> params) {
    bytes_ = static_cast<std::uint32_t>(fields.size() * sizeof(HeaderField) + params.size() * sizeof(PathParam) +
                                        head.size());
    // The frame allocator's size classes: no malloc header, and recycled by this thread.
    block_ = static_cast<std::byte*>(spindle::detail::allocate_frame(bytes_));
    auto* new_fields = reinterpret_cast<HeaderField*>(block_);
    auto* new_params = reinterpret_cast<PathParam*>(new_fields + fields.size());
    char* text = reinterpret_cast<char*>(new_params + params.size());
    std::memcpy(text, head.data(), head.size());
    text_offset_ = static_cast<std::uint32_t>(text - reinterpret_cast<char*>(block_));
    const auto moved = [&](std::string_view view) {
      const bool inside = view.data() >= head.data() && view.data() + view.size() <= head.data() + head.size();
      return inside ? std::string_view{text + (view.data() - head.data()), view.size()} : view;
    };
    for (std::size_t i = 0; i < fields.size(); ++i)
      new (new_fields + i) HeaderField{moved(fields[i].name), moved(fields[i].value)};
    for (std::size_t i = 0; i < params.size(); ++i)
      new (new_params + i) PathParam{params[i].name, moved(params[i].value)};
    request.relocate(head.data(), head.size(), text, {new_fields, fields.size()}, {new_params, params.size()});
  }
  /// The copied head, request line first.
  std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(block_) + text_offset_, bytes_ - text_offset_};
  }

 private:
  std::byte* block_ = nullptr;
  std::uint32_t bytes_ = 0;
  std::uint32_t text_offset_ = 0;
};

Task<void> refuse_too_large(Session& session, TcpStream& stream, std::size_t limit) {
  const std::string reason = "request body larger than " + std::to_string(limit) + " bytes";
  co_await refuse(session, stream, Status::payload_too_large, reason);
}

enum class Next { more, close };

/// Waits for the rest of a request head that has partly arrived (the sweeper enforces the header timeout).
Task<Next> read_rest_of_head(ServerState& server, TcpStream& stream, ConnectionNode& node, Session& s) {
  const ParserLimits& limits = server.config.limits;
  if (!s.make_room(limits.max_request_line + limits.max_header_bytes + 8)) {
    co_await refuse(s, stream, Status::request_header_fields_too_large, "header fields too large");
    co_return Next::close;
  }
  IoResult<std::size_t> n = co_await stream.read(s.space());
  if (node.timed_out()) {
    co_await refuse(s, stream, Status::request_timeout, "timed out waiting for the request header");
    co_return Next::close;
  }
  if (!n || *n == 0) co_return Next::close;
  s.end += *n;
  co_return Next::more;
}

Task<void> until_cancelled(CancellationToken token) { co_await token.cancelled(); }

/// Writes a streamed body as it arrives: chunked for HTTP/1.1, delimited by the close for HTTP/1.0.
Task<bool> write_stream(ServerState& server, Session& s, Body& body, Framing framing) {
  const bool endless = body.keeps_alive();
  for (;;) {
    std::optional<std::string> chunk;
    if (endless) {
      // A stream meant to stay open ends at a graceful shutdown, cleanly: the client (an EventSource)
      // reconnects, to another instance if there is one.
      Task<std::optional<std::string>> next = body.next_chunk();
      Task<void> stopping = until_cancelled(server.stop);
      auto first = co_await select(std::move(next), std::move(stopping));
      if (first.index() == 1) break;
      chunk = std::move(std::get<0>(first));
    } else {
      chunk = co_await body.next_chunk();
    }
    if (!chunk) break;
    if (chunk->empty()) continue;  // an empty chunk would end the body
    if (framing == Framing::chunked) {
      char size[20];
      const auto [end, ec] = std::to_chars(size, size + sizeof size, chunk->size(), 16);
      s.out.append(size, end).append("\r\n");
    }
    const bool written = co_await s.flush(Phase::handler, *chunk);
    if (!written) co_return false;
    if (framing == Framing::chunked) s.out += "\r\n";
  }
  if (framing == Framing::chunked) s.out += "0\r\n\r\n";
  co_return true;
}

/// The 500 for a handler that threw, logged with the request line and what it threw. `head` starts with
/// the request line.
Response handler_failed(std::string_view head, const std::string& what) {
  const std::string_view line = head.substr(0, head.find("\r\n"));
  spindle::detail::log_warning("http: handler for \"%.*s\" threw: %s", static_cast<int>(line.size()), line.data(),
                               what.c_str());
  return Response::error(Status::internal_server_error, "internal server error");
}

/// Awaits a handler's task and hands back what it threw instead of rethrowing it, so that answer() deals
/// with a failed handler in plain code, without a try block around a co_await.
struct HandlerOutcome {
  Task<Response>& task;
  Response& response;
  std::exception_ptr& error;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
    task.handle().promise().set_continuation(awaiting);
    return task.handle();
  }
  void await_resume() {
    auto& promise = task.handle().promise();
    if (promise.has_exception())
      error = promise.exception();
    else
      response = promise.take_result();
  }
};

/// Calls a handler that returns a task (a plain function returning one may throw right away: `error`).
Task<Response> start_handler(const Handler& handler, Request& request, std::exception_ptr& error) {
  try {
    return std::move(std::get<1>(handler.call(request)));
  } catch (...) {
    error = std::current_exception();
    return {};
  }
}

/// What answer() needs to know of a request after its handler ran (the parser's head may be gone by then).
struct Exchange {
  std::uint32_t head_size;  // at most the head limits, far below 4 GiB
  std::uint8_t version_minor;
  bool keep_alive_asked;
  bool is_head;
};

/// Starts answering the complete request at the front of the session's buffer: its body and its Request.
Exchange begin_exchange(Session& s, int fd) {
  const RequestHead& head = s.parser.head();
  const Exchange exchange{static_cast<std::uint32_t>(s.parser.head_size()),
                          static_cast<std::uint8_t>(head.version_minor), head.keep_alive, head.method == Method::head};
  s.start_body(head, s.begin + exchange.head_size);
  // No body, no source: a request with none can be detached from the session (and the session reused
  // by another connection) while its handler waits, so it must not point at the session.
  s.request = Request{head, s.body_done() ? RequestBody{nullptr, 0}
                                          : RequestBody{&s, head.framing == BodyFraming::content_length
                                                                ? std::optional<std::uint64_t>{head.content_length}
                                                                : std::nullopt}};
  s.request.set_socket(fd);
  return exchange;
}

/// How a response continues after its head went into the output buffer.
enum class Rest { none, body, stream };

/// Puts the response's head (and a small body) into the output buffer; what is left to write.
Rest queue_response(Session& s, Response& response, const Exchange& exchange, bool& keep_alive) {
  if (response.body.is_stream()) {
    const Framing framing = forbids_body(response.status) ? Framing::none
                            : exchange.version_minor == 1 ? Framing::chunked
                                                          : Framing::close;
    if (framing == Framing::close) keep_alive = false;
    append_head(s.out, response, framing, 0, keep_alive, exchange.version_minor);
    return exchange.is_head || framing == Framing::none ? Rest::none : Rest::stream;
  }
  const std::string_view body = response.body.bytes();
  const Framing framing = forbids_body(response.status) ? Framing::none : Framing::length;
  append_head(s.out, response, framing, body.size(), keep_alive, exchange.version_minor);
  if (exchange.is_head || framing == Framing::none) return Rest::none;
  if (body.size() > kInlineBody) return Rest::body;
  s.out += body;
  return Rest::none;
}

/// The rarer end of an answer: a large or streamed body, or the last write before closing. Every await's
/// result goes to a named local: written as `if (rest == Rest::body && !co_await ...) co_return false;`
/// GCC 12 compiled it so that it never ran (docs/architecture.md, "GCC 12 and coroutines").
Task<bool> finish_answer(ServerState& server, Session& s, TcpStream& stream, Response& response, Rest rest,
                         int version_minor, bool keep_alive) {
  bool written = true;
  if (rest == Rest::body) {
    const std::string_view body = response.body.bytes();
    written = co_await s.flush(Phase::handler, body);
  } else if (rest == Rest::stream) {
    written = co_await s.flush(Phase::handler);
    const Framing framing = version_minor == 1 ? Framing::chunked : Framing::close;
    if (written) written = co_await write_stream(server, s, response.body, framing);
    if (written && server.draining.load(std::memory_order_acquire)) keep_alive = false;
  }
  if (written && !keep_alive) {
    if (!s.out.empty()) written = co_await s.flush(Phase::closing);
    if (written) co_await linger_close(stream);
  }
  co_return written&& keep_alive;
}

/// What takes a connection over after a 101, and the bytes read past the request that asked for it.
/// Allocated only then: every connection's frame holds a pointer to one, not its 64 bytes.
struct Takeover {
  std::shared_ptr<Upgrade> upgrade;
  std::string leftover;
  std::shared_ptr<void> anchor;  // what holds the socket once the upgrade has it (UpgradedConnection::anchor)
};

/// A response with an upgrade: writes the 101 and sets `takeover`, true; or, when the upgrade cannot
/// happen, turns the response into the answer to send instead (an upgrade with another status is just
/// dropped), false.
Task<bool> switch_protocols(ServerState& server, Session& s, Response& response, const Exchange& exchange,
                            bool finished, std::unique_ptr<Takeover>& takeover) {
  if (response.status != Status::switching_protocols) {
    response.upgrade.reset();
    co_return false;
  }
  if (server.draining.load(std::memory_order_acquire)) {
    response = Response::error(Status::service_unavailable, "the server is shutting down");
    co_return false;
  }
  if (exchange.version_minor == 0 || exchange.is_head || s.must_close) {
    response = Response::error(Status::bad_request, "this request cannot switch protocols");
    co_return false;
  }
  append_head(s.out, response, Framing::none, 0, true, 1);
  if (!finished) s.finish_request();
  const bool sent = co_await s.flush(Phase::upgraded);
  if (!sent) co_return true;  // the connection failed: nothing to take over, it closes
  takeover = std::make_unique<Takeover>(Takeover{std::move(response.upgrade), std::string{s.unread()}, nullptr});
  co_return true;
}

/// How a burst ended.
enum class BurstEnd {
  idle,             // the socket is drained: the session can go back to the pool
  close,            // the connection must close
  handler_waiting,  // a handler waits, detached: the connection awaits `answering`, the rest of the burst
};

/// A handler that waits with its request detached from the session. The copied head its Request points
/// into is declared first, so that it outlives the handler's task.
struct DetachedHandler {
  DetachedHead head;
  Task<Response> task;
  Exchange exchange;
};

/// A detached handler's response, for serve_burst to answer first when it goes on with the burst.
struct HandlerDone {
  Response& response;
  const Exchange& exchange;
};

Task<BurstEnd> serve_burst(ServerState& server, TcpStream& stream, ConnectionNode& node, SessionLease& lease,
                           std::unique_ptr<Takeover>& takeover, Task<BurstEnd>& answering, HandlerDone* done = nullptr);

/// Waits for a detached handler, then answers it and goes on with the burst. While the handler waits,
/// this small frame is all the connection holds besides its own: serve_burst's frame, several times
/// larger, is gone. 10,000 requests waiting on a database hold 10,000 of these.
Task<BurstEnd> answer_detached(ServerState& server, TcpStream& stream, ConnectionNode& node, SessionLease& lease,
                               std::unique_ptr<Takeover>& takeover, Task<BurstEnd>& answering,
                               DetachedHandler waiting) {
  Response response;
  std::exception_ptr error;
  co_await HandlerOutcome{waiting.task, response, error};
  waiting.task = {};  // the handler's frame goes before the head its Request points into
  if (error) response = handler_failed(waiting.head.text(), describe_exception(error));
  HandlerDone done{response, waiting.exchange};
  const BurstEnd end = co_await serve_burst(server, stream, node, lease, takeover, answering, &done);
  co_return end;
}

/// Answers requests while bytes keep coming. Before a handler that may wait, a request with no body left
/// to read and nothing pipelined behind it is detached from the session (DetachedHead), the session goes
/// back to the pool, and the burst ends with `answering` set to answer_detached, which waits for the
/// handler and then calls serve_burst again with its response (`done`), on a fresh session.
Task<BurstEnd> serve_burst(ServerState& server, TcpStream& stream, ConnectionNode& node, SessionLease& lease,
                           std::unique_ptr<Takeover>& takeover, Task<BurstEnd>& answering, HandlerDone* done) {
  Session* s = &lease.acquire();
  s->prepare(server, stream, node);
  for (;;) {
    Response response;
    Exchange exchange{};
    bool finished = false;  // the request's bytes are already dropped from the session
    if (done != nullptr) {
      response = std::move(done->response);
      exchange = done->exchange;
      finished = true;
      done = nullptr;
    } else {
      const RequestParser::Status parsed =
          s->empty() ? RequestParser::Status::incomplete : s->parser.parse(s->unread());
      if (parsed == RequestParser::Status::error) {
        co_await refuse(*s, stream, static_cast<Status>(s->parser.error().status), s->parser.error().reason);
        co_return BurstEnd::close;
      }
      if (parsed == RequestParser::Status::incomplete) {
        if (!s->out.empty()) {
          const bool flushed = co_await s->flush(Phase::head);
          if (!flushed) co_return BurstEnd::close;
        }
        if (!s->empty()) {
          const Next next = co_await read_rest_of_head(server, stream, node, *s);
          if (next == Next::close) co_return BurstEnd::close;
          continue;
        }
        // Between requests: take what the socket has without waiting; nothing means idle.
        s->begin = s->end = 0;
        IoResult<std::size_t> n = stream.try_read(s->space());
        if (!n) co_return n.error() == std::errc::resource_unavailable_try_again ? BurstEnd::idle : BurstEnd::close;
        if (*n == 0) co_return BurstEnd::close;
        node.enter(Phase::head);
        s->end += *n;
        s->grow_if_filled();
        continue;
      }
      // A complete request. Answering is written here rather than in a coroutine of its own, which would
      // be one more frame; the rare paths (refusals, large and streamed bodies, the last write before
      // closing) are coroutines of their own, to keep their locals out of this frame.
      if (const RequestHead& head = s->parser.head();
          head.framing == BodyFraming::content_length && head.content_length > server.config.max_body) {
        co_await refuse_too_large(*s, stream, server.config.max_body);
        co_return BurstEnd::close;
      }
      exchange = begin_exchange(*s, stream.native_handle());
      node.enter(Phase::handler);
      const Handler* handler = nullptr;
      try {
        handler = &server.router.route(s->request, s->params);
        if (!handler->may_suspend) response = std::move(std::get<0>(handler->call(s->request)));
      } catch (...) {
        response = handler_failed(s->unread(), describe_exception(std::current_exception()));
      }
      if (handler != nullptr && handler->may_suspend) {  // null: routing itself threw
        // The handler may wait: what is corked goes out first, so earlier answers are not held back.
        if (!s->out.empty()) {
          const bool flushed = co_await s->flush(Phase::handler);
          if (!flushed) co_return BurstEnd::close;
        }
        std::exception_ptr error;
        if (s->body_done() && s->begin + exchange.head_size == s->end) {
          DetachedHandler waiting{{}, {}, exchange};
          waiting.head.take(s->request, s->unread().substr(0, exchange.head_size), s->parser.head().fields, s->params);
          s->finish_request();
          finished = true;
          waiting.task = start_handler(*handler, s->request, error);
          if (waiting.task.valid()) {
            lease.reset();
            answering = answer_detached(server, stream, node, lease, takeover, answering, std::move(waiting));
            co_return BurstEnd::handler_waiting;
          }
          response = handler_failed(waiting.head.text(), describe_exception(error));
        } else {
          Task<Response> started = start_handler(*handler, s->request, error);
          if (started.valid()) co_await HandlerOutcome{started, response, error};
          if (error) response = handler_failed(s->unread(), describe_exception(error));
        }
      }
    }

    bool keep_alive =
        exchange.keep_alive_asked && !server.draining.load(std::memory_order_relaxed) && !wants_close(response);
    if (!finished && !s->body_done()) {
      const bool discarded = co_await s->discard_body();
      if (!discarded) keep_alive = false;
    }
    if (s->must_close) keep_alive = false;
    if (response.upgrade != nullptr) {
      const bool upgraded = co_await switch_protocols(server, *s, response, exchange, finished, takeover);
      if (upgraded) co_return BurstEnd::close;
    }
    const Rest rest = queue_response(*s, response, exchange, keep_alive);
    if (!finished) s->finish_request();
    bool stays_open = true;
    if (rest != Rest::none || !keep_alive) {
      stays_open = co_await finish_answer(server, *s, stream, response, rest, exchange.version_minor, keep_alive);
    }
    if (!stays_open) co_return BurstEnd::close;
    if (s->out.size() >= kCorkLimit) {
      const bool flushed = co_await s->flush(Phase::head);
      if (!flushed) co_return BurstEnd::close;
    }
    if (!s->empty()) node.enter(Phase::head);
  }
}

Task<void> run_connection(std::shared_ptr<ServerState> server, TcpStream stream) {
  ConnectionNode node{stream.native_handle()};
  node.task = spindle::detail::current_task();
  // Before the Detach below, so destroyed after it: the socket an upgrade took stays open (anchored
  // here) until the node has left the registry.
  std::unique_ptr<Takeover> takeover;
  if (!server->attach(node)) co_return;
  struct Detach {
    ServerState& server;
    ConnectionNode& node;
    bool done = false;
    void now() {
      if (!std::exchange(done, true)) server.detach(node);
    }
    ~Detach() { now(); }
  } detach{*server, node};

  SessionLease lease;
  Task<BurstEnd> answering;  // the rest of a burst whose handler waits detached (serve_burst hands it over)
  Phase waiting = Phase::fresh;
  for (;;) {
    // No buffer while waiting: this is the state 10,000 idle keep-alive connections are in.
    const IoResult<void> readable = co_await stream.readable();
    if (!readable) co_return;
    if (!node.activate(waiting)) co_return;  // the sweeper closed it (timeout or shutdown)
    BurstEnd end = BurstEnd::close;
    do {
      Task<BurstEnd> step =
          answering.valid() ? std::move(answering) : serve_burst(*server, stream, node, lease, takeover, answering);
      end = co_await step;
    } while (end == BurstEnd::handler_waiting);
    lease.reset();
    if (takeover != nullptr) {
      // The connection is the new protocol's. The socket must stay open while the node is registered
      // (the sweeper shuts sockets by descriptor): the upgrade anchors what holds it in `takeover`.
      Task<void> protocol = takeover->upgrade->run(
          UpgradedConnection{std::move(stream), std::move(takeover->leftover), &server->draining, &takeover->anchor});
      co_await protocol;
      detach.now();
      co_return;
    }
    if (end != BurstEnd::idle || server->draining.load(std::memory_order_acquire)) co_return;
    waiting = Phase::idle;
    node.enter(Phase::idle);
  }
}

Task<void> sweep_forever(std::shared_ptr<ServerState> server) {
  for (;;) {
    co_await sleep(server->sweep_period());
    server->sweep();
  }
}

Task<void> accept_until_stopped(std::shared_ptr<ServerState> server, TcpListener& listener) {
  for (;;) {
    // Named operands, not temporaries inside the co_await expression (GCC 12: docs/architecture.md).
    Task<IoResult<TcpListener::Accepted>> accepting = listener.accept();
    Task<void> stopping = until_cancelled(server->stop);
    auto next = co_await select(std::move(accepting), std::move(stopping));
    if (next.index() == 1) co_return;
    auto& accepted = std::get<0>(next);
    if (!accepted) {
      spindle::detail::log_warning("http: accept failed: %s", accepted.error().message().c_str());
      co_return;
    }
    spawn(run_connection(server, std::move(accepted->stream))).detach();
  }
}

}  // namespace
}  // namespace detail

Server::Server(Router<> router, ServerConfig config)
    : state_(std::make_shared<detail::ServerState>(router.core(), config)) {}
Server::Server(Server&&) noexcept = default;
Server& Server::operator=(Server&&) noexcept = default;
Server::~Server() = default;

Task<void> Server::serve(TcpListener listener) {
  std::shared_ptr<detail::ServerState> state = state_;
  JoinHandle<void> sweeper = spawn(detail::sweep_forever(state));
  struct StopSweeper {
    JoinHandle<void>& handle;
    ~StopSweeper() { handle.abort(); }
  } stop_sweeper{sweeper};
  co_await detail::accept_until_stopped(state, listener);
  state->begin_shutdown(state->config.shutdown_grace);  // stopped, or the listener failed
  // Draining: idle connections are closed already; the others finish or are cut at the deadline.
  while (state->open_connections() > 0) {
    state->sweep();
    co_await sleep(std::chrono::milliseconds(10));
  }
}

Task<void> Server::serve(TcpListener listener, CancellationToken stop) {
  JoinHandle<void> watcher =
      spawn([](CancellationToken token, std::shared_ptr<detail::ServerState> state) -> Task<void> {
        co_await token.cancelled();
        state->begin_shutdown(state->config.shutdown_grace);
      }(std::move(stop), state_));
  co_await serve(std::move(listener));
  watcher.abort();
}

void Server::shutdown(Duration grace) { state_->begin_shutdown(grace); }
void Server::shutdown() { state_->begin_shutdown(state_->config.shutdown_grace); }

ServerStats Server::stats() const noexcept { return ServerStats{state_->open_connections()}; }
const ServerConfig& Server::config() const noexcept { return state_->config; }

Task<void> serve(TcpListener listener, Router<> router) {
  Server server{std::move(router)};
  co_await server.serve(std::move(listener));
}

}  // namespace spindle::http
