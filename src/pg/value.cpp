// PostgreSQL values: parameters to libpq's arrays, binary result fields to C++ types, errors to db::Error.

#include <libpq-fe.h>

#include <charconv>
#include <cstring>
#include <limits>

#include "error.hpp"
#include "spindle/pg/detail/codec.hpp"

namespace spindle::pg::detail {

// ---- Parameters ----------------------------------------------------------------------------------------

void Statement::binary(Oid type, const char* data, std::size_t length) {
  types_.push_back(type);
  offsets_.push_back(Slot{static_cast<int>(bytes_.size()), static_cast<int>(length), true});
  bytes_.append(data, length);
}

void Statement::text(std::string_view value) {
  // Text parameters are C strings to libpq, and PostgreSQL's text cannot hold NUL anyway.
  if (value.find('\0') != std::string_view::npos) return fail("a text parameter contains a NUL byte");
  types_.push_back(0);
  offsets_.push_back(Slot{static_cast<int>(bytes_.size()), static_cast<int>(value.size()), false});
  bytes_.append(value);
  bytes_.push_back('\0');
}

void Statement::null(Oid type) {
  types_.push_back(type);
  offsets_.push_back(Slot{kNull, 0, false});
}

void Statement::fail(std::string message) {
  if (!error_)
    error_ = std::make_unique<db::Error>(
        db::Error{db::Error::Kind::query, "parameter " + std::to_string(types_.size() + 1) + ": " + message, {}, {}});
  null(0);
}

void Statement::wire(std::vector<const char*>& values, std::vector<int>& lengths, std::vector<int>& formats) const {
  values.clear();
  lengths.clear();
  formats.clear();
  for (const Slot& slot : offsets_) {
    values.push_back(slot.offset == kNull ? nullptr : bytes_.data() + slot.offset);
    lengths.push_back(slot.length);
    formats.push_back(slot.binary ? 1 : 0);
  }
}

// ---- Results -------------------------------------------------------------------------------------------

void ResultDeleter::operator()(pg_result* result) const noexcept { PQclear(result); }

int QueryResult::row_count() const noexcept { return result_ ? PQntuples(result_.get()) : 0; }
int QueryResult::column_count() const noexcept { return result_ ? PQnfields(result_.get()) : 0; }
std::string_view QueryResult::column_name(int column) const noexcept {
  const char* name = PQfname(result_.get(), column);
  return name != nullptr ? name : "";
}
std::uint64_t QueryResult::affected() const noexcept {
  if (!result_) return 0;
  const char* tuples = PQcmdTuples(result_.get());
  std::uint64_t count = 0;
  std::from_chars(tuples, tuples + std::strlen(tuples), count);
  return count;
}
std::string_view QueryResult::command_tag() const noexcept { return result_ ? PQcmdStatus(result_.get()) : ""; }

QueryResult::Field QueryResult::field(int row, int column) const noexcept {
  pg_result* result = result_.get();
  const Oid type = PQftype(result, column);
  if (PQgetisnull(result, row, column)) return Field{type, std::nullopt};
  return Field{type, std::string_view{PQgetvalue(result, row, column),
                                      static_cast<std::size_t>(PQgetlength(result, row, column))}};
}

namespace {

// Type OIDs (pg_type.h, stable across versions).
constexpr Oid kBool = 16, kBytea = 17, kName = 19, kInt8 = 20, kInt2 = 21, kInt4 = 23, kText = 25, kOid = 26,
              kJson = 114, kFloat4 = 700, kFloat8 = 701, kUnknown = 705, kBpchar = 1042, kVarchar = 1043,
              kTimestamp = 1114, kTimestamptz = 1184, kUuid = 2950, kJsonb = 3802;
// The first OID of objects users create (enums, domains): their binary form of an enum is its label.
constexpr Oid kFirstUserOid = 16384;

std::string type_name(Oid type) {
  switch (type) {
    case kBool:
      return "bool";
    case kBytea:
      return "bytea";
    case kName:
      return "name";
    case kInt8:
      return "int8";
    case kInt2:
      return "int2";
    case kInt4:
      return "int4";
    case kText:
      return "text";
    case kOid:
      return "oid";
    case kJson:
      return "json";
    case kFloat4:
      return "float4";
    case kFloat8:
      return "float8";
    case kBpchar:
      return "char";
    case kVarchar:
      return "varchar";
    case kTimestamp:
      return "timestamp";
    case kTimestamptz:
      return "timestamptz";
    case kUuid:
      return "uuid";
    case kJsonb:
      return "jsonb";
    case 1700:
      return "numeric";
    case 1082:
      return "date";
    default:
      return "type " + std::to_string(type);
  }
}

template <class U>
U big_endian(std::string_view bytes) {
  U value = 0;
  for (char c : bytes) value = static_cast<U>(value << 8 | static_cast<unsigned char>(c));
  return value;
}

Result<void, db::Error> wrong_type(const QueryResult::Field& field, std::string_view column, const char* wanted) {
  return Err{decode_error(column, "is " + type_name(field.type) + ", which does not convert to " + wanted)};
}

Result<void, db::Error> wrong_size(std::string_view column) {
  return Err{decode_error(column, "has a value of an unexpected size")};
}

bool is_text_like(Oid type) {
  return type == kText || type == kVarchar || type == kBpchar || type == kName || type == kJson || type == kUnknown ||
         type == kJsonb;
}

}  // namespace

db::Error decode_error(std::string_view column, std::string message) {
  return db::Error{db::Error::Kind::decode, "column \"" + std::string{column} + "\" " + message, {}, {}};
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, bool& out) {
  if (field.type != kBool) return wrong_type(field, column, "bool");
  if (field.bytes->size() != 1) return wrong_size(column);
  out = (*field.bytes)[0] != 0;
  return {};
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, std::int64_t& out) {
  const std::string_view bytes = *field.bytes;
  switch (field.type) {
    case kInt2:
      if (bytes.size() != 2) return wrong_size(column);
      out = static_cast<std::int16_t>(big_endian<std::uint16_t>(bytes));
      return {};
    case kInt4:
      if (bytes.size() != 4) return wrong_size(column);
      out = static_cast<std::int32_t>(big_endian<std::uint32_t>(bytes));
      return {};
    case kOid:
      if (bytes.size() != 4) return wrong_size(column);
      out = big_endian<std::uint32_t>(bytes);
      return {};
    case kInt8:
      if (bytes.size() != 8) return wrong_size(column);
      out = static_cast<std::int64_t>(big_endian<std::uint64_t>(bytes));
      return {};
    default:
      return wrong_type(field, column, "an integer");
  }
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, double& out) {
  const std::string_view bytes = *field.bytes;
  if (field.type == kFloat8) {
    if (bytes.size() != 8) return wrong_size(column);
    out = std::bit_cast<double>(big_endian<std::uint64_t>(bytes));
    return {};
  }
  if (field.type == kFloat4) {
    if (bytes.size() != 4) return wrong_size(column);
    out = std::bit_cast<float>(big_endian<std::uint32_t>(bytes));
    return {};
  }
  std::int64_t integer = 0;
  if (field.type == kInt2 || field.type == kInt4 || field.type == kInt8) {
    Result<void, db::Error> done = decode(field, column, integer);
    if (done) out = static_cast<double>(integer);
    return done;
  }
  return wrong_type(field, column, "a floating-point number");
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, std::string& out) {
  if (!is_text_like(field.type)) {
    if (field.type == kUuid) {
      db::Uuid uuid;
      Result<void, db::Error> done = decode(field, column, uuid);
      if (done) out = uuid.to_string();
      return done;
    }
    return wrong_type(field, column, "a string");
  }
  std::string_view bytes = *field.bytes;
  if (field.type == kJsonb) {
    // jsonb's binary form: a version byte (1), then the text.
    if (bytes.empty() || bytes[0] != 1) return wrong_size(column);
    bytes.remove_prefix(1);
  }
  out.assign(bytes);
  return {};
}

Result<void, db::Error> decode_label(const QueryResult::Field& field, std::string_view column, std::string& out) {
  if (field.type >= kFirstUserOid) {
    out.assign(*field.bytes);
    return {};
  }
  return decode(field, column, out);
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Bytes& out) {
  if (field.type != kBytea) return wrong_type(field, column, "bytes");
  const std::string_view bytes = *field.bytes;
  out.resize(bytes.size());
  if (!bytes.empty()) std::memcpy(out.data(), bytes.data(), bytes.size());
  return {};
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Timestamp& out) {
  if (field.type != kTimestamptz && field.type != kTimestamp) return wrong_type(field, column, "a timestamp");
  if (field.bytes->size() != 8) return wrong_size(column);
  const auto since_2000 = static_cast<std::int64_t>(big_endian<std::uint64_t>(*field.bytes));
  std::int64_t since_1970;
  // PostgreSQL's 'infinity' and '-infinity' are the extreme values; no real time is near them.
  if (__builtin_add_overflow(since_2000, std::int64_t{946'684'800} * 1'000'000, &since_1970) ||
      since_2000 == std::numeric_limits<std::int64_t>::max() || since_2000 == std::numeric_limits<std::int64_t>::min())
    return Err{decode_error(column, "is infinite or out of range for db::Timestamp")};
  out = db::Timestamp{std::chrono::microseconds{since_1970}};
  return {};
}

Result<void, db::Error> decode(const QueryResult::Field& field, std::string_view column, db::Uuid& out) {
  if (field.type != kUuid) return wrong_type(field, column, "a UUID");
  if (field.bytes->size() != 16) return wrong_size(column);
  std::memcpy(out.bytes.data(), field.bytes->data(), 16);
  return {};
}

// ---- Errors --------------------------------------------------------------------------------------------

db::Error connection_error(const PGconn* connection, std::string_view what) {
  std::string message{what};
  const char* reported = connection != nullptr ? PQerrorMessage(connection) : nullptr;
  if (reported != nullptr && *reported != '\0') {
    message += ": ";
    message += reported;
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  }
  return db::Error{db::Error::Kind::connection, std::move(message), {}, {}};
}

db::Error result_error(const PGresult* result) {
  auto field = [&](int code) -> std::string {
    const char* value = PQresultErrorField(result, code);
    return value != nullptr ? value : "";
  };
  db::Error error;
  error.sqlstate = field(PG_DIAG_SQLSTATE);
  error.constraint = field(PG_DIAG_CONSTRAINT_NAME);
  error.message = field(PG_DIAG_MESSAGE_PRIMARY);
  if (error.message.empty()) error.message = PQresultErrorMessage(result);
  if (std::string detail = field(PG_DIAG_MESSAGE_DETAIL); !detail.empty()) error.message += " (" + detail + ")";
  const std::string& state = error.sqlstate;
  using Kind = db::Error::Kind;
  if (state == "23505")
    error.kind = Kind::unique_violation;
  else if (state == "23503")
    error.kind = Kind::foreign_key_violation;
  else if (state == "23502")
    error.kind = Kind::not_null_violation;
  else if (state == "23514")
    error.kind = Kind::check_violation;
  else if (state == "40001" || state == "40P01")
    error.kind = Kind::serialization_failure;
  else if (state == "57014")
    error.kind = Kind::timeout;  // query_canceled: our cancel, or statement_timeout
  else if (state.starts_with("08") || state == "57P01" || state == "57P02" || state == "57P03")
    error.kind = Kind::connection;  // connection exceptions, the server shutting down
  else
    error.kind = Kind::query;
  return error;
}

}  // namespace spindle::pg::detail
