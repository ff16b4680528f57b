#pragma once
// The service's log: one line per message on standard error, below a level set at start.

#include <atomic>
#include <optional>
#include <string_view>

namespace users {

enum class LogLevel { error, warn, info, debug };

/// "error", "warn", "info" or "debug".
std::optional<LogLevel> parse_log_level(std::string_view name) noexcept;
void set_log_level(LogLevel level) noexcept;
bool log_enabled(LogLevel level) noexcept;
/// "users-server: warn: <message>", written at once (lines of several threads do not interleave).
void log(LogLevel level, std::string_view message);

}  // namespace users
