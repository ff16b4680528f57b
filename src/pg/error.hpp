#pragma once
// libpq's errors as db::Error. Private to src/pg/.

#include <libpq-fe.h>

#include <string_view>

#include "spindle/db/error.hpp"

namespace spindle::pg::detail {

/// What the connection reports (PQerrorMessage), as Kind::connection, after `what`.
db::Error connection_error(const PGconn* connection, std::string_view what);
/// A failed result: its SQLSTATE decides the kind (23505 unique_violation, 40001 serialization_failure...).
db::Error result_error(const PGresult* result);

}  // namespace spindle::pg::detail
