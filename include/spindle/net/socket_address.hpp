#pragma once
// SocketAddr: an IPv4 or IPv6 address with a port, as the kernel takes it.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "spindle/result.hpp"

namespace spindle {

/// An IP socket address.
///
///   auto addr = SocketAddr::parse("127.0.0.1:8080");   // also "[::1]:0", "localhost:80", "0.0.0.0:0"
///   if (!addr) die(addr.error());
class SocketAddr {
 public:
  SocketAddr() noexcept;

  /// Parses "HOST:PORT" where HOST is an IPv4 literal, a bracketed IPv6 literal, or "localhost"
  /// (127.0.0.1); names are not resolved here because resolving blocks. The error says what is wrong.
  static Result<SocketAddr, std::string> parse(std::string_view host_port);
  /// From what accept() or getsockname() filled in.
  static SocketAddr from_native(const sockaddr* address, socklen_t length) noexcept;
  static SocketAddr loopback_v4(std::uint16_t port) noexcept;

  int family() const noexcept { return storage_.ss_family; }
  std::uint16_t port() const noexcept;
  void set_port(std::uint16_t port) noexcept;
  /// "127.0.0.1:8080" or "[::1]:8080".
  std::string to_string() const;

  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t native_size() const noexcept { return length_; }

  friend bool operator==(const SocketAddr& a, const SocketAddr& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t length_;
};

}  // namespace spindle
