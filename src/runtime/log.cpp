#include "spindle/runtime/detail/log.hpp"

#include <cstdarg>
#include <cstdio>

namespace spindle::detail {

void log_warning(const char* format, ...) noexcept {
  char line[512];
  va_list args;
  va_start(args, format);
  const int length = std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  if (length < 0) return;
  std::fprintf(stderr, "spindle: %s\n", line);
}

}  // namespace spindle::detail
