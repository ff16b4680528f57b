#include "spindle/net/socket_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace spindle {

SocketAddr::SocketAddr() noexcept : storage_{}, length_(sizeof(sockaddr_in)) { storage_.ss_family = AF_INET; }

SocketAddr SocketAddr::from_native(const sockaddr* address, socklen_t length) noexcept {
  SocketAddr result;
  if (length > sizeof result.storage_) length = sizeof result.storage_;
  std::memcpy(&result.storage_, address, length);
  result.length_ = length;
  return result;
}

SocketAddr SocketAddr::loopback_v4(std::uint16_t port) noexcept {
  SocketAddr result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
  v4->sin_family = AF_INET;
  v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  v4->sin_port = htons(port);
  return result;
}

Result<SocketAddr, std::string> SocketAddr::parse(std::string_view host_port) {
  const std::size_t colon = host_port.rfind(':');
  if (colon == std::string_view::npos) return Err{"expected HOST:PORT, got '" + std::string(host_port) + "'"};
  std::string_view host = host_port.substr(0, colon);
  const std::string_view port_text = host_port.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || error != std::errc{} || end != port_text.data() + port_text.size() || port > 65535)
    return Err{"invalid port '" + std::string(port_text) + "' (expected 0-65535)"};

  SocketAddr result;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    const std::string literal(host.substr(1, host.size() - 2));
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.storage_);
    if (::inet_pton(AF_INET6, literal.c_str(), &v6->sin6_addr) != 1)
      return Err{"invalid IPv6 address '" + literal + "'"};
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    result.length_ = sizeof(sockaddr_in6);
    return result;
  }
  if (host == "localhost") host = "127.0.0.1";
  if (host.empty()) host = "0.0.0.0";
  const std::string literal(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.storage_);
  if (::inet_pton(AF_INET, literal.c_str(), &v4->sin_addr) != 1)
    return Err{"invalid host '" + literal + "' (expected an IPv4 address, [IPv6] or localhost)"};
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<std::uint16_t>(port));
  result.length_ = sizeof(sockaddr_in);
  return result;
}

std::uint16_t SocketAddr::port() const noexcept {
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
}

void SocketAddr::set_port(std::uint16_t port) noexcept {
  if (family() == AF_INET6)
    reinterpret_cast<sockaddr_in6*>(&storage_)->sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in*>(&storage_)->sin_port = htons(port);
}

std::string SocketAddr::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (family() == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, text, sizeof text);
    return "[" + std::string(text) + "]:" + std::to_string(port());
  }
  ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, text, sizeof text);
  return std::string(text) + ":" + std::to_string(port());
}

bool operator==(const SocketAddr& a, const SocketAddr& b) noexcept {
  return a.length_ == b.length_ && a.to_string() == b.to_string();
}

}  // namespace spindle
