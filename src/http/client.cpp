// The HTTP/1.1 client. include/spindle/http/client.hpp explains the design; this file has the mechanics:
//
// - A connection (ClientConnection) is a socket, one read buffer and the state of the response being
//   read. The head is parsed in place by ResponseParser and copied into the response's HeaderMap (the
//   buffer is reused for the body, so views could not survive); body pieces are views into the buffer,
//   handed out until the next call, so a body of any size streams through one buffer.
// - The pool is a map "host:port" -> idle connections under one mutex, held only to move a pointer in or
//   out: never across an await, and sockets are closed after it is released. Connections are taken most
//   recently used first, so the rarely used ones age out on the server's idle timeout.
// - Timeouts wrap the whole operation in spindle::timeout(): on expiry its coroutines are destroyed and
//   the connection, in an unknown state, is closed.

#include "spindle/http/client.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <span>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/net/resolve.hpp"
#include "spindle/net/socket_address.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/detail/context.hpp"

namespace spindle::http {
namespace detail {
namespace {

using Kind = ClientError::Kind;

// The body is read this much at a time: large enough that a megabyte takes 64 reads, small enough to
// keep per idle connection.
constexpr std::size_t kReadBuffer = 16 * 1024;
// text() reserves the declared Content-Length up to this; a larger body grows as it arrives.
constexpr std::size_t kReserveAtOnce = 8 * 1024 * 1024;
// Linux's UIO_MAXIOV: a writev with more parts fails with EINVAL.
constexpr std::size_t kMaxIovecs = 1024;

ClientError error(Kind kind, std::string message) { return ClientError{kind, std::move(message)}; }

std::string milliseconds(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

/// An http:// URL taken apart.
struct Url {
  std::string host;  // lowercase, without the brackets of an IPv6 literal
  std::uint16_t port = 80;
  std::string key;        // "host:port" ("[::1]:8080"): the pool's key and what error messages name
  std::string authority;  // the Host field: the port only when it is not 80
  std::string target;     // "/path?query"
};

bool is_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

bool is_ipv6_char(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

/// A request target must be sent as it is: a space or a control would end the request line early, and
/// non-ASCII must be percent-encoded (RFC 3986).
bool is_target(std::string_view target) noexcept {
  if (target.empty() || (target.front() != '/' && target != "*")) return false;
  for (unsigned char c : target)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

Result<Url, ClientError> parse_url(std::string_view url) {
  const auto bad = [url](std::string_view why) {
    return Err{error(Kind::invalid_url, std::string{why} + ": \"" + std::string{url} + "\"")};
  };
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("not an absolute http:// URL");
  const std::string_view scheme = url.substr(0, scheme_end);
  if (iequals(scheme, "https")) return bad("https is not supported");
  if (!iequals(scheme, "http")) return bad("only http:// URLs are supported");

  std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) return bad("user information in a URL is not supported");

  Url out;
  std::string_view host;
  std::string_view port_text;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 literal");
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("invalid host");
      port_text = after.substr(1);
    }
    ipv6 = true;
    if (host.empty() || !std::all_of(host.begin(), host.end(), is_ipv6_char)) return bad("invalid IPv6 literal");
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
    if (host.empty()) return bad("no host");
    if (!std::all_of(host.begin(), host.end(), is_host_char)) return bad("invalid host");
  }
  if (!port_text.empty()) {
    unsigned port = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
      return bad("invalid port");
    out.port = static_cast<std::uint16_t>(port);
  }

  out.host.reserve(host.size());
  for (char c : host) out.host.push_back(ascii_lower(c));
  const std::string bracketed = ipv6 ? "[" + out.host + "]" : out.host;
  out.key = bracketed + ":" + std::to_string(out.port);
  out.authority = out.port == 80 ? bracketed : out.key;

  rest = rest.substr(0, rest.find('#'));  // the fragment is the user agent's, never sent
  out.target = rest.empty() || rest.front() == '?' ? "/" + std::string{rest} : std::string{rest};
  if (!is_target(out.target)) return bad("invalid character in the path or query (percent-encode it)");
  return out;
}

std::string_view method_text(const ClientRequest& request) noexcept {
  return request.method == Method::other ? std::string_view{request.method_name} : method_name(request.method);
}

/// Whether a Connection field lists `close`.
bool asks_to_close(const HeaderMap& headers) noexcept {
  for (const auto& field : headers) {
    if (!iequals(field.name, "connection")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      std::string_view option = list.substr(0, comma);
      while (!option.empty() && (option.front() == ' ' || option.front() == '\t')) option.remove_prefix(1);
      while (!option.empty() && (option.back() == ' ' || option.back() == '\t')) option.remove_suffix(1);
      if (iequals(option, "close")) return true;
      if (comma == std::string_view::npos) break;
      list.remove_prefix(comma + 1);
    }
  }
  return false;
}

/// The request line and header fields. The framing fields are the client's: one given by the caller
/// could contradict the body actually sent, which is how requests get smuggled through proxies.
Result<std::string, ClientError> serialize_head(const ClientRequest& request, std::string_view target, const Url& url) {
  const std::string_view method = method_text(request);
  if (!is_token(method)) return Err{error(Kind::invalid_request, "invalid method \"" + std::string{method} + "\"")};
  if (!is_target(target))
    return Err{error(Kind::invalid_request, "invalid request target \"" + std::string{target} + "\"")};
  std::string head;
  head.reserve(64 + target.size() + url.authority.size());
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  if (!request.headers.contains("host")) head.append("Host: ").append(url.authority).append("\r\n");
  for (const auto& field : request.headers) {
    if (iequals(field.name, "content-length") || iequals(field.name, "transfer-encoding")) continue;
    head.append(field.name).append(": ").append(field.value).append("\r\n");
  }
  if (request.body.is_stream()) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (!request.body.is_empty() || request.method == Method::post || request.method == Method::put ||
             request.method == Method::patch) {
    // RFC 9110 8.6: a POST without a body still says so, or the server cannot tell it from a truncation.
    head.append("Content-Length: ").append(std::to_string(request.body.bytes().size())).append("\r\n");
  }
  head += "\r\n";
  return head;
}

/// Writes every part, however many syscalls it takes; advances `parts` as it goes.
Task<IoResult<void>> write_parts(TcpStream& stream, std::span<iovec> parts) {
  std::size_t first = 0;
  for (;;) {
    while (first < parts.size() && parts[first].iov_len == 0) ++first;
    if (first == parts.size()) co_return IoResult<void>{};
    const std::size_t count = std::min(parts.size() - first, kMaxIovecs);
    IoResult<std::size_t> n = co_await stream.writev(parts.subspan(first, count));
    if (!n) co_return Err{n.error()};
    if (*n == 0) co_return Err{std::make_error_code(std::errc::broken_pipe)};
    for (std::size_t written = *n; written > 0;) {
      iovec& part = parts[first];
      const std::size_t taken = std::min(written, part.iov_len);
      part.iov_base = static_cast<char*>(part.iov_base) + taken;
      part.iov_len -= taken;
      written -= taken;
      if (part.iov_len == 0) ++first;
    }
  }
}

iovec part_of(std::string_view bytes) noexcept { return iovec{const_cast<char*>(bytes.data()), bytes.size()}; }

/// Head and body in one writev; a streamed body follows chunk by chunk, each with its framing in one
/// writev.
Task<IoResult<void>> write_request(TcpStream& stream, std::string_view head, Body& body) {
  if (!body.is_stream()) {
    iovec parts[2] = {part_of(head), part_of(body.bytes())};
    co_return co_await write_parts(stream, std::span{parts});
  }
  // The head goes at once, so that the server can route (and maybe refuse) before the first chunk.
  iovec head_part[1] = {part_of(head)};
  IoResult<void> sent = co_await write_parts(stream, std::span{head_part});
  if (!sent) co_return sent;
  for (;;) {
    std::optional<std::string> chunk = co_await body.next_chunk();  // named: docs/architecture.md, GCC 12
    if (!chunk) break;
    if (chunk->empty()) continue;  // an empty chunk would end the body
    char size[24];
    const auto [size_end, ec] = std::to_chars(size, size + sizeof size - 2, chunk->size(), 16);
    char* line_end = size_end;
    *line_end++ = '\r';
    *line_end++ = '\n';
    iovec parts[3] = {iovec{size, static_cast<std::size_t>(line_end - size)}, part_of(*chunk), part_of("\r\n")};
    IoResult<void> chunk_sent = co_await write_parts(stream, std::span{parts});
    if (!chunk_sent) co_return chunk_sent;
  }
  iovec last[1] = {part_of("0\r\n\r\n")};
  co_return co_await write_parts(stream, std::span{last});
}

/// The 1xx-free, parsed head of a response, copied out of the read buffer.
struct Head {
  Status status = Status::ok;
  int version_minor = 1;
  HeaderMap headers;
  std::optional<std::uint64_t> content_length;
};

/// How an exchange failed, and whether it failed before any byte of the response arrived: on a reused
/// connection that is what a keep-alive close racing the request looks like, and the request may be
/// sent again.
struct ExchangeFailure {
  ClientError error;
  bool before_response = false;
};

/// Whether the peer of an idle connection is still there: nothing to read, no end of stream. One
/// syscall, which finds a FIN the server's idle timeout sent while the connection sat in the pool.
bool still_open(int fd) noexcept {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

/// A connection: the socket, its read buffer, and where the current response's body stands.
struct ClientConnection {
  ClientConnection(TcpStream connected, std::string pool_key, spindle::detail::Reactor* owner, ParserLimits limits)
      : stream(std::move(connected)), key(std::move(pool_key)), reactor(owner), limits_(limits), parser_(limits) {}

  /// Reads up to the end of a final (non-1xx) response head; the body is then read with next_piece().
  /// `upgrading`: the request asked for an upgrade, so a 101 is its answer, not an interim response.
  Task<Result<Head, ExchangeFailure>> read_head(bool request_was_head, bool upgrading = false);
  /// The next piece of the body (a view into the buffer, valid until the next call); empty at its end.
  Task<Result<std::string_view, ClientError>> next_piece();

  /// Whether the connection can carry another request: the body is done, both sides keep it alive, and
  /// the server sent nothing more (bytes nobody asked for mean the framing went wrong somewhere).
  bool reusable() const noexcept { return body_done && keep_alive && begin_ == end_; }
  /// After a 101: the bytes read past its head, which belong to the new protocol.
  std::string take_unread() {
    std::string rest{unread()};
    begin_ = end_ = 0;
    return rest;
  }
  /// Ready for the pool: forgets the last exchange and a buffer a large head made grow.
  void make_idle() noexcept {
    reused = true;
    begin_ = end_ = 0;
    parser_.reset();
    if (capacity_ > kReadBuffer) {
      buffer_.reset();
      capacity_ = 0;
    }
  }

  TcpStream stream;
  const std::string key;
  spindle::detail::Reactor* const reactor;  // the runtime the socket belongs to
  bool reused = false;                      // it has carried a request before: it may have gone stale
  bool body_done = true;
  bool keep_alive = false;

 private:
  std::string_view unread() const noexcept { return {buffer_.get() + begin_, end_ - begin_}; }
  void ensure_buffer() {
    if (buffer_ == nullptr) {
      buffer_.reset(new char[kReadBuffer]);  // not make_unique: no need to zero it
      capacity_ = kReadBuffer;
    }
  }
  /// Space after the unread bytes, moving them to the front and growing up to `limit`; false if full.
  bool make_room(std::size_t limit) {
    if (begin_ > 0) {
      std::memmove(buffer_.get(), buffer_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ < capacity_) return true;
    if (capacity_ >= limit) return false;
    const std::size_t bigger = std::min(limit, capacity_ * 2);
    std::unique_ptr<char[]> grown{new char[bigger]};
    std::memcpy(grown.get(), buffer_.get(), end_);
    buffer_ = std::move(grown);
    capacity_ = bigger;
    return true;
  }
  /// Reads into the buffer after the unread bytes, at most `most` bytes.
  Task<Result<std::size_t, ClientError>> fill(std::size_t most, std::string_view what) {
    IoResult<std::size_t> n = co_await stream.read(std::span{buffer_.get() + end_, std::min(most, capacity_ - end_)});
    if (!n) co_return Err{error(Kind::io, what_failed(what, n.error().message()))};
    end_ += *n;
    co_return *n;
  }
  std::string what_failed(std::string_view what, std::string_view why) const {
    return std::string{what} + " from " + key + ": " + std::string{why};
  }

  ParserLimits limits_;
  ResponseParser parser_;
  std::unique_ptr<char[]> buffer_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;  // [begin_, end_) is read and not yet used
  std::size_t end_ = 0;
  BodyFraming framing_ = BodyFraming::none;
  std::uint64_t remaining_ = 0;  // of a Content-Length body
  ChunkedDecoder chunked_;
};

Task<Result<Head, ExchangeFailure>> ClientConnection::read_head(bool request_was_head, bool upgrading) {
  ensure_buffer();
  parser_.reset();
  bool received = begin_ < end_;
  // The parser refuses a head beyond the limits; the buffer need not hold more.
  const std::size_t limit = limits_.max_request_line + limits_.max_header_bytes + 8;
  for (;;) {
    if (begin_ < end_) {
      const ResponseParser::Status parsed = parser_.parse(unread(), request_was_head);
      if (parsed == ResponseParser::Status::error) {
        const ParseError& refused = parser_.error();
        co_return Err{ExchangeFailure{error(refused.over_limit ? Kind::too_large : Kind::protocol,
                                            what_failed("invalid response", refused.reason))}};
      }
      if (parsed == ResponseParser::Status::complete) {
        const ResponseHead& head = parser_.head();
        if (head.status < 200 && !(upgrading && head.status == 101)) {
          // 101 only answers an Upgrade request: the server is confused.
          if (head.status == 101)
            co_return Err{ExchangeFailure{
                error(Kind::protocol,
                      what_failed("invalid response", "101 Switching Protocols without an Upgrade request"))}};
          begin_ += parser_.head_size();  // an interim response (100 Continue, 103 Early Hints): skip it
          parser_.reset();
          continue;
        }
        Head out;
        out.status = static_cast<Status>(head.status);
        out.version_minor = head.version_minor;
        for (const HeaderField& field : head.fields) out.headers.append(field.name, field.value);
        if (head.framing == BodyFraming::content_length) out.content_length = head.content_length;
        framing_ = head.framing;
        remaining_ = head.content_length;
        chunked_ = ChunkedDecoder{};
        keep_alive = head.keep_alive;
        body_done = framing_ == BodyFraming::none || (framing_ == BodyFraming::content_length && remaining_ == 0);
        begin_ += parser_.head_size();
        co_return out;
      }
    }
    if (!make_room(limit))
      co_return Err{
          ExchangeFailure{error(Kind::too_large, what_failed("invalid response", "response head too large"))}};
    Result<std::size_t, ClientError> n = co_await fill(capacity_, "reading the response");
    if (!n) co_return Err{ExchangeFailure{std::move(n).error(), !received}};
    if (*n == 0)
      co_return Err{ExchangeFailure{
          error(Kind::io,
                what_failed("reading the response", received ? "the connection closed in the middle of the head"
                                                             : "the connection closed before the response")),
          !received}};
    received = true;
  }
}

Task<Result<std::string_view, ClientError>> ClientConnection::next_piece() {
  if (body_done) co_return std::string_view{};
  switch (framing_) {
    case BodyFraming::none:
      body_done = true;
      co_return std::string_view{};
    case BodyFraming::content_length: {
      if (begin_ == end_) {
        begin_ = end_ = 0;  // the previous piece's view ends with this call
        Result<std::size_t, ClientError> n =
            co_await fill(static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, capacity_)), "reading the body");
        if (!n) co_return Err{std::move(n).error()};
        if (*n == 0)
          co_return Err{error(
              Kind::io, what_failed("reading the body",
                                    "the connection closed " + std::to_string(remaining_) + " bytes before its end"))};
      }
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, end_ - begin_));
      const std::string_view piece{buffer_.get() + begin_, n};
      begin_ += n;
      remaining_ -= n;
      body_done = remaining_ == 0;
      co_return piece;
    }
    case BodyFraming::chunked:
      for (;;) {
        if (begin_ == end_) {
          begin_ = end_ = 0;
          Result<std::size_t, ClientError> n = co_await fill(capacity_, "reading the body");
          if (!n) co_return Err{std::move(n).error()};
          if (*n == 0)
            co_return Err{
                error(Kind::io, what_failed("reading the body", "the connection closed before the last chunk"))};
        }
        const ChunkedDecoder::Result step = chunked_.decode(unread());
        begin_ += step.consumed;
        if (step.status == ChunkedDecoder::Status::error)
          co_return Err{error(Kind::protocol, what_failed("invalid chunked body", chunked_.error()))};
        if (step.status == ChunkedDecoder::Status::done) {
          body_done = true;
          co_return step.data;
        }
        if (!step.data.empty()) co_return step.data;
        // The decoder takes every byte it is given (its state carries partial lines), so no progress
        // with input left would be a bug; better an error than a loop.
        if (step.consumed == 0)
          co_return Err{error(Kind::protocol, what_failed("invalid chunked body", "no progress"))};
      }
    case BodyFraming::until_close: {
      if (begin_ == end_) {
        begin_ = end_ = 0;
        Result<std::size_t, ClientError> n = co_await fill(capacity_, "reading the body");
        if (!n) co_return Err{std::move(n).error()};
        if (*n == 0) {
          body_done = true;
          keep_alive = false;
          co_return std::string_view{};
        }
      }
      const std::string_view piece = unread();
      begin_ = end_;
      co_return piece;
    }
  }
  co_return std::string_view{};
}

/// What Clients share: the configuration and the pool.
struct ClientState {
  explicit ClientState(ClientConfig settings) : config(std::move(settings)) {}

  /// An idle connection to `key` opened on this runtime whose peer is still there, or null.
  std::unique_ptr<ClientConnection> checkout(const std::string& key) {
    spindle::detail::RuntimeContext* context = spindle::detail::current_context();
    spindle::detail::Reactor* here = context != nullptr ? context->reactor : nullptr;
    for (;;) {
      std::unique_ptr<ClientConnection> found;  // declared first: a stale one is closed after the unlock
      {
        std::lock_guard lock(mutex);
        const auto it = idle.find(key);
        if (it == idle.end()) return nullptr;
        auto& connections = it->second;
        for (std::size_t i = connections.size(); i-- > 0;) {
          if (connections[i]->reactor != here) continue;
          found = std::move(connections[i]);
          connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
          --idle_count;
          break;
        }
        if (connections.empty()) idle.erase(it);
      }
      if (found == nullptr) return nullptr;
      if (still_open(found->stream.native_handle())) return found;
    }
  }

  /// Keeps `connection` for the next request to its host, evicting the oldest beyond the limit.
  void give_back(std::unique_ptr<ClientConnection> connection) noexcept {
    if (config.max_idle_per_host == 0) return;
    connection->make_idle();
    std::unique_ptr<ClientConnection> evicted;  // declared first: closed after the unlock
    try {
      std::lock_guard lock(mutex);
      auto& connections = idle[connection->key];
      connections.push_back(std::move(connection));
      ++idle_count;
      if (connections.size() > config.max_idle_per_host) {
        evicted = std::move(connections.front());
        connections.erase(connections.begin());
        --idle_count;
      }
    } catch (...) {
      // Out of memory: the connection just closes.
    }
  }

  std::size_t idle_connections() const {
    std::lock_guard lock(mutex);
    return idle_count;
  }

  const ClientConfig config;
  mutable std::mutex mutex;
  std::unordered_map<std::string, std::vector<std::unique_ptr<ClientConnection>>> idle;  // guarded by mutex
  std::size_t idle_count = 0;                                                            // guarded by mutex
};

/// Builds ClientResponses (their constructor is private: only a finished head makes one).
struct ClientAccess {
  static ClientResponse make(std::shared_ptr<ClientState> state, std::unique_ptr<ClientConnection> connection,
                             Head head, bool close_after) {
    ClientResponse response;
    response.client_ = std::move(state);
    response.connection_ = std::move(connection);
    response.status_ = head.status;
    response.version_minor_ = head.version_minor;
    response.headers_ = std::move(head.headers);
    response.content_length_ = head.content_length;
    response.close_after_ = close_after;
    if (response.connection_->body_done) response.finish();  // HEAD, 204, 304, Content-Length: 0
    return response;
  }
};

namespace {

template <class T>
Task<Result<T, ClientError>> failed(ClientError reason) {
  co_return Err{std::move(reason)};
}

ClientError timed_out(std::string_view what, const Url& url, Duration limit) {
  return error(Kind::timeout, std::string{what} + " " + url.key + " took longer than " + milliseconds(limit));
}

/// A new connection: the address literal, or the name resolved, each address tried in turn.
Task<Result<std::unique_ptr<ClientConnection>, ClientError>> open_connection(const ClientState& state, const Url& url) {
  std::vector<SocketAddr> addresses;
  // Only literals skip the resolver: SocketAddr::parse would also take "localhost", but /etc/hosts may
  // say ::1 as well as 127.0.0.1, and getaddrinfo's order is the system's to decide.
  const bool literal = url.key.front() == '[' || std::all_of(url.host.begin(), url.host.end(),
                                                             [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (literal) {
    Result<SocketAddr, std::string> address = SocketAddr::parse(url.key);
    if (!address) co_return Err{error(Kind::invalid_url, "invalid address " + url.key + ": " + address.error())};
    addresses.push_back(*address);
  } else {
    std::string host = url.host;
    auto lookup = resolve(std::move(host), url.port);  // a local, not a temporary: see resolve.hpp's GCC note
    IoResult<std::vector<SocketAddr>> found = co_await std::move(lookup);
    if (!found) co_return Err{error(Kind::resolve, "resolving " + url.host + ": " + found.error().message())};
    addresses = std::move(*found);
    if (addresses.empty()) co_return Err{error(Kind::resolve, "resolving " + url.host + ": no addresses")};
  }
  std::error_code last;
  for (const SocketAddr& address : addresses) {
    Task<IoResult<TcpStream>> connecting = state.config.local_address
                                               ? TcpStream::connect(address, *state.config.local_address)
                                               : TcpStream::connect(address);
    IoResult<TcpStream> stream = co_await std::move(connecting);
    if (!stream) {
      last = stream.error();
      continue;
    }
    // A request goes out in one writev, or a pipeline in one: nothing to gain from Nagle, only delay.
    (void)stream->set_nodelay(true);
    spindle::detail::RuntimeContext* context = spindle::detail::current_context();
    co_return std::make_unique<ClientConnection>(std::move(*stream), url.key,
                                                 context != nullptr ? context->reactor : nullptr, state.config.limits);
  }
  co_return Err{error(Kind::connect, "connecting to " + url.key + ": " + last.message())};
}

/// A pooled connection if there is one (and `pooled`), else a new one.
Task<Result<std::unique_ptr<ClientConnection>, ClientError>> acquire(ClientState& state, const Url& url, bool pooled) {
  if (pooled) {
    if (std::unique_ptr<ClientConnection> connection = state.checkout(url.key)) co_return std::move(connection);
  }
  auto connecting = open_connection(state, url);
  Result<Result<std::unique_ptr<ClientConnection>, ClientError>, TimedOut> connected =
      co_await timeout(state.config.connect_timeout, std::move(connecting));
  if (!connected) co_return Err{timed_out("connecting to", url, state.config.connect_timeout)};
  co_return std::move(*connected);
}

Task<Result<Head, ExchangeFailure>> exchange(ClientConnection& connection, std::string_view head, Body& body,
                                             bool request_was_head, bool upgrading = false) {
  IoResult<void> sent = co_await write_request(connection.stream, head, body);
  if (!sent)
    co_return Err{ExchangeFailure{
        error(Kind::io, "sending the request to " + connection.key + ": " + sent.error().message()), true}};
  co_return co_await connection.read_head(request_was_head, upgrading);
}

/// Whether a request may be sent a second time (RFC 9110 9.2.2): the server may have acted on the first
/// copy before the connection failed (RFC 9112 9.3.1).
bool is_idempotent(Method method) noexcept {
  return method == Method::get || method == Method::head || method == Method::put || method == Method::del ||
         method == Method::options || method == Method::trace;
}

/// A connection and what an exchange on it produced.
template <class T>
struct Exchanged {
  std::unique_ptr<ClientConnection> connection;
  T value;
};

/// Runs `exchange_on(connection)` on a pooled connection, within one request_timeout for all attempts. A keep-alive
/// connection the server closed as the request went out fails before any byte of the response: if `replayable`, the
/// exchange runs once more, on a fresh connection.
template <class T, class ExchangeOn>
Task<Result<Exchanged<T>, ClientError>> exchange_with_one_retry(ClientState& state, const Url& url, bool replayable,
                                                                std::string_view waiting_for, ExchangeOn exchange_on) {
  bool pooled = true;
  std::optional<Instant> deadline;  // from the first attempt's connection: connecting has its own timeout
  for (;;) {
    Result<std::unique_ptr<ClientConnection>, ClientError> acquired = co_await acquire(state, url, pooled);
    if (!acquired) co_return Err{std::move(acquired).error()};
    std::unique_ptr<ClientConnection> connection = std::move(*acquired);
    const bool reused = connection->reused;
    if (!deadline) deadline = now() + state.config.request_timeout;
    Task<Result<T, ExchangeFailure>> exchanging = exchange_on(*connection);
    Result<Result<T, ExchangeFailure>, TimedOut> answered = co_await timeout_at(*deadline, std::move(exchanging));
    if (!answered) co_return Err{timed_out(waiting_for, url, state.config.request_timeout)};
    if (!*answered) {
      ExchangeFailure failure = std::move(*answered).error();
      if (reused && failure.before_response && replayable) {
        pooled = false;  // once, on a new connection: a second failure is the server's
        continue;
      }
      co_return Err{std::move(failure.error)};
    }
    co_return Exchanged<T>{std::move(connection), std::move(*answered).value()};
  }
}

Task<Result<ClientResponse, ClientError>> send_request(std::shared_ptr<ClientState> state,
                                                       Result<Url, ClientError> parsed, ClientRequest request) {
  if (!parsed) co_return Err{std::move(parsed).error()};
  const Url& url = *parsed;
  request.target = url.target;
  Result<std::string, ClientError> head = serialize_head(request, request.target, url);
  if (!head) co_return Err{std::move(head).error()};
  // Sent again only if that cannot do harm: an idempotent method, and not a stream, which is consumed as
  // it is sent.
  const bool replayable = is_idempotent(request.method) && !request.body.is_stream();
  const bool close_after = asks_to_close(request.headers);
  const bool request_was_head = request.method == Method::head;
  Task<Result<Exchanged<Head>, ClientError>> exchanging =
      exchange_with_one_retry<Head>(*state, url, replayable, "waiting for the response from",
                                    [&head, &request, request_was_head](ClientConnection& connection) {
                                      return exchange(connection, *head, request.body, request_was_head);
                                    });
  Result<Exchanged<Head>, ClientError> exchanged = co_await std::move(exchanging);
  if (!exchanged) co_return Err{std::move(exchanged).error()};
  co_return ClientAccess::make(std::move(state), std::move(exchanged->connection), std::move(exchanged->value),
                               close_after);
}

Task<Result<UpgradedStream, ClientError>> send_upgrade(std::shared_ptr<ClientState> state,
                                                       Result<Url, ClientError> parsed, ClientRequest request) {
  if (!parsed) co_return Err{std::move(parsed).error()};
  const Url& url = *parsed;
  Result<std::string, ClientError> head = serialize_head(request, url.target, url);
  if (!head) co_return Err{std::move(head).error()};
  // A connection of its own: it leaves the client for good once upgraded.
  Result<std::unique_ptr<ClientConnection>, ClientError> acquired = co_await acquire(*state, url, false);
  if (!acquired) co_return Err{std::move(acquired).error()};
  std::unique_ptr<ClientConnection> connection = std::move(*acquired);
  Task<Result<Head, ExchangeFailure>> exchanging = exchange(*connection, *head, request.body, false, true);
  Result<Result<Head, ExchangeFailure>, TimedOut> answered =
      co_await timeout(state->config.request_timeout, std::move(exchanging));
  if (!answered) co_return Err{timed_out("waiting for the response from", url, state->config.request_timeout)};
  if (!*answered) co_return Err{std::move(*answered).error().error};
  Head& answer = **answered;
  if (answer.status != Status::switching_protocols) {
    const std::string status = std::to_string(code(answer.status)) + " " + std::string{reason_phrase(answer.status)};
    co_return Err{ClientError{Kind::not_upgraded,
                              url.key + " answered " + status + " instead of 101 Switching Protocols", answer.status}};
  }
  std::string leftover = connection->take_unread();
  co_return UpgradedStream{std::move(answer.headers), std::move(connection->stream), std::move(leftover)};
}

Task<Result<std::vector<CollectedResponse>, ExchangeFailure>> exchange_pipelined(
    ClientConnection& connection, const std::vector<std::string>& heads, const std::vector<ClientRequest>& requests,
    std::size_t max_collect) {
  std::vector<iovec> parts;
  parts.reserve(heads.size() * 2);
  for (std::size_t i = 0; i < heads.size(); ++i) {
    parts.push_back(part_of(heads[i]));
    if (!requests[i].body.bytes().empty()) parts.push_back(part_of(requests[i].body.bytes()));
  }
  IoResult<void> sent = co_await write_parts(connection.stream, std::span{parts});
  if (!sent)
    co_return Err{ExchangeFailure{
        error(Kind::io, "sending the requests to " + connection.key + ": " + sent.error().message()), true}};

  std::vector<CollectedResponse> responses;
  responses.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Result<Head, ExchangeFailure> head = co_await connection.read_head(requests[i].method == Method::head);
    if (!head) {
      ExchangeFailure failure = std::move(head).error();
      failure.before_response = failure.before_response && i == 0;
      co_return Err{std::move(failure)};
    }
    if (head->content_length && *head->content_length > max_collect)
      co_return Err{ExchangeFailure{
          error(Kind::too_large, "response body larger than " + std::to_string(max_collect) + " bytes")}};
    CollectedResponse response{head->status, head->version_minor, std::move(head->headers), {}};
    for (;;) {
      Result<std::string_view, ClientError> piece = co_await connection.next_piece();
      if (!piece) co_return Err{ExchangeFailure{std::move(piece).error()}};
      if (piece->empty()) break;
      if (piece->size() > max_collect - response.body.size())
        co_return Err{ExchangeFailure{
            error(Kind::too_large, "response body larger than " + std::to_string(max_collect) + " bytes")}};
      response.body.append(*piece);
    }
    responses.push_back(std::move(response));
    if (!connection.keep_alive && i + 1 < requests.size())
      co_return Err{
          ExchangeFailure{error(Kind::io, "the server closed the connection after " + std::to_string(i + 1) + " of " +
                                              std::to_string(requests.size()) + " pipelined responses")}};
  }
  co_return responses;
}

Task<Result<std::vector<CollectedResponse>, ClientError>> send_pipelined(std::shared_ptr<ClientState> state,
                                                                         Result<Url, ClientError> parsed,
                                                                         std::vector<ClientRequest> requests) {
  if (!parsed) co_return Err{std::move(parsed).error()};
  const Url& url = *parsed;
  if (requests.empty()) co_return std::vector<CollectedResponse>{};
  if (url.target.find('?') != std::string::npos)
    co_return Err{error(Kind::invalid_url, "a pipeline's base URL has no query: " + url.key + url.target)};
  std::string_view prefix = url.target;  // "/api/" in "http://host/api/": each target goes below it
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  std::vector<std::string> heads;
  heads.reserve(requests.size());
  bool close_after = false;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const ClientRequest& request = requests[i];
    if (request.body.is_stream())
      co_return Err{
          error(Kind::invalid_request, "pipeline() cannot send a streamed body (request " + std::to_string(i) + ")")};
    close_after = asks_to_close(request.headers);
    if (close_after && i + 1 < requests.size())
      co_return Err{error(Kind::invalid_request, "Connection: close before the last pipelined request")};
    const std::string_view path = request.target.empty() ? std::string_view{"/"} : std::string_view{request.target};
    if (path.front() != '/')
      co_return Err{error(Kind::invalid_request, "a pipelined request's target starts with '/': " + request.target)};
    Result<std::string, ClientError> head = serialize_head(request, std::string{prefix} + std::string{path}, url);
    if (!head) co_return Err{std::move(head).error()};
    heads.push_back(std::move(*head));
  }
  // The whole batch is sent again only if every request in it may be.
  const bool replayable = std::all_of(requests.begin(), requests.end(),
                                      [](const ClientRequest& request) { return is_idempotent(request.method); });
  const std::size_t max_collect = state->config.max_collect;
  Task<Result<Exchanged<std::vector<CollectedResponse>>, ClientError>> exchanging =
      exchange_with_one_retry<std::vector<CollectedResponse>>(
          *state, url, replayable, "waiting for the responses from",
          [&heads, &requests, max_collect](ClientConnection& connection) {
            return exchange_pipelined(connection, heads, requests, max_collect);
          });
  Result<Exchanged<std::vector<CollectedResponse>>, ClientError> exchanged = co_await std::move(exchanging);
  if (!exchanged) co_return Err{std::move(exchanged).error()};
  if (exchanged->connection->reusable() && !close_after) state->give_back(std::move(exchanged->connection));
  co_return std::move(exchanged->value);
}

}  // namespace
}  // namespace detail

ClientResponse::ClientResponse() noexcept = default;

ClientResponse::ClientResponse(ClientResponse&& other) noexcept = default;

ClientResponse& ClientResponse::operator=(ClientResponse&& other) noexcept {
  if (this != &other) {
    if (connection_ != nullptr && connection_->body_done) finish();
    client_ = std::move(other.client_);
    connection_ = std::move(other.connection_);
    status_ = other.status_;
    version_minor_ = other.version_minor_;
    headers_ = std::move(other.headers_);
    content_length_ = other.content_length_;
    error_ = std::move(other.error_);
    close_after_ = other.close_after_;
  }
  return *this;
}

ClientResponse::~ClientResponse() {
  // The last piece was handed out but the empty one not yet asked for: the body is read all the same.
  if (connection_ != nullptr && connection_->body_done) finish();
}

void ClientResponse::finish() noexcept {
  std::unique_ptr<detail::ClientConnection> connection = std::move(connection_);
  if (connection != nullptr && connection->reusable() && !close_after_ && client_ != nullptr)
    client_->give_back(std::move(connection));
}

void ClientResponse::fail(ClientError reason) noexcept {
  connection_.reset();  // mid-body: the connection's framing is lost
  error_ = std::move(reason);
}

Task<Result<std::string_view, ClientError>> ClientResponse::next() {
  if (error_) co_return Err{*error_};
  if (connection_ == nullptr) co_return std::string_view{};
  if (connection_->body_done) {
    // The previous call handed out the last piece, and its view ends now: the connection can go.
    finish();
    co_return std::string_view{};
  }
  Result<std::string_view, ClientError> piece = co_await connection_->next_piece();
  if (!piece) {
    fail(piece.error());
    co_return Err{*error_};
  }
  if (piece->empty()) finish();
  co_return piece;
}

Task<Result<std::string, ClientError>> ClientResponse::text() {
  const std::size_t limit = client_ != nullptr ? client_->config.max_collect : SIZE_MAX;
  const auto too_large = [limit] {
    return ClientError{ClientError::Kind::too_large, "response body larger than " + std::to_string(limit) + " bytes"};
  };
  if (error_) co_return Err{*error_};
  std::string body;
  if (connection_ != nullptr && content_length_) {
    // Refused before reading a byte, and otherwise read into one allocation of the right size.
    if (*content_length_ > limit) {
      fail(too_large());
      co_return Err{*error_};
    }
    // Capped: a head alone must not make us allocate max_collect.
    body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*content_length_, detail::kReserveAtOnce)));
  }
  for (;;) {
    Result<std::string_view, ClientError> piece = co_await next();
    if (!piece) co_return Err{std::move(piece).error()};
    if (piece->empty()) co_return std::move(body);
    if (piece->size() > limit - body.size()) {
      fail(too_large());
      co_return Err{*error_};
    }
    body.append(*piece);
  }
}

Client::Client(ClientConfig config) : state_(std::make_shared<detail::ClientState>(std::move(config))) {}

Task<Result<ClientResponse, ClientError>> Client::send(std::string_view url, ClientRequest request) const {
  // Not a coroutine: the URL is parsed now, so the caller's string need not outlive the call.
  return detail::send_request(state_, detail::parse_url(url), std::move(request));
}

Task<Result<ClientResponse, ClientError>> Client::get(std::string_view url) const { return send(url, ClientRequest{}); }

Task<Result<ClientResponse, ClientError>> Client::post(std::string_view url, std::string body,
                                                       std::string_view content_type) const {
  ClientRequest request;
  request.method = Method::post;
  request.body = Body{std::move(body)};
  if (!content_type.empty()) {
    try {
      request.headers.set("content-type", content_type);
    } catch (const std::invalid_argument& e) {
      return detail::failed<ClientResponse>(ClientError{ClientError::Kind::invalid_request, e.what()});
    }
  }
  return send(url, std::move(request));
}

Task<Result<std::vector<CollectedResponse>, ClientError>> Client::pipeline(std::string_view url_base,
                                                                           std::vector<ClientRequest> requests) const {
  return detail::send_pipelined(state_, detail::parse_url(url_base), std::move(requests));
}

Task<Result<UpgradedStream, ClientError>> Client::upgrade(std::string_view url, ClientRequest request) const {
  return detail::send_upgrade(state_, detail::parse_url(url), std::move(request));
}

std::size_t Client::idle_connections() const { return state_->idle_connections(); }

const ClientConfig& Client::config() const noexcept { return state_->config; }

}  // namespace spindle::http
