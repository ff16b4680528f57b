#pragma once
// Name resolution. getaddrinfo blocks (DNS, /etc/hosts, NSS modules), so it runs on the blocking pool.

#include <cstdint>
#include <string>
#include <system_error>
#include <vector>

#include "spindle/net/socket_address.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle {

/// The category of getaddrinfo's errors (EAI_*); message() is gai_strerror's.
const std::error_category& resolve_category() noexcept;

/// The addresses of `host` (a name or a literal) for TCP on `port`, in getaddrinfo's order.
///
///   auto addresses = co_await resolve("localhost", 5432);
///   if (!addresses) log(addresses.error().message());   // "Name or service not known"
Task<IoResult<std::vector<SocketAddr>>> resolve(std::string host, std::uint16_t port);

}  // namespace spindle
