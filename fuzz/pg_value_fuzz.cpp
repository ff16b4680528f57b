// Fuzzes what spindle::pg reads from the server: binary fields of every supported column type decoded
// into every C++ type (a hostile or buggy server must give a decode error, never a crash or an
// over-read), and db's RFC 3339 and UUID text parsers, with their round trips.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "spindle/db/value.hpp"
#include "spindle/pg/detail/codec.hpp"

namespace {

using spindle::pg::detail::decode;
using spindle::pg::detail::Oid;
using spindle::pg::detail::QueryResult;

constexpr Oid kTypes[] = {16,  17,  19,   20,   21,   23,   25,   26,   114,  700,
                          701, 705, 1042, 1043, 1114, 1184, 2950, 3802, 1700, 16384};

template <class T>
void decode_as(const QueryResult::Field& field) {
  T out{};
  (void)decode(field, "column", out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::string_view bytes{reinterpret_cast<const char*>(data + 1), size - 1};
  const QueryResult::Field field{kTypes[data[0] % std::size(kTypes)], bytes};
  decode_as<bool>(field);
  decode_as<std::int64_t>(field);
  decode_as<double>(field);
  decode_as<std::string>(field);
  decode_as<spindle::db::Bytes>(field);
  decode_as<spindle::db::Timestamp>(field);
  decode_as<spindle::db::Uuid>(field);
  std::string label;
  (void)spindle::pg::detail::decode_label(field, "column", label);

  if (std::optional<spindle::db::Timestamp> time = spindle::db::parse_timestamp(bytes)) {
    // Whatever parses formats back to a text that parses to the same instant (years 0000-9999).
    const auto year = std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(*time)}.year();
    if (year >= std::chrono::year{0} && year <= std::chrono::year{9999}) {
      std::optional<spindle::db::Timestamp> again = spindle::db::parse_timestamp(spindle::db::format_timestamp(*time));
      if (!again || *again != *time) std::abort();
    }
  }
  if (std::optional<spindle::db::Uuid> uuid = spindle::db::Uuid::parse(bytes)) {
    if (spindle::db::Uuid::parse(uuid->to_string()) != uuid) std::abort();
  }
  return 0;
}
