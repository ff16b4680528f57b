#include "spindle/net/resolve.hpp"

#include <netdb.h>

#include "spindle/runtime/blocking.hpp"

namespace spindle {
namespace {

class ResolveCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "resolve"; }
  std::string message(int code) const override { return ::gai_strerror(code); }
};

}  // namespace

const std::error_category& resolve_category() noexcept {
  static const ResolveCategory category;
  return category;
}

Task<IoResult<std::vector<SocketAddr>>> resolve(std::string host, std::uint16_t port) {
  // Bound to a local, not awaited as a temporary: GCC 12 destroys a lambda with a std::string capture
  // twice when it is created inside a co_await expression (docs/architecture.md, "GCC 12").
  auto lookup = spawn_blocking([host = std::move(host), port]() -> IoResult<std::vector<SocketAddr>> {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int code = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); code != 0) {
      if (code == EAI_SYSTEM) return last_os_error();
      return Err{std::error_code(code, resolve_category())};
    }
    std::vector<SocketAddr> addresses;
    for (const addrinfo* entry = found; entry != nullptr; entry = entry->ai_next)
      addresses.push_back(SocketAddr::from_native(entry->ai_addr, entry->ai_addrlen));
    ::freeaddrinfo(found);
    return addresses;
  });
  co_return co_await std::move(lookup);
}

}  // namespace spindle
