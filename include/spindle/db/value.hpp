#pragma once
// The C++ types a query parameter or a result column may have, beyond the obvious ones (bool, integers,
// floating point, std::string, std::string_view for parameters, std::optional<T> for NULL, described
// enums as their names). Shared by spindle::pg and spindle::sqlite.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spindle::db {

/// A point in time with microsecond precision, as PostgreSQL's timestamptz keeps it. SQLite stores it as
/// RFC 3339 text in UTC ("2026-11-24T21:56:48.123456Z"), which sorts as time does.
using Timestamp = std::chrono::sys_time<std::chrono::microseconds>;

/// Binary data (bytea, BLOB).
using Bytes = std::vector<std::byte>;

/// A UUID (PostgreSQL's uuid; SQLite stores its canonical text).
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  /// "123e4567-e89b-12d3-a456-426614174000"
  std::string to_string() const;
  /// Parses the canonical form (hex digits in either case); nullopt otherwise.
  static std::optional<Uuid> parse(std::string_view text) noexcept;
  friend bool operator==(const Uuid&, const Uuid&) = default;
};

/// RFC 3339 in UTC with microseconds: "2026-11-24T21:56:48.123456Z".
std::string format_timestamp(Timestamp time);
/// Parses RFC 3339 ("2026-11-24T21:56:48Z", "...48.5+01:00", a space for the T) into UTC; nullopt if not.
std::optional<Timestamp> parse_timestamp(std::string_view text) noexcept;

}  // namespace spindle::db
