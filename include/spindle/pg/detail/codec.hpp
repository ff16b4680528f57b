#pragma once
// PostgreSQL's wire values for spindle::pg: parameters encoded when a call is made, columns decoded from
// a result. Internal; the types supported are listed in spindle/pg/connection.hpp.
//
// Parameters go in PostgreSQL's binary format where the type is certain (integers, floats, bool, bytea,
// timestamptz, uuid), so the server parses nothing; strings go as text with type "unknown", which the
// server resolves from the query (so one std::string fits text, varchar, json, jsonb, uuid, enum and date
// columns alike). Results come back in binary format; each column's type is checked against the C++ type
// it is read into.

#include <bit>
#include <boost/describe/enum.hpp>
#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/db/error.hpp"
#include "spindle/db/row.hpp"
#include "spindle/db/value.hpp"
#include "spindle/result.hpp"

struct pg_result;  // libpq's PGresult, kept out of public headers

namespace spindle::pg::detail {

using Oid = unsigned int;

/// A query's text and its parameters, owned: built before the call returns, so nothing the caller passed
/// needs to outlive it.
class Statement {
 public:
  template <class... Args>
  static Statement make(std::string_view sql, const Args&... args) {
    Statement statement;
    statement.sql_.assign(sql);
    statement.types_.reserve(sizeof...(Args));
    statement.offsets_.reserve(sizeof...(Args));
    (statement.add(args), ...);
    return statement;
  }

  const std::string& sql() const noexcept { return sql_; }
  std::size_t size() const noexcept { return types_.size(); }
  /// Why a parameter could not be encoded (an integer out of range, a NUL inside text); checked by submit.
  const db::Error* error() const noexcept { return error_.get(); }
  const std::vector<Oid>& types() const noexcept { return types_; }
  /// The arrays libpq's PQsendQueryPrepared takes; valid while the Statement lives and is not changed.
  void wire(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const;

 private:
  static constexpr int kNull = -1;
  struct Slot {
    int offset;  // into bytes_, or kNull
    int length;
    bool binary;
  };

  template <class T>
  void add(const T& value) {
    using V = std::remove_cvref_t<T>;
    if constexpr (std::is_same_v<V, std::nullopt_t>) {
      null(0);
    } else if constexpr (db::detail::is_optional<V>::value) {
      if (value)
        add(*value);
      else
        null(type_of<typename V::value_type>());
    } else if constexpr (std::is_same_v<V, bool>) {
      const char byte = value ? 1 : 0;
      binary(16, &byte, 1);
    } else if constexpr (std::is_integral_v<V>) {
      if constexpr (sizeof(V) <= 2 && !(std::is_unsigned_v<V> && sizeof(V) == 2))
        big_endian(21, static_cast<std::int16_t>(value));
      else if constexpr (sizeof(V) <= 4 && !(std::is_unsigned_v<V> && sizeof(V) == 4))
        big_endian(23, static_cast<std::int32_t>(value));
      else if (std::in_range<std::int64_t>(value))
        big_endian(20, static_cast<std::int64_t>(value));
      else
        fail("an unsigned integer parameter above 2^63 - 1 does not fit PostgreSQL's bigint");
    } else if constexpr (std::is_same_v<V, float>) {
      big_endian(700, std::bit_cast<std::uint32_t>(value));
    } else if constexpr (std::is_same_v<V, double>) {
      big_endian(701, std::bit_cast<std::uint64_t>(value));
    } else if constexpr (std::is_same_v<V, const char*> || std::is_same_v<V, char*>) {
      if (value == nullptr)
        null(0);  // as SQLite reads it
      else
        text(std::string_view{value});
    } else if constexpr (std::is_same_v<V, std::nullptr_t>) {
      null(0);
    } else if constexpr (std::is_convertible_v<const V&, std::string_view>) {
      text(std::string_view{value});
    } else if constexpr (std::is_same_v<V, db::Bytes>) {
      binary(17, reinterpret_cast<const char*>(value.data()), value.size());
    } else if constexpr (std::is_same_v<V, db::Timestamp>) {
      std::int64_t since_2000;
      // PostgreSQL counts microseconds from 2000-01-01 00:00:00 UTC.
      if (__builtin_sub_overflow(value.time_since_epoch().count(), std::int64_t{946'684'800} * 1'000'000, &since_2000))
        fail("a timestamp parameter is out of PostgreSQL's range");
      else
        big_endian(1184, since_2000);
    } else if constexpr (std::is_same_v<V, db::Uuid>) {
      binary(2950, reinterpret_cast<const char*>(value.bytes.data()), value.bytes.size());
    } else if constexpr (boost::describe::has_describe_enumerators<V>::value) {
      const char* name = boost::describe::enum_to_string(value, nullptr);
      if (name == nullptr)
        fail("an enum parameter has no name for its value");
      else
        text(name);
    } else {
      static_assert(sizeof(V) == 0, "spindle::pg: unsupported parameter type (see spindle/pg/connection.hpp)");
    }
  }

  template <class T>
  static constexpr Oid type_of() {
    if constexpr (std::is_same_v<T, bool>)
      return 16;
    else if constexpr (std::is_integral_v<T>)
      return sizeof(T) <= 2 && !(std::is_unsigned_v<T> && sizeof(T) == 2)   ? 21
             : sizeof(T) <= 4 && !(std::is_unsigned_v<T> && sizeof(T) == 4) ? 23
                                                                            : 20;
    else if constexpr (std::is_same_v<T, float>)
      return 700;
    else if constexpr (std::is_same_v<T, double>)
      return 701;
    else if constexpr (std::is_same_v<T, db::Bytes>)
      return 17;
    else if constexpr (std::is_same_v<T, db::Timestamp>)
      return 1184;
    else if constexpr (std::is_same_v<T, db::Uuid>)
      return 2950;
    else
      return 0;
  }

  template <class I>
  void big_endian(Oid type, I value) {
    using U = std::make_unsigned_t<I>;
    char bytes[sizeof(I)];
    auto bits = static_cast<U>(value);
    for (std::size_t i = sizeof(I); i-- > 0;) {
      bytes[i] = static_cast<char>(bits & 0xff);
      bits = static_cast<U>(bits >> 8);
    }
    binary(type, bytes, sizeof(I));
  }
  void binary(Oid type, const char* data, std::size_t length);
  void text(std::string_view value);
  void null(Oid type);
  void fail(std::string message);

  std::string sql_;
  std::string bytes_;
  std::vector<Oid> types_;
  std::vector<Slot> offsets_;
  std::unique_ptr<db::Error> error_;  // boxed: rare, and a statement waits with its query
};

/// Frees a PGresult.
struct ResultDeleter {
  void operator()(pg_result* result) const noexcept;
};
using ResultPtr = std::unique_ptr<pg_result, ResultDeleter>;

/// One query's outcome: its rows (binary format) and the count of rows it changed.
class QueryResult {
 public:
  QueryResult() = default;
  explicit QueryResult(ResultPtr result) : result_(std::move(result)) {}

  int row_count() const noexcept;
  int column_count() const noexcept;
  std::string_view column_name(int column) const noexcept;
  /// Rows inserted, updated, deleted (PQcmdTuples), or returned by a SELECT.
  std::uint64_t affected() const noexcept;
  /// The command's tag: "INSERT 0 1", "COMMIT", "ROLLBACK".
  std::string_view command_tag() const noexcept;

  /// A field as PostgreSQL sent it: its type, its bytes, or nullopt for NULL.
  struct Field {
    Oid type;
    std::optional<std::string_view> bytes;
  };
  Field field(int row, int column) const noexcept;

 private:
  ResultPtr result_;
};

// Decoders of one non-NULL field, per C++ type; each checks the column's type and names it on error.
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, bool& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, std::int64_t& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, double& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, std::string& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Bytes& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Timestamp& out);
Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Uuid& out);
/// A user-defined type (an enum's label) or any text-like column, as text.
Result<void, db::Error> decode_label(const QueryResult::Field& field, std::string_view column, std::string& out);
db::Error decode_error(std::string_view column, std::string message);

/// Reads the fields of one row of a QueryResult, for db::read_row.
class RowReader {
 public:
  RowReader(const QueryResult& result, int row) noexcept : result_(&result), row_(row) {}

  template <class V>
  Result<void, db::Error> read(int column, V& out) const {
    return read_field(result_->field(row_, column), column, out);
  }

 private:
  template <class V>
  Result<void, db::Error> read_field(const QueryResult::Field& field, int column, V& out) const {
    if constexpr (db::detail::is_optional<V>::value) {
      if (!field.bytes) {
        out.reset();
        return {};
      }
      return read_field(field, column, out.emplace());
    } else {
      if (!field.bytes) return Err{decode_error(result_->column_name(column), "is NULL; read it into a std::optional")};
      const std::string_view name = result_->column_name(column);
      if constexpr (std::is_same_v<V, bool> || std::is_same_v<V, double> || std::is_same_v<V, std::string> ||
                    std::is_same_v<V, db::Bytes> || std::is_same_v<V, db::Timestamp> || std::is_same_v<V, db::Uuid>) {
        return decode(field, name, out);
      } else if constexpr (std::is_same_v<V, float>) {
        double wide = 0;
        Result<void, db::Error> done = decode(field, name, wide);
        if (done) out = static_cast<float>(wide);
        return done;
      } else if constexpr (std::is_integral_v<V>) {
        std::int64_t wide = 0;
        Result<void, db::Error> done = decode(field, name, wide);
        if (!done) return done;
        if (!std::in_range<V>(wide)) return Err{decode_error(name, "holds " + std::to_string(wide) + ", out of range")};
        out = static_cast<V>(wide);
        return {};
      } else if constexpr (boost::describe::has_describe_enumerators<V>::value) {
        std::string label;
        Result<void, db::Error> done = decode_label(field, name, label);
        if (!done) return done;
        if (!boost::describe::enum_from_string(label.c_str(), out))
          return Err{decode_error(name, "holds \"" + label + "\", not a name of the enum")};
        return {};
      } else {
        static_assert(sizeof(V) == 0, "spindle::pg: unsupported column type (see spindle/pg/connection.hpp)");
      }
    }
  }

  const QueryResult* result_;
  int row_;
};

/// Every row of `result` as T.
template <class T>
Result<std::vector<T>, db::Error> rows_of(const QueryResult& result) {
  Result<db::ColumnBinding<T>, db::Error> binding = db::ColumnBinding<T>::bind(result);
  if (!binding) return Err{std::move(binding).error()};
  std::vector<T> rows;
  const int count = result.row_count();
  rows.reserve(static_cast<std::size_t>(count));
  for (int row = 0; row < count; ++row) {
    RowReader reader{result, row};
    Result<T, db::Error> one = db::read_row<T>(reader, *binding);
    if (!one) return Err{std::move(one).error()};
    rows.push_back(std::move(*one));
  }
  return rows;
}

/// The first row of `result` as T, or nullopt.
template <class T>
Result<std::optional<T>, db::Error> first_row_of(const QueryResult& result) {
  if (result.row_count() == 0) return std::optional<T>{};
  Result<db::ColumnBinding<T>, db::Error> binding = db::ColumnBinding<T>::bind(result);
  if (!binding) return Err{std::move(binding).error()};
  RowReader reader{result, 0};
  Result<T, db::Error> one = db::read_row<T>(reader, *binding);
  if (!one) return Err{std::move(one).error()};
  return std::optional<T>{std::move(*one)};
}

}  // namespace spindle::pg::detail
