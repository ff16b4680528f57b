#pragma once
// The HTTP/1.1 server: one task per connection, keep-alive, pipelining with corked writes, limits,
// timeouts and graceful shutdown. docs/architecture.md ("The HTTP server") explains the memory design:
// an idle connection holds no buffer, only its small coroutine frame.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "spindle/http/parser.hpp"
#include "spindle/http/router.hpp"
#include "spindle/net/tcp_listener.hpp"
#include "spindle/runtime/task.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/cancellation_token.hpp"

namespace spindle::http {

/// Limits and timeouts. Exceeding a limit gets its status (414, 431, 413) with a JSON body saying which,
/// then the connection closes; a timeout during a request gets 408, an idle connection is just closed.
struct ServerConfig {
  ParserLimits limits;                                 ///< request line 8 KiB, header block 16 KiB, 100 fields
  std::size_t max_body = 2 * 1024 * 1024;              ///< 413 beyond, at once when Content-Length says so
  Duration header_timeout = std::chrono::seconds(30);  ///< from a request's first byte to its empty line
  Duration idle_timeout = std::chrono::seconds(60);    ///< a keep-alive connection between requests
  Duration body_timeout = std::chrono::seconds(30);    ///< without progress while reading a body
  Duration write_timeout = std::chrono::seconds(30);   ///< without progress while the client does not read
  Duration shutdown_grace = std::chrono::seconds(10);  ///< in-flight requests get this long to finish
};

/// Counters of a running server.
struct ServerStats {
  std::size_t open_connections = 0;
};

namespace detail {
struct ServerState;
}

/// An HTTP server for one router; serve() it on one listener, or on several (one per runtime in the
/// per-core layout): they share the connection registry, the timeouts and the shutdown.
///
///   Server server = Server::builder().max_body(1 << 20).header_timeout(10s).build(std::move(router));
///   spawn([](Server& s) -> Task<void> { co_await ctrl_c(); s.shutdown(); }(server)).detach();
///   co_await server.serve(std::move(listener));   // returns once the shutdown is complete
class Server {
 public:
  class Builder;
  static Builder builder();

  explicit Server(Router<> router, ServerConfig config = {});
  Server(Server&&) noexcept;
  Server& operator=(Server&&) noexcept;
  ~Server();

  /// Accepts and serves connections until shutdown() has finished (returns then), or until cancelled.
  Task<void> serve(TcpListener listener);
  /// serve(), starting the graceful shutdown when `stop` is cancelled.
  Task<void> serve(TcpListener listener, CancellationToken stop);
  /// Graceful shutdown, from any thread: stop accepting, close idle connections, let requests in flight
  /// finish (their responses say Connection: close) for up to `grace`, then close whatever is left.
  void shutdown(Duration grace);
  void shutdown();  ///< with the configured shutdown_grace
  ServerStats stats() const noexcept;
  const ServerConfig& config() const noexcept;

 private:
  std::shared_ptr<detail::ServerState> state_;
};

/// Server's builder: every setting has the default of ServerConfig.
class Server::Builder {
 public:
  Builder& max_request_line(std::size_t bytes) {
    config_.limits.max_request_line = bytes;
    return *this;
  }
  Builder& max_header_bytes(std::size_t bytes) {
    config_.limits.max_header_bytes = bytes;
    return *this;
  }
  Builder& max_header_fields(std::size_t count) {
    config_.limits.max_fields = count;
    return *this;
  }
  Builder& max_body(std::size_t bytes) {
    config_.max_body = bytes;
    return *this;
  }
  Builder& header_timeout(Duration d) {
    config_.header_timeout = d;
    return *this;
  }
  Builder& idle_timeout(Duration d) {
    config_.idle_timeout = d;
    return *this;
  }
  Builder& body_timeout(Duration d) {
    config_.body_timeout = d;
    return *this;
  }
  Builder& write_timeout(Duration d) {
    config_.write_timeout = d;
    return *this;
  }
  Builder& shutdown_grace(Duration d) {
    config_.shutdown_grace = d;
    return *this;
  }
  Server build(Router<> router) const { return Server{std::move(router), config_}; }

 private:
  ServerConfig config_;
};

inline Server::Builder Server::builder() { return Builder{}; }

/// Serves `router` on `listener` with the default configuration until cancelled.
///
///   co_await serve(*TcpListener::bind(*SocketAddr::parse("127.0.0.1:8080")), std::move(router));
Task<void> serve(TcpListener listener, Router<> router);

}  // namespace spindle::http
