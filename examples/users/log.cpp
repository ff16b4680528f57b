#include "log.hpp"

#include <unistd.h>

#include <string>

namespace users {
namespace {
std::atomic<LogLevel> threshold{LogLevel::info};
constexpr std::string_view kNames[] = {"error", "warn", "info", "debug"};
}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) noexcept {
  for (std::size_t i = 0; i < std::size(kNames); ++i)
    if (kNames[i] == name) return static_cast<LogLevel>(i);
  return std::nullopt;
}

void set_log_level(LogLevel level) noexcept { threshold.store(level, std::memory_order_relaxed); }

bool log_enabled(LogLevel level) noexcept { return level <= threshold.load(std::memory_order_relaxed); }

void log(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  std::string line = "users-server: ";
  line += kNames[static_cast<std::size_t>(level)];
  line += ": ";
  line += message;
  line += '\n';
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace users
