// A WebSocket connection: receiving (frames into messages, control frames answered, errors closed with
// their code), sending (written at once when the socket has room, else a bounded queue flushed by a
// short-lived task), the close handshake and keep-alive. The header explains the memory design.

#include "spindle/ws/websocket.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/detail/spin_lock.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/sync/detail/waiter_list.hpp"
#include "spindle/text/utf8.hpp"
#include "spindle/ws/broadcast.hpp"

namespace spindle::ws {
namespace detail {
namespace {

// A read takes up to this much from the socket, into a buffer of the thread's: a socket waiting for a
// message owns none.
constexpr std::size_t kReadChunk = 64 * 1024;
// Control frames (Pong, Close) go past the send queue's limit by at most this much: a peer that floods
// Pings without reading gets no more Pongs, not unbounded memory.
constexpr std::size_t kControlAllowance = 4 * 1024;

char* thread_read_buffer() {
  thread_local std::unique_ptr<char[]> buffer;
  if (buffer == nullptr) buffer.reset(new char[kReadChunk]);
  return buffer.get();
}

std::uint32_t random_mask() {
  std::uint32_t mask;
  fill_random(std::as_writable_bytes(std::span{&mask, 1}));
  return mask;
}

/// The reason of a Close frame: at most 123 bytes, cut at a character boundary.
std::string_view close_reason(std::string_view reason) {
  if (reason.size() <= 123) return reason;
  std::size_t end = 123;
  while (end > 0 && (static_cast<unsigned char>(reason[end]) & 0xC0) == 0x80) --end;
  return reason.substr(0, end);
}

Error closed_error(std::uint16_t code, std::string reason = {}) {
  return Error{Error::Kind::closed, code, std::move(reason)};
}

}  // namespace

/// A frame on its way to the socket: its header and payload, or (a PreparedMessage) shared bytes.
struct OutFrame {
  std::unique_ptr<OutFrame> next;
  std::shared_ptr<const std::string> shared;  // a prepared frame, header included
  std::string payload;
  std::size_t written = 0;  // bytes of the whole frame already sent
  char header[kMaxFrameHeader];
  std::uint8_t header_size = 0;
  bool control = false;

  std::size_t size() const noexcept { return shared != nullptr ? shared->size() : header_size + payload.size(); }
  /// The unsent rest as iovecs; how many.
  int rest(iovec* parts) const noexcept {
    int count = 0;
    if (shared != nullptr) {
      parts[count++] = {const_cast<char*>(shared->data()) + written, shared->size() - written};
      return count;
    }
    if (written < header_size) parts[count++] = {const_cast<char*>(header) + written, header_size - written};
    const std::size_t payload_done = written > header_size ? written - header_size : 0;
    if (payload_done < payload.size())
      parts[count++] = {const_cast<char*>(payload.data()) + payload_done, payload.size() - payload_done};
    return count;
  }
};

/// Builds the frame for a message: the Close payload, compression, the client's mask.
OutFrame make_frame(Opcode opcode, std::string payload, bool rsv1, Role role) {
  OutFrame frame;
  const bool masked = role == Role::client;
  const std::uint32_t mask = masked ? random_mask() : 0;
  if (masked) apply_mask(payload, mask, 0);
  frame.header_size =
      static_cast<std::uint8_t>(encode_frame_header(frame.header, opcode, true, rsv1, payload.size(), masked, mask));
  frame.payload = std::move(payload);
  frame.control = is_control(opcode);
  return frame;
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) return {};
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload += close_reason(reason);
  return payload;
}

}  // namespace detail

// --- PreparedMessage

namespace {
/// A whole unmasked frame in one string: what every server socket can write as it is.
std::shared_ptr<const std::string> whole_frame(MessageKind kind, bool rsv1, std::string_view payload) {
  auto frame = std::make_shared<std::string>(detail::kMaxFrameHeader + payload.size(), '\0');
  const std::size_t header = detail::encode_frame_header(
      frame->data(), kind == MessageKind::text ? Opcode::text : Opcode::binary, true, rsv1, payload.size(), false, 0);
  std::memcpy(frame->data() + header, payload.data(), payload.size());
  frame->resize(header + payload.size());
  return frame;
}
}  // namespace

struct PreparedMessage::State {
  MessageKind kind;
  std::shared_ptr<const std::string> plain;  // the unmasked frame: header, then the message
  std::size_t header_size;
  std::mutex mutex;
  std::array<std::shared_ptr<const std::string>, 16> deflated;  // by window bits, made on first use

  std::string_view data() const noexcept { return std::string_view{*plain}.substr(header_size); }

  /// The compressed frame for sockets whose server side compresses each message afresh.
  std::shared_ptr<const std::string> deflated_frame(const DeflateConfig& config, int window_bits) {
    std::lock_guard lock(mutex);
    auto& slot = deflated[static_cast<std::size_t>(window_bits)];
    if (slot == nullptr) {
      detail::MessageDeflater deflater{window_bits, true, config.level, config.mem_level};
      std::string payload;
      deflater.deflate(data(), payload);
      slot = whole_frame(kind, true, payload);
    }
    return slot;
  }
};

PreparedMessage::PreparedMessage(Message message) : state_(std::make_shared<State>()) {
  if (!message.is_text() && !message.is_binary())
    throw std::invalid_argument("ws::PreparedMessage: only a text or binary message can be prepared");
  state_->kind = message.kind();
  state_->plain = whole_frame(message.kind(), false, message.data());
  state_->header_size = state_->plain->size() - message.data().size();
}

MessageKind PreparedMessage::kind() const noexcept { return state_->kind; }
std::string_view PreparedMessage::data() const noexcept { return state_->data(); }

namespace detail {

enum class CloseMode : std::uint8_t { send_only, handshake, handler_end };

/// The room a socket joined (WebSocket::join).
struct Joined {
  broadcast::Receiver<PreparedMessage> messages;
  Lagging lagging;
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(TcpStream stream, std::string leftover, std::shared_ptr<const Handshake> handshake)
      : stream_(std::move(stream)), handshake_(std::move(handshake)), pending_(std::move(leftover)) {
    const Config& config = *handshake_->config;
    const std::optional<DeflateParams>& deflate = handshake_->deflate;
    decoder_.set_rules(DecoderRules{is_server(), deflate.has_value(), config.max_frame_size});
    if (deflate) {
      // What the peer compresses with decides how we inflate, and the other way round.
      inflater_ = std::make_unique<MessageInflater>(
          is_server() ? deflate->client_max_window_bits : deflate->server_max_window_bits,
          is_server() ? deflate->client_no_context_takeover : deflate->server_no_context_takeover);
      own_window_bits_ = is_server() ? deflate->server_max_window_bits : deflate->client_max_window_bits;
      own_context_takeover_ =
          !(is_server() ? deflate->server_no_context_takeover : deflate->client_no_context_takeover);
      if (own_context_takeover_)
        deflater_ = std::make_unique<MessageDeflater>(own_window_bits_, false, config.compression->level,
                                                      config.compression->mem_level);
    }
    if (keep_alive()) last_seen_ = now();
  }
  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;
  ~Core() {
    // Frames still queued die with the socket (the flusher, holding a reference, is gone too).
    while (head_ != nullptr) head_ = std::move(head_->next);
  }

  std::string_view protocol() const noexcept { return handshake_->protocol; }
  bool compressed() const noexcept { return handshake_->deflate.has_value(); }
  std::size_t queued_bytes() noexcept {
    std::lock_guard lock(out_lock_);
    return queued_;
  }
  /// split() handed the receiving to a Receiver; its destruction hands it back.
  void set_receiver_elsewhere(bool elsewhere) noexcept {
    receiver_elsewhere_.store(elsewhere, std::memory_order_release);
  }
  void join(const Broadcast& room, Lagging lagging) {
    joined_ = std::make_unique<Joined>(Joined{room.subscribe(), lagging});
  }

  // --- receiving -------------------------------------------------------------------------------
  //
  // The frame of a recv() waiting for bytes is most of what an idle socket costs, so it holds little:
  // the parsing happens in poll(), a plain function, and only the wait is a suspension.

  Task<Result<Message, Error>> recv() {
    reading_.store(true, std::memory_order_release);
    struct Reading {
      std::atomic<bool>& flag;
      ~Reading() { flag.store(false, std::memory_order_release); }
    } reading{reading_};
    std::optional<Result<Message, Error>> done = poll();
    while (!done) {
      if (keep_alive()) {
        Task<void> waiting = wait_with_keep_alive();
        co_await std::move(waiting);
      } else {
        InputOrRoom input{*this};
        co_await input;
      }
      done = poll();
    }
    co_return std::move(*done);
  }

  // --- sending ---------------------------------------------------------------------------------

  /// Not coroutines: the frame is made (and compressed) now, so that only the wait for room, when
  /// there is a wait, is a coroutine of its own.
  Task<Result<void, Error>> send(Message message) {
    if (message.is_close()) return settled(submit_close(message.code(), message.data()));
    if ((message.is_ping() || message.is_pong()) && message.data().size() > 125)
      throw std::invalid_argument("ws: a Ping or Pong payload is at most 125 bytes");
    const Opcode opcode = message.is_text()     ? Opcode::text
                          : message.is_binary() ? Opcode::binary
                          : message.is_ping()   ? Opcode::ping
                                                : Opcode::pong;
    std::string payload = std::move(message).take();
    const Config& config = *handshake_->config;
    const bool compress = compressed() && !is_control(opcode) && payload.size() >= config.compression->min_size;
    if (compress && own_context_takeover_) {
      OutFrame frame;
      frame.payload = std::move(payload);  // compressed under the lock, in wire order (submit)
      return deliver(std::move(frame), opcode);
    }
    if (compress) {
      // Each message compressed afresh: no order to keep, so outside the lock, with a pooled stream.
      MessageDeflater deflater{own_window_bits_, true, config.compression->level, config.compression->mem_level};
      std::string compressed;
      deflater.deflate(payload, compressed);
      return deliver(make_frame(opcode, std::move(compressed), true, handshake_->role), std::nullopt);
    }
    return deliver(make_frame(opcode, std::move(payload), false, handshake_->role), std::nullopt);
  }

  Task<Result<void, Error>> send(PreparedMessage message) {
    if (!can_share(message)) return send(copy_of(message));
    OutFrame frame;
    frame.shared = shared_frame(message);
    return deliver(std::move(frame), std::nullopt);
  }

  /// Sends our Close (once); the error when nothing more can be sent.
  Result<void, Error> submit_close(std::uint16_t code, std::string_view reason) {
    if (code != close_code::no_status && !is_sendable_close_code(code))
      throw std::invalid_argument("ws: close code " + std::to_string(code) + " cannot be sent");
    OutFrame frame = make_frame(Opcode::close, close_payload(code, reason), false, handshake_->role);
    if (submit(frame, std::nullopt) == Submitted::refused) return Err{refusal()};
    return {};
  }

  // --- closing ---------------------------------------------------------------------------------

  /// Closing from our side: Sender::close only sends our Close; WebSocket::close and the end of a server
  /// socket's handler also wait for the peer's answer (unless another task receives), let the send queue
  /// drain, and shut the connection down.
  Task<Result<void, Error>> close(std::uint16_t code, std::string reason, CloseMode mode) {
    if (mode == CloseMode::send_only) co_return submit_close(code, reason);
    // A split Receiver held by another task, or a recv() running: that task receives, not this one, and
    // the receiving state is its to touch.
    const bool reader_elsewhere =
        reading_.load(std::memory_order_acquire) || receiver_elsewhere_.load(std::memory_order_acquire);
    const bool receiving_over = !reader_elsewhere && terminal_ != nullptr;
    Result<void, Error> sent = Result<void, Error>{};
    if (mode != CloseMode::handler_end || !receiving_over) sent = submit_close(code, reason);
    const Duration limit = handshake_->config->close_timeout;
    if (!reader_elsewhere && terminal_ == nullptr && sent) {
      // Wait for the peer's Close, dropping what still comes.
      auto answer = timeout(limit, drain_until_closed());
      const Result<void, TimedOut> answered = co_await answer;
      (void)answered;
    }
    auto flushing = timeout(limit, wait_flushed());
    const Result<void, TimedOut> flushed = co_await flushing;
    (void)flushed;
    // The server closes the TCP connection first (RFC 6455 7.1.1); a client whose Close was answered may
    // too, rather than wait for the server's FIN.
    (void)stream_.shutdown(Shutdown::both);
    if (mode == CloseMode::handshake && !sent) co_return Err{sent.error()};
    co_return Result<void, Error>{};
  }

 private:
  enum class Submitted : std::uint8_t {
    accepted,  // written, or queued
    dropped,   // a control frame beyond the queue's allowance: not sent (RFC 6455 5.5.3 allows it for a Pong)
    full,      // the queue has no room for it
    refused,   // nothing can be sent any more (a Close went out, or the socket failed)
  };

  bool is_server() const noexcept { return handshake_->role == Role::server; }
  bool keep_alive() const noexcept { return handshake_->config->ping_interval.count() > 0; }

  // --- sending internals -----------------------------------------------------------------------

  static Task<Result<void, Error>> settled(Result<void, Error> result) { co_return result; }

  /// Submits the frame, waiting for room in the send queue while it is full (SlowConsumer::wait).
  Task<Result<void, Error>> deliver(OutFrame frame, std::optional<Opcode> compress_as) {
    for (;;) {
      const Submitted submitted = submit(frame, compress_as);
      if (submitted == Submitted::accepted || submitted == Submitted::dropped) co_return Result<void, Error>{};
      if (submitted == Submitted::refused) co_return Err{refusal()};
      if (handshake_->config->slow_consumer == SlowConsumer::close) co_return Err{overflow()};
      SpaceAwaiter space{*this, frame.size()};
      co_await space;
    }
  }

  /// Whether a PreparedMessage's shared frame fits this socket: a client masks every frame with its own
  /// key, and a compressor with context takeover is this socket's alone.
  bool can_share(const PreparedMessage& message) const noexcept {
    const bool compress = compressed() && message.data().size() >= handshake_->config->compression->min_size;
    return is_server() && !(compress && own_context_takeover_);
  }
  static Message copy_of(const PreparedMessage& message) {
    return message.kind() == MessageKind::text ? Message::text(std::string{message.data()})
                                               : Message::binary(std::string{message.data()});
  }
  std::shared_ptr<const std::string> shared_frame(const PreparedMessage& message) const {
    const bool compress = compressed() && message.data().size() >= handshake_->config->compression->min_size;
    if (!compress) return message.state()->plain;
    return message.state()->deflated_frame(*handshake_->config->compression, own_window_bits_);
  }

  /// A waiter for room in the send queue (`need` bytes), or with need == SIZE_MAX for an empty queue.
  class SpaceAwaiter {
   public:
    SpaceAwaiter(Core& core, std::size_t need) noexcept : core_(core), need_(need) {}
    SpaceAwaiter(const SpaceAwaiter&) = delete;
    SpaceAwaiter& operator=(const SpaceAwaiter&) = delete;
    ~SpaceAwaiter() {
      std::lock_guard lock(core_.out_lock_);
      core_.space_waiters_.remove(waiter_);
    }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      waiter_.waker = spindle::detail::make_waker(h);
      std::lock_guard lock(core_.out_lock_);
      if (core_.has_room_locked(need_)) return false;
      core_.space_waiters_.push_back(waiter_);
      return true;
    }
    void await_resume() const noexcept {}

   private:
    Core& core_;
    std::size_t need_;
    spindle::detail::SyncWaiter waiter_;
  };

  /// need == SIZE_MAX: whether the queue is empty and no write is in progress.
  bool has_room_locked(std::size_t need) const noexcept {
    if (!writer_active_) return true;
    if (need == SIZE_MAX) return false;
    return send_error_ != nullptr || close_sent_ || queued_ + need <= handshake_->config->max_send_queue;
  }
  void wake_waiters_locked() noexcept {
    while (auto* waiter = space_waiters_.pop_front()) waiter->waker.wake();
  }

  /// Why submit() refused a frame.
  Error refusal() {
    std::lock_guard lock(out_lock_);
    if (send_error_ != nullptr) return *send_error_;
    return closed_error(close_code::normal, "a Close frame was sent already");
  }

  /// Hands a frame to the socket: written now if the socket has room and nothing is queued, else queued.
  /// `compress_as`: the frame's payload still has to be compressed (context takeover), in wire order.
  Submitted submit(OutFrame& frame, std::optional<Opcode> compress_as) {
    std::unique_lock lock(out_lock_);
    if (send_error_ != nullptr || close_sent_) return Submitted::refused;
    const bool is_close = frame.control && (static_cast<std::uint8_t>(frame.header[0]) & 0x0F) ==
                                               static_cast<std::uint8_t>(Opcode::close);
    if (writer_active_) {
      const std::size_t limit = handshake_->config->max_send_queue + (frame.control ? kControlAllowance : 0);
      if (!is_close && queued_ + frame.size() > limit) {
        if (frame.control) return Submitted::dropped;
        return Submitted::full;
      }
    }
    if (compress_as) {
      std::string compressed;
      deflater_->deflate(frame.payload, compressed);
      frame = make_frame(*compress_as, std::move(compressed), true, handshake_->role);
    }
    if (is_close) close_sent_ = true;
    if (writer_active_) {
      queued_ += frame.size();
      push_back(std::make_unique<OutFrame>(std::move(frame)));
      return Submitted::accepted;
    }
    writer_active_ = true;
    lock.unlock();

    const std::optional<Error> failed = write_now(frame);
    lock.lock();
    if (failed) {
      fail_sending_locked(*failed);
      lock.unlock();
      (void)stream_.shutdown(Shutdown::both);
      return Submitted::refused;
    }
    if (frame.written < frame.size()) {
      queued_ += frame.size();
      push_front(std::make_unique<OutFrame>(std::move(frame)));
    } else if (head_ == nullptr) {
      writer_active_ = false;
      wake_waiters_locked();
      return Submitted::accepted;
    }
    lock.unlock();
    spawn(flush_queue(shared_from_this())).detach();
    return Submitted::accepted;
  }

  /// As much of the frame as the socket takes now, without waiting.
  std::optional<Error> write_now(OutFrame& frame) {
    while (frame.written < frame.size()) {
      iovec parts[2];
      msghdr message{};
      message.msg_iov = parts;
      message.msg_iovlen = static_cast<std::size_t>(frame.rest(parts));
      ssize_t n;
      do n = ::sendmsg(stream_.native_handle(), &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
        return Error{Error::Kind::io, close_code::abnormal, std::string{"writing failed: "} + std::strerror(errno)};
      }
      frame.written += static_cast<std::size_t>(n);
    }
    return std::nullopt;
  }

  static Task<void> flush_queue(std::shared_ptr<Core> self) { co_await self->flush(); }

  /// Writes the queue until it is empty; the one writer while it runs.
  Task<void> flush() {
    for (;;) {
      OutFrame* frame;
      {
        std::lock_guard lock(out_lock_);
        frame = head_.get();
        if (frame == nullptr) {
          writer_active_ = false;
          wake_waiters_locked();
          co_return;
        }
      }
      while (frame->written < frame->size()) {
        iovec parts[2];
        const int count = frame->rest(parts);
        auto writing = timeout(handshake_->config->write_timeout,
                               stream_.writev(std::span{parts, static_cast<std::size_t>(count)}));
        Result<IoResult<std::size_t>, TimedOut> wrote = co_await writing;
        std::optional<Error> failed;
        if (!wrote)
          failed =
              Error{Error::Kind::timeout, close_code::internal_error, "a write made no progress for write_timeout"};
        else if (!*wrote)
          failed = Error{Error::Kind::io, close_code::abnormal, "writing failed: " + wrote->error().message()};
        if (failed) {
          {
            std::lock_guard lock(out_lock_);
            fail_sending_locked(*failed);
          }
          (void)stream_.shutdown(Shutdown::both);  // the receiving task wakes up and fails too
          co_return;
        }
        frame->written += **wrote;
      }
      std::unique_ptr<OutFrame> done;
      {
        std::lock_guard lock(out_lock_);
        queued_ -= frame->size();
        done = std::move(head_);
        head_ = std::move(done->next);
        if (head_ == nullptr) tail_ = nullptr;
        wake_waiters_locked();
      }
    }
  }

  void push_back(std::unique_ptr<OutFrame> frame) noexcept {
    OutFrame* raw = frame.get();
    if (tail_ == nullptr)
      head_ = std::move(frame);
    else
      tail_->next = std::move(frame);
    tail_ = raw;
  }
  void push_front(std::unique_ptr<OutFrame> frame) noexcept {
    frame->next = std::move(head_);
    if (frame->next == nullptr) tail_ = frame.get();
    head_ = std::move(frame);
  }

  /// The writer (the caller) failed: nothing more goes out.
  void fail_sending_locked(Error error) {
    if (send_error_ == nullptr) send_error_ = std::make_unique<Error>(std::move(error));
    while (head_ != nullptr) head_ = std::move(head_->next);
    tail_ = nullptr;
    queued_ = 0;
    writer_active_ = false;
    wake_waiters_locked();
  }

  /// SlowConsumer::close: the frames not yet begun are dropped, a Close 1008 goes after the one being
  /// written, and nothing more is accepted.
  Error overflow() {
    Error error{Error::Kind::too_slow, close_code::policy_violation, "the send queue is full"};
    std::unique_lock lock(out_lock_);
    if (send_error_ != nullptr) return *send_error_;
    if (head_ != nullptr) {
      // Keep the head: the flusher may be in the middle of writing it.
      std::unique_ptr<OutFrame> rest = std::move(head_->next);
      while (rest != nullptr) rest = std::move(rest->next);
      tail_ = head_.get();
      queued_ = head_->size();
    }
    const bool close_already = close_sent_;
    close_sent_ = true;
    send_error_ = std::make_unique<Error>(error);
    if (!close_already) {
      OutFrame close = make_frame(Opcode::close, close_payload(error.code, error.reason), false, handshake_->role);
      queued_ += close.size();
      push_back(std::make_unique<OutFrame>(std::move(close)));
    }
    wake_waiters_locked();
    if (!writer_active_ && head_ != nullptr) {
      // Nothing is being written (a room's lag, not a full queue): the Close needs a writer.
      writer_active_ = true;
      lock.unlock();
      spawn(flush_queue(shared_from_this())).detach();
    }
    return error;
  }

  /// Until the queue is empty and nothing is being written (the flusher wakes waiters after each frame).
  Task<void> wait_flushed() {
    for (;;) {
      {
        std::lock_guard lock(out_lock_);
        if (!writer_active_) co_return;
      }
      SpaceAwaiter idle{*this, SIZE_MAX};
      co_await idle;
    }
  }

  /// Reads until the peer's Close arrives (or the connection ends), dropping data messages.
  Task<void> drain_until_closed() {
    for (;;) {
      Task<Result<Message, Error>> receiving = recv();
      Result<Message, Error> message = co_await std::move(receiving);
      if (!message) co_return;
    }
  }

  // --- receiving internals ---------------------------------------------------------------------

  /// Waits until the socket is readable or, for a socket that joined a room, the room has a message.
  class InputOrRoom {
   public:
    explicit InputOrRoom(Core& core) noexcept
        : readable_(core.stream_.readable()),
          room_(core.joined_ != nullptr ? std::optional<RoomWatch>{std::in_place, core.joined_->messages}
                                        : std::nullopt) {}
    InputOrRoom(InputOrRoom&&) noexcept = default;  // until awaited (timeout() moves it into a task)
    bool await_ready() { return !room_ && readable_.await_ready(); }
    bool await_suspend(std::coroutine_handle<> h) {
      // The socket first: when it is ready now, nothing has been armed that could wake the task later.
      if (!readable_.await_suspend(h)) return false;
      if (room_ && !room_->arm(h)) room_->wake();  // a message is there: resume as soon as possible
      return true;
    }
    void await_resume() {
      if (readable_.completed()) (void)readable_.await_resume();  // an error shows in the read that follows
    }

   private:
    using RoomWatch = broadcast::Receiver<PreparedMessage>::Watch;
    spindle::detail::ReadableAwaiter readable_;
    std::optional<RoomWatch> room_;
  };

  /// The wait with keep-alive: a Ping after ping_interval of silence, failure after ping_timeout more.
  Task<void> wait_with_keep_alive() {
    const Config& config = *handshake_->config;
    for (;;) {
      const Instant deadline = ping_outstanding_ ? ping_sent_ + config.ping_timeout : last_seen_ + config.ping_interval;
      const Duration left = deadline - now();
      if (left.count() > 0) {
        auto input = timeout(left, InputOrRoom{*this});
        const Result<void, TimedOut> ready = co_await input;
        if (ready) co_return;
      }
      if (ping_outstanding_) {
        (void)submit_close(close_code::internal_error, "keep-alive timeout");
        terminate(Error{Error::Kind::timeout, close_code::internal_error, "no answer to a keep-alive Ping"});
        co_return;
      }
      // A Ping the queue had no room for never reaches the peer: no answer to wait for (a peer that reads
      // nothing fails by write_timeout instead).
      if (submit_control(Opcode::ping, "keep-alive") == Submitted::accepted) {
        ping_outstanding_ = true;
        ping_sent_ = now();
      } else {
        last_seen_ = now();
      }
    }
  }

  /// What recv() returns now, if it can return without waiting: the room's messages sent, the bytes
  /// kept from the last read parsed, then the socket read until it would block.
  std::optional<Result<Message, Error>> poll() {
    if (terminal_ != nullptr) return Err{*terminal_};
    if (joined_ != nullptr) forward_room();
    if (terminal_ != nullptr) return Err{*terminal_};
    if (!pending_.empty()) {
      std::string input = std::move(pending_);
      pending_ = std::string{};
      std::optional<Result<Message, Error>> outcome = consume(std::span{input}, input.size());
      if (outcome) return outcome;
    }
    for (;;) {
      char* buffer = thread_read_buffer();
      IoResult<std::size_t> n = stream_.try_read(std::span{buffer, kReadChunk});
      if (!n) {
        if (n.error() == std::errc::resource_unavailable_try_again) return std::nullopt;
        return Err{terminate(Error{Error::Kind::io, close_code::abnormal, "reading failed: " + n.error().message()})};
      }
      if (*n == 0) return Err{end_of_stream()};
      if (keep_alive()) {
        last_seen_ = now();
        ping_outstanding_ = false;
      }
      std::optional<Result<Message, Error>> outcome = consume(std::span{buffer, *n}, *n);
      if (outcome) return outcome;
    }
  }

  /// Sends what the joined room has for this socket, without waiting.
  void forward_room() {
    for (;;) {
      std::optional<Result<PreparedMessage, broadcast::RecvError>> next = joined_->messages.try_recv();
      if (!next) return;
      bool delivered = false;
      if (*next) {
        if (can_share(**next)) {
          OutFrame frame;
          frame.shared = shared_frame(**next);
          const Submitted submitted = submit(frame, std::nullopt);
          if (submitted == Submitted::refused) return;  // the socket is closing: recv() finds out
          delivered = submitted == Submitted::accepted;
        } else {
          // A client's frames are masked with their own key; a compressor with context takeover is this
          // socket's alone: this socket's own frame, uncompressed (allowed per message).
          Message copy = copy_of(**next);
          OutFrame frame = make_frame(copy.is_text() ? Opcode::text : Opcode::binary, std::move(copy).take(), false,
                                      handshake_->role);
          const Submitted submitted = submit(frame, std::nullopt);
          if (submitted == Submitted::refused) return;  // the socket is closing: recv() finds out
          delivered = submitted == Submitted::accepted;
        }
      } else if (next->error().kind == broadcast::RecvError::Kind::closed) {
        joined_.reset();  // the room is gone; the socket goes on
        return;
      }
      if (!delivered && joined_->lagging == Lagging::close) {
        (void)overflow();
        terminate(Error{Error::Kind::too_slow, close_code::policy_violation, "too slow for the room"});
        return;
      }
    }
  }

  Submitted submit_control(Opcode opcode, std::string payload) {
    OutFrame frame = make_frame(opcode, std::move(payload), false, handshake_->role);
    return submit(frame, std::nullopt);
  }

  Error terminate(Error error) {
    terminal_ = std::make_unique<Error>(error);
    return error;
  }

  /// A protocol error: our Close with its code, and the end of receiving.
  Error fail(std::uint16_t code, std::string_view why) {
    if (terminal_ == nullptr) (void)submit_control(Opcode::close, close_payload(code, why));
    return terminate(Error{Error::Kind::protocol, code, std::string{why}});
  }

  Error end_of_stream() {
    if (handshake_->draining != nullptr && handshake_->draining->load(std::memory_order_acquire)) {
      (void)submit_close(close_code::going_away, "server shutting down");
      return terminate(Error{Error::Kind::going_away, close_code::going_away, "server shutting down"});
    }
    return terminate(Error{Error::Kind::io, close_code::abnormal, "the connection ended without a Close frame"});
  }

  /// Feeds `input` to the decoder until a message is complete or an error happens; bytes left after a
  /// message are kept in pending_ for the next recv().
  std::optional<Result<Message, Error>> consume(std::span<char> input, std::size_t size) {
    std::size_t used = 0;
    std::optional<Result<Message, Error>> outcome;
    while (!outcome) {
      const FrameDecoder::Step step = decoder_.next(input.subspan(used));
      used += step.consumed;
      switch (step.event) {
        case FrameDecoder::Event::need_more:
          return std::nullopt;
        case FrameDecoder::Event::error:
          return Err{fail(step.close_code, decoder_.error())};
        case FrameDecoder::Event::header:
          if (std::optional<Error> refused = on_header()) return Err{std::move(*refused)};
          break;
        case FrameDecoder::Event::payload:
          if (std::optional<Error> refused = on_payload(step.payload)) return Err{std::move(*refused)};
          break;
        case FrameDecoder::Event::frame_end:
          outcome = on_frame_end();
          break;
      }
    }
    if (used < size && outcome->has_value()) pending_.assign(input.data() + used, size - used);
    return outcome;
  }

  std::optional<Error> on_header() {
    const FrameHeader& header = decoder_.header();
    if (is_control(header.opcode)) {
      control_.clear();
      return std::nullopt;
    }
    if (header.opcode == Opcode::continuation) {
      if (!in_message_) return fail(close_code::protocol_error, "continuation frame without a message to continue");
      if (header.rsv1) return fail(close_code::protocol_error, "RSV1 set on a continuation frame");
    } else {
      if (in_message_) return fail(close_code::protocol_error, "new message before the fragmented one ended");
      in_message_ = true;
      message_opcode_ = header.opcode;
      message_compressed_ = header.rsv1;
      utf8_.reset();
      validated_ = 0;
      message_.clear();
    }
    if (!message_compressed_ && header.length > handshake_->config->max_message_size - message_.size())
      return fail(close_code::message_too_big, "message larger than the limit");
    return std::nullopt;
  }

  std::optional<Error> on_payload(std::span<char> piece) {
    if (is_control(decoder_.header().opcode)) {
      control_.append(piece.data(), piece.size());
      return std::nullopt;
    }
    if (message_compressed_) {
      const MessageInflater::Status status = inflater_->inflate(std::string_view{piece.data(), piece.size()}, message_,
                                                                handshake_->config->max_message_size);
      if (std::optional<Error> refused = inflate_status(status)) return refused;
    } else {
      message_.append(piece.data(), piece.size());
    }
    return validate_text();
  }

  std::optional<Error> inflate_status(MessageInflater::Status status) {
    if (status == MessageInflater::Status::too_big)
      return fail(close_code::message_too_big, "message larger than the limit once decompressed");
    if (status == MessageInflater::Status::corrupt) return fail(close_code::invalid_payload, "invalid compressed data");
    return std::nullopt;
  }

  /// Fail-fast UTF-8: the part of a text message received so far must be able to begin valid text.
  std::optional<Error> validate_text() {
    if (message_opcode_ != Opcode::text || validated_ == message_.size()) return std::nullopt;
    const bool valid = utf8_.feed(std::string_view{message_}.substr(validated_));
    validated_ = message_.size();
    if (!valid) return fail(close_code::invalid_payload, "text message is not valid UTF-8");
    return std::nullopt;
  }

  std::optional<Result<Message, Error>> on_frame_end() {
    const FrameHeader& header = decoder_.header();
    if (is_control(header.opcode)) return on_control(header.opcode);
    if (!header.fin) return std::nullopt;
    if (message_compressed_) {
      const MessageInflater::Status status = inflater_->finish(message_, handshake_->config->max_message_size);
      if (std::optional<Error> refused = inflate_status(status)) return Err{std::move(*refused)};
      if (std::optional<Error> refused = validate_text()) return Err{std::move(*refused)};
    }
    if (message_opcode_ == Opcode::text && !utf8_.complete())
      return Err{fail(close_code::invalid_payload, "text message ends in the middle of a character")};
    in_message_ = false;
    std::string data = std::exchange(message_, std::string{});  // the socket keeps no buffer between messages
    return message_opcode_ == Opcode::text ? Message::text(std::move(data)) : Message::binary(std::move(data));
  }

  std::optional<Result<Message, Error>> on_control(Opcode opcode) {
    std::string payload = std::exchange(control_, std::string{});
    if (opcode == Opcode::ping) {
      (void)submit_control(Opcode::pong, payload);
      return Message::ping(std::move(payload));
    }
    if (opcode == Opcode::pong) return Message::pong(std::move(payload));
    // Close
    if (payload.size() == 1) return Err{fail(close_code::protocol_error, "Close frame with a one-byte payload")};
    std::uint16_t code = close_code::no_status;
    std::string reason;
    if (payload.size() >= 2) {
      code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                        static_cast<unsigned char>(payload[1]));
      if (!is_sendable_close_code(code)) return Err{fail(close_code::protocol_error, "invalid close code")};
      reason = payload.substr(2);
      if (!utf8::is_valid(reason)) return Err{fail(close_code::invalid_payload, "Close reason is not valid UTF-8")};
    }
    // Answer with the same code (RFC 6455 5.5.1), unless our Close went out first: submit refuses then.
    (void)submit_control(Opcode::close, close_payload(code, {}));
    terminate(closed_error(code, reason));
    return Message::close(code, std::move(reason));
  }

  // Set once.
  TcpStream stream_;
  const std::shared_ptr<const Handshake> handshake_;
  int own_window_bits_ = 15;
  bool own_context_takeover_ = false;

  // The receiving task's (one at a time).
  std::string pending_;  // bytes read past the last message returned
  std::string message_;  // the message being assembled
  std::string control_;  // the control frame being received
  std::unique_ptr<Error> terminal_;
  std::unique_ptr<MessageInflater> inflater_;
  std::unique_ptr<Joined> joined_;
  FrameDecoder decoder_;
  std::size_t validated_ = 0;  // bytes of message_ the UTF-8 validator has seen
  Instant last_seen_{};
  Instant ping_sent_{};
  utf8::Validator utf8_;
  Opcode message_opcode_ = Opcode::text;
  bool in_message_ = false;
  bool message_compressed_ = false;
  bool ping_outstanding_ = false;
  std::atomic<bool> reading_{false};
  std::atomic<bool> receiver_elsewhere_{false};

  // The sending side, under out_lock_ (held for a few instructions, or while a frame is compressed in
  // wire order with context takeover).
  spindle::detail::SpinLock out_lock_;
  bool writer_active_ = false;
  bool close_sent_ = false;
  std::unique_ptr<OutFrame> head_;
  OutFrame* tail_ = nullptr;
  std::size_t queued_ = 0;
  std::unique_ptr<Error> send_error_;
  spindle::detail::WaiterList space_waiters_;
  std::unique_ptr<MessageDeflater> deflater_;  // with context takeover only
};

std::shared_ptr<Core> core_of(const WebSocket& socket) noexcept { return socket.core_; }

Task<void> finish(std::shared_ptr<Core> core, std::uint16_t code) {
  Task<Result<void, Error>> closing = core->close(code, {}, CloseMode::handler_end);
  const Result<void, Error> closed = co_await std::move(closing);
  (void)closed;
}

}  // namespace detail

// --- the public handles

WebSocket::WebSocket(TcpStream stream, std::string leftover, std::shared_ptr<const detail::Handshake> handshake)
    : core_(std::allocate_shared<detail::Core>(spindle::detail::FrameAllocator<detail::Core>{}, std::move(stream),
                                               std::move(leftover), std::move(handshake))) {}
WebSocket::~WebSocket() = default;

Task<Result<Message, Error>> WebSocket::recv() { return core_->recv(); }
Task<Result<void, Error>> WebSocket::send(Message message) { return core_->send(std::move(message)); }
Task<Result<void, Error>> WebSocket::send(PreparedMessage message) { return core_->send(std::move(message)); }
Task<Result<void, Error>> WebSocket::close(std::uint16_t code, std::string reason) {
  return core_->close(code, std::move(reason), detail::CloseMode::handshake);
}
std::pair<Sender, Receiver> WebSocket::split() && {
  std::shared_ptr<detail::Core> core = std::move(core_);
  core->set_receiver_elsewhere(true);
  return {Sender{core}, Receiver{core}};
}
void WebSocket::join(const Broadcast& room, Lagging lagging) { core_->join(room, lagging); }
std::string_view WebSocket::protocol() const noexcept { return core_->protocol(); }
bool WebSocket::compressed() const noexcept { return core_->compressed(); }
std::size_t WebSocket::queued_bytes() const noexcept { return core_->queued_bytes(); }

Task<Result<void, Error>> Sender::send(Message message) { return core_->send(std::move(message)); }
Task<Result<void, Error>> Sender::send(PreparedMessage message) { return core_->send(std::move(message)); }
Task<Result<void, Error>> Sender::close(std::uint16_t code, std::string reason) {
  return core_->close(code, std::move(reason), detail::CloseMode::send_only);
}
std::size_t Sender::queued_bytes() const noexcept { return core_->queued_bytes(); }

Receiver::~Receiver() {
  if (core_ != nullptr) core_->set_receiver_elsewhere(false);
}
Receiver& Receiver::operator=(Receiver&& other) noexcept {
  if (this != &other) {
    if (core_ != nullptr) core_->set_receiver_elsewhere(false);
    core_ = std::move(other.core_);
  }
  return *this;
}
Task<Result<Message, Error>> Receiver::recv() { return core_->recv(); }
void Receiver::join(const Broadcast& room, Lagging lagging) { core_->join(room, lagging); }

}  // namespace spindle::ws
