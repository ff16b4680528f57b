// spindle::db's shared pieces: error names, UUID and timestamp text, the migration list's checks.

#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>

#include "spindle/db/error.hpp"
#include "spindle/db/migrate.hpp"
#include "spindle/db/value.hpp"

namespace spindle::db {

std::string_view to_string(Error::Kind kind) noexcept {
  switch (kind) {
    case Error::Kind::unique_violation:
      return "unique_violation";
    case Error::Kind::foreign_key_violation:
      return "foreign_key_violation";
    case Error::Kind::not_null_violation:
      return "not_null_violation";
    case Error::Kind::check_violation:
      return "check_violation";
    case Error::Kind::serialization_failure:
      return "serialization_failure";
    case Error::Kind::connection:
      return "connection";
    case Error::Kind::timeout:
      return "timeout";
    case Error::Kind::pool_timeout:
      return "pool_timeout";
    case Error::Kind::busy:
      return "busy";
    case Error::Kind::not_found:
      return "not_found";
    case Error::Kind::decode:
      return "decode";
    case Error::Kind::query:
      return "query";
    case Error::Kind::migration:
      return "migration";
  }
  return "unknown";
}

std::string Error::to_string() const {
  std::string text{db::to_string(kind)};
  text += ": ";
  text += message;
  return text;
}

std::string Uuid::to_string() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += kHex[bytes[i] >> 4];
    text += kHex[bytes[i] & 0xf];
  }
  return text;
}

std::optional<Uuid> Uuid::parse(std::string_view text) noexcept {
  if (text.size() != 36) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  Uuid uuid;
  std::size_t at = 0;
  for (std::size_t i = 0; i < uuid.bytes.size(); ++i) {
    if (at == 8 || at == 13 || at == 18 || at == 23) {
      if (text[at] != '-') return std::nullopt;
      ++at;
    }
    const int high = nibble(text[at]);
    const int low = nibble(text[at + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    uuid.bytes[i] = static_cast<std::uint8_t>(high << 4 | low);
    at += 2;
  }
  return uuid;
}

std::string format_timestamp(Timestamp time) {
  using namespace std::chrono;
  const sys_days day = floor<days>(time);
  const year_month_day date{day};
  const auto since_midnight = time - day;
  const hh_mm_ss<microseconds> clock{since_midnight};
  char text[40];
  const int length =
      std::snprintf(text, sizeof text, "%04d-%02u-%02uT%02d:%02d:%02d.%06ldZ", static_cast<int>(date.year()),
                    static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                    static_cast<int>(clock.hours().count()), static_cast<int>(clock.minutes().count()),
                    static_cast<int>(clock.seconds().count()), static_cast<long>(clock.subseconds().count()));
  return std::string(text, static_cast<std::size_t>(length));
}

std::optional<Timestamp> parse_timestamp(std::string_view text) noexcept {
  using namespace std::chrono;
  std::size_t at = 0;
  auto number = [&](std::size_t digits, int& out) {
    if (at + digits > text.size()) return false;
    out = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      const char c = text[at + i];
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    at += digits;
    return true;
  };
  auto expect = [&](char c) { return at < text.size() && text[at++] == c; };
  int y, mo, d, h, mi, s;
  if (!number(4, y) || !expect('-') || !number(2, mo) || !expect('-') || !number(2, d)) return std::nullopt;
  if (at >= text.size() || (text[at] != 'T' && text[at] != 't' && text[at] != ' ')) return std::nullopt;
  ++at;
  if (!number(2, h) || !expect(':') || !number(2, mi) || !expect(':') || !number(2, s)) return std::nullopt;
  long micros = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int digits = 0;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[at] - '0');
      ++digits;
      ++at;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  long offset_seconds = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '-' ? -1 : 1;
    ++at;
    int oh, om = 0;
    if (!number(2, oh)) return std::nullopt;
    if (at < text.size() && text[at] == ':') ++at;
    if (at < text.size() && !number(2, om)) return std::nullopt;
    offset_seconds = sign * (oh * 3600L + om * 60L);
  } else {
    return std::nullopt;  // RFC 3339 requires the offset
  }
  if (at != text.size()) return std::nullopt;
  const year_month_day date{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
  if (!date.ok() || h > 23 || mi > 59 || s > 60) return std::nullopt;
  return Timestamp{sys_days{date}} + hours{h} + minutes{mi} + seconds{s} + microseconds{micros} -
         seconds{offset_seconds};
}

namespace detail {

Result<void, Error> check_migration_list(std::span<const Migration> migrations) {
  std::int64_t previous = 0;
  for (const Migration& migration : migrations) {
    if (migration.version <= previous)
      return Err{Error{Error::Kind::migration,
                       "migration versions must be positive and increasing: " + std::to_string(migration.version) +
                           " follows " + std::to_string(previous),
                       {},
                       {}}};
    previous = migration.version;
  }
  return {};
}

std::string migration_too_new_message(std::int64_t database_version, std::int64_t binary_version) {
  return "the database's schema is at version " + std::to_string(database_version) +
         ", newer than this binary knows (" + std::to_string(binary_version) + "): run a newer binary";
}

}  // namespace detail
}  // namespace spindle::db
