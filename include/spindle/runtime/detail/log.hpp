#pragma once
// Spindle's own diagnostics (a detached task's exception, accept backing off): one line to stderr.
// Deliberately tiny: applications bring their own logging; the runtime only reports what nobody else can.

namespace spindle::detail {

/// printf-style; never throws, never allocates.
void log_warning(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace spindle::detail
