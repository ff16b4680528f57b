#pragma once
// The users service's domain: what a user is on the wire, what a client may send, and the rules a name
// and an email must follow. Pure functions: no database, no HTTP.

#include <boost/describe/class.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/result.hpp"

namespace users {

/// A stored user as the API shows it. `created_at` is RFC 3339 in UTC with microseconds
/// ("2026-11-25T01:02:03.123456Z"), written by the service so both databases give the same text.
struct User {
  std::int64_t id = 0;
  std::string name;
  std::string email;
  std::string created_at;
};
BOOST_DESCRIBE_STRUCT(User, (), (id, name, email, created_at))

/// The body of POST and PUT: both members required.
struct UserInput {
  std::string name;
  std::string email;
};
BOOST_DESCRIBE_STRUCT(UserInput, (), (name, email))

/// The body of PATCH: a member left out keeps its value.
struct UserPatch {
  std::optional<std::string> name;
  std::optional<std::string> email;
};
BOOST_DESCRIBE_STRUCT(UserPatch, (), (name, email))

/// GET /users's answer.
struct UserPage {
  std::vector<User> users;
  std::int64_t total = 0;
  std::int64_t limit = 0;
  std::int64_t offset = 0;
};
BOOST_DESCRIBE_STRUCT(UserPage, (), (users, total, limit, offset))

/// A change, as the event feeds carry it: {"type": "user_created" | "user_updated" | "user_deleted",
/// "user": {...}}.
struct Event {
  std::string type;
  User user;
};
BOOST_DESCRIBE_STRUCT(Event, (), (type, user))

/// What a client sent wrong: the member and why, for a 422.
struct Invalid {
  std::string field;
  std::string message;
};

inline constexpr std::size_t kMaxNameCodePoints = 100;
inline constexpr std::size_t kMaxEmailBytes = 254;  // RFC 5321's limit on a path

/// The name after trimming white space (Unicode's, not only ASCII's): 1 to 100 Unicode code points, no
/// control characters (C0 or C1).
spindle::Result<std::string, Invalid> valid_name(std::string_view name);
/// The email after trimming: one '@', a local part of 1 to 64 bytes, a domain of dot-separated labels
/// whose last is at least two characters and not all digits; no spaces or control characters.
/// Plausible, not proven: only a message that arrives proves an address.
spindle::Result<std::string, Invalid> valid_email(std::string_view email);
/// What makes two emails the same address here: ASCII letters compared without regard to case (the
/// same rule on both databases, whatever their collation).
std::string email_key(std::string_view email);

}  // namespace users
