#pragma once
// The HTTP/1.1 client: plain http:// URLs, a keep-alive pool per "host:port", pipelining.
//
// The design, and why:
// - A response owns its connection until its body has been read to the end, because the next response on
//   that connection cannot be found before this one's body has been framed away. Reading to the end (the
//   empty piece from next(), or text()) puts the connection back into the pool; a response dropped before
//   that closes it rather than read a body nobody wants (it could be gigabytes).
// - Bodies are framed by the strict ResponseParser (Content-Length, chunked with ChunkedDecoder, or until
//   the server closes) so that client and server never disagree on where a message ends.
// - A keep-alive connection the server closed while it sat in the pool is found two ways: a peek at the
//   socket when it leaves the pool (the usual case: the server's idle timeout sent a FIN long ago), and,
//   for the close that races the request, one retry on a fresh connection when a reused one fails before
//   any byte of the response arrived (only for an idempotent method, which the server may safely see
//   twice, and a body that can be sent again, i.e. not a stream).
// - Memory is bounded: the head is limited by ParserLimits, text() by max_collect, and a connection holds
//   one read buffer; a request body is written from where it is (writev of head and body), never copied.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/http/body.hpp"
#include "spindle/http/header_map.hpp"
#include "spindle/http/parser.hpp"
#include "spindle/http/status.hpp"
#include "spindle/net/socket_address.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::http {

/// Limits and timeouts of a Client.
///
///   ClientConfig config;
///   config.request_timeout = std::chrono::seconds(5);
///   Client client{config};
struct ClientConfig {
  Duration connect_timeout = std::chrono::seconds(10);  ///< name resolution and TCP connect
  std::optional<SocketAddr> local_address;              ///< connect from this address (port 0: any)
  /// From the start of the request until the response head has arrived (writing the request included).
  /// Reading the body has no deadline of its own: wrap next() or text() in spindle::timeout if needed.
  Duration request_timeout = std::chrono::seconds(30);
  std::size_t max_idle_per_host = 32;          ///< idle keep-alive connections kept per "host:port"
  ParserLimits limits;                         ///< status line and header block of a response
  std::size_t max_collect = 64 * 1024 * 1024;  ///< text() and pipeline() refuse larger bodies (too_large)
};

/// Why a request failed.
///
///   auto response = co_await client.get(url);
///   if (!response && response.error().kind == ClientError::Kind::timeout) retry_later();
struct ClientError {
  enum class Kind {
    invalid_url,      ///< not an http:// URL this client can use
    invalid_request,  ///< a method, target or header field that cannot be sent
    resolve,          ///< the host name did not resolve
    connect,          ///< no connection (refused, unreachable)
    timeout,          ///< connect_timeout or request_timeout passed
    io,               ///< the connection failed or closed too early
    protocol,         ///< the server's answer is not valid HTTP/1.1 (what a proxy would call a 502)
    too_large,        ///< a response head over the limits, or a body over max_collect
    not_upgraded,     ///< Client::upgrade: the server answered with another status than 101 (`status`)
  };
  ClientError() = default;
  ClientError(Kind error_kind, std::string text, std::optional<Status> answered = std::nullopt)
      : kind(error_kind), message(std::move(text)), status(answered) {}

  Kind kind = Kind::io;
  std::string message;
  std::optional<Status> status;  ///< for not_upgraded: what the server answered instead
};

/// A request to send. The target is set from the URL by Client::send; Host, Content-Length and
/// Transfer-Encoding are the client's to write (a Host given here is kept).
///
///   ClientRequest request{Method::put, "/", {}, Body{R"({"name":"x"})"}};
///   request.headers.set("content-type", "application/json");
///   auto response = co_await client.send("http://127.0.0.1:8080/users/7", std::move(request));
struct ClientRequest {
  Method method = Method::get;
  std::string target = "/";
  HeaderMap headers;
  Body body;                ///< bytes are sent with Content-Length, a stream (Body::channel) chunked
  std::string method_name;  ///< the method's name when `method` is Method::other ("PROPFIND")
};

/// A response read whole, as pipeline() returns them.
struct CollectedResponse {
  Status status = Status::ok;
  int version_minor = 1;
  HeaderMap headers;
  std::string body;
};

/// A connection another protocol takes over, as Client::upgrade returns it after 101 Switching Protocols.
struct UpgradedStream {
  HeaderMap headers;  ///< the 101 response's fields (Upgrade, Sec-WebSocket-Accept, ...)
  TcpStream stream;
  std::string leftover;  ///< bytes of the new protocol that arrived with the 101 head, already read
};

namespace detail {
struct ClientState;
struct ClientConnection;
struct ClientAccess;
}  // namespace detail

/// A response whose body is still on the connection. Move-only; read the body with next() (streaming)
/// or text() (whole). Reading it to the end returns the connection to the client's pool; destroying the
/// response earlier closes the connection.
///
///   auto response = co_await client.get("http://127.0.0.1:8080/export");
///   if (!response) co_return;
///   for (;;) {
///     auto piece = co_await response->next();     // a view, valid until the next call
///     if (!piece || piece->empty()) break;          // an error, or the end of the body
///     consume(*piece);
///   }
class ClientResponse {
 public:
  ClientResponse(ClientResponse&& other) noexcept;
  ClientResponse& operator=(ClientResponse&& other) noexcept;
  ClientResponse(const ClientResponse&) = delete;
  ClientResponse& operator=(const ClientResponse&) = delete;
  ~ClientResponse();

  Status status() const noexcept { return status_; }
  int version_minor() const noexcept { return version_minor_; }
  const HeaderMap& headers() const noexcept { return headers_; }
  /// The first header field named `name` (case-insensitive).
  std::optional<std::string_view> header(std::string_view name) const noexcept { return headers_.get(name); }
  /// Content-Length when the response declared one.
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }

  /// The next piece of the body: a view valid until the next call (or the response's destruction);
  /// empty once the body has ended. After an error, every call returns that error.
  Task<Result<std::string_view, ClientError>> next();
  /// The rest of the body, whole; too_large beyond the client's max_collect (the connection then closes).
  Task<Result<std::string, ClientError>> text();

 private:
  friend struct detail::ClientAccess;
  ClientResponse() noexcept;
  /// The body has ended: the connection goes back to the pool if it can carry another request.
  void finish() noexcept;
  void fail(ClientError error) noexcept;

  std::shared_ptr<detail::ClientState> client_;
  std::unique_ptr<detail::ClientConnection> connection_;  // null once the body has ended or failed
  Status status_ = Status::ok;
  int version_minor_ = 1;
  HeaderMap headers_;
  std::optional<std::uint64_t> content_length_;
  std::optional<ClientError> error_;
  bool close_after_ = false;  // the request asked for Connection: close
};

/// An HTTP/1.1 client with a pool of keep-alive connections per "host:port". Thread-safe and cheap to
/// copy (copies share the pool), so one Client can serve every task of a multi-threaded runtime. A
/// pooled connection is only reused on the runtime that opened it (a socket belongs to one runtime).
///
/// URLs are "http://HOST[:PORT][/PATH][?QUERY]" with HOST an IPv4 literal, a bracketed IPv6 literal, or a
/// name (resolved with spindle::resolve); https is not supported. The URL and other views are read before
/// the call returns, so temporaries are fine.
///
///   Client client;
///   auto response = co_await client.get("http://127.0.0.1:8080/users/7");
///   if (!response) co_return log(response.error().message);
///   auto body = co_await response->text();      // the connection goes back to the pool
///
///   // Under GCC 12, bind a call that builds a std::string argument to a local before awaiting it.
///   auto posting = client.post("http://127.0.0.1:8080/users", R"({"name":"x"})", "application/json");
///   auto created = co_await std::move(posting);
class Client {
 public:
  explicit Client(ClientConfig config = {});

  /// Sends `request` to `url` (its path and query replace request.target) and returns once the response
  /// head has arrived.
  Task<Result<ClientResponse, ClientError>> send(std::string_view url, ClientRequest request) const;
  Task<Result<ClientResponse, ClientError>> get(std::string_view url) const;
  /// POST with a byte body and its Content-Type.
  Task<Result<ClientResponse, ClientError>> post(std::string_view url, std::string body,
                                                 std::string_view content_type) const;
  /// Pipelining: writes every request in one write on one connection, then reads the responses in order,
  /// bodies whole (each up to max_collect). `url_base` gives the host ("http://127.0.0.1:8080", a path
  /// in it prefixes every target); each request's `target` is its path and query. Streamed bodies are
  /// refused. request_timeout covers the whole exchange. Nothing is read until everything is written, so
  /// a batch meant for it is small (requests and answers within the sockets' buffers, some 100 KiB).
  ///
  ///   std::vector<ClientRequest> batch(16);
  ///   for (int i = 0; i < 16; ++i) batch[i].target = "/items/" + std::to_string(i);
  ///   auto responses = co_await client.pipeline("http://127.0.0.1:8080", std::move(batch));
  Task<Result<std::vector<CollectedResponse>, ClientError>> pipeline(std::string_view url_base,
                                                                     std::vector<ClientRequest> requests) const;

  /// Sends `request` on a new connection (never a pooled one) and hands the connection over once the
  /// server answers 101 Switching Protocols; the request must ask for the upgrade itself (Connection:
  /// upgrade, Upgrade: ...). Any other final status is Kind::not_upgraded with that status. connect_timeout
  /// and request_timeout apply as for send(). spindle::ws::connect is built on it.
  ///
  ///   ClientRequest request;
  ///   request.headers.set("connection", "upgrade");
  ///   request.headers.set("upgrade", "my-protocol");
  ///   auto upgraded = co_await client.upgrade("http://127.0.0.1:8080/tunnel", std::move(request));
  ///   if (upgraded) co_await upgraded->stream.write_all("hello");
  Task<Result<UpgradedStream, ClientError>> upgrade(std::string_view url, ClientRequest request) const;

  /// Idle connections in the pool, every host together.
  std::size_t idle_connections() const;
  const ClientConfig& config() const noexcept;

 private:
  std::shared_ptr<detail::ClientState> state_;
};

}  // namespace spindle::http
