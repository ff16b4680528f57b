#pragma once
// Test support for the HTTP layer: a server running on its own multi-threaded runtime in a background
// thread, and a blocking raw client that sends exact bytes and parses what comes back with Spindle's
// response parser. Real sockets on loopback, nothing mocked.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/spindle.hpp"

namespace spindle_test {

/// A Server serving on 127.0.0.1 (a free port) until destroyed; the destructor shuts it down gracefully.
class TestServer {
 public:
  explicit TestServer(spindle::http::Router<> router, spindle::http::ServerConfig config = {}, unsigned workers = 2)
      : server_(std::move(router), config) {
    auto listener = spindle::TcpListener::bind(*spindle::SocketAddr::parse("127.0.0.1:0"));
    if (!listener) throw std::runtime_error("bind: " + listener.error().message());
    port_ = listener->local_addr()->port();
    thread_ = std::thread([this, workers, l = std::move(*listener)]() mutable {
      spindle::Runtime runtime = spindle::Runtime::multi_thread().worker_threads(workers).build();
      runtime.block_on(server_.serve(std::move(l)));
    });
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;
  ~TestServer() { stop(std::chrono::seconds(1)); }

  /// Graceful shutdown; returns once serve() has returned.
  void stop(spindle::Duration grace) {
    if (!thread_.joinable()) return;
    server_.shutdown(grace);
    thread_.join();
  }
  int port() const noexcept { return port_; }
  spindle::http::Server& server() noexcept { return server_; }

 private:
  spindle::http::Server server_;
  int port_ = 0;
  std::thread thread_;
};

/// A parsed response as the raw client saw it.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool chunked = false;

  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [n, v] : headers)
      if (spindle::http::detail::iequals(n, name)) return v;
    return std::nullopt;
  }
};

/// A blocking client connection (5 s receive timeout) that sends raw bytes.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
      throw std::runtime_error("connect failed");
    timeval limit{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }

  void send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("send failed");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  /// Reads one response (skipping a 100 Continue unless `keep_interim`); nullopt if the connection
  /// closed or timed out first.
  std::optional<RawResponse> read_response(bool request_was_head = false, bool keep_interim = false) {
    for (;;) {
      spindle::http::ResponseParser parser;
      for (;;) {
        if (!pending_.empty()) {
          const auto status = parser.parse(pending_, request_was_head);
          if (status == spindle::http::ResponseParser::Status::error) throw std::runtime_error("bad response");
          if (status == spindle::http::ResponseParser::Status::complete) break;
        }
        if (!fill()) return std::nullopt;
      }
      const spindle::http::ResponseHead& head = parser.head();
      RawResponse response;
      response.status = head.status;
      for (const auto& f : head.fields) response.headers.emplace_back(std::string{f.name}, std::string{f.value});
      const auto framing = head.framing;
      const std::uint64_t length = head.content_length;
      pending_.erase(0, parser.head_size());
      if (response.status == 100 && !keep_interim) continue;
      if (framing == spindle::http::BodyFraming::content_length) {
        while (pending_.size() < length)
          if (!fill()) return std::nullopt;
        response.body = pending_.substr(0, length);
        pending_.erase(0, length);
      } else if (framing == spindle::http::BodyFraming::chunked) {
        response.chunked = true;
        spindle::http::ChunkedDecoder decoder;
        for (;;) {
          const auto step = decoder.decode(pending_);
          response.body += step.data;
          pending_.erase(0, step.consumed);
          if (step.status == spindle::http::ChunkedDecoder::Status::done) break;
          if (step.status == spindle::http::ChunkedDecoder::Status::error) throw std::runtime_error("bad chunking");
          if ((pending_.empty() || step.consumed == 0) && !fill()) return std::nullopt;
        }
      } else if (framing == spindle::http::BodyFraming::until_close) {
        while (fill()) {
        }
        response.body = std::exchange(pending_, {});
      }
      return response;
    }
  }

  /// Whether the server closes the connection (reads end-of-stream, within the receive timeout).
  bool closed_by_server() {
    char byte;
    for (;;) {
      const ssize_t n = ::recv(fd_, &byte, 1, 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET;
      pending_.push_back(byte);  // unexpected bytes: keep reading for the end
    }
  }
  /// Bytes received beyond the responses read so far.
  const std::string& pending() const noexcept { return pending_; }
  void set_receive_timeout(std::chrono::milliseconds limit) {
    timeval t{static_cast<time_t>(limit.count() / 1000), static_cast<suseconds_t>(limit.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &t, sizeof t);
  }
  int fd() const noexcept { return fd_; }

 private:
  bool fill() {
    char chunk[16384];
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    pending_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string pending_;
};

/// One request, one response, on a fresh connection.
inline std::optional<RawResponse> exchange(int port, std::string_view request, bool head = false) {
  RawConnection connection(port);
  connection.send(request);
  return connection.read_response(head);
}

}  // namespace spindle_test
