#pragma once
// spindle::json: a struct declared once with Boost.Describe becomes JSON and comes back from it, as serde
// does for Rust. The HTTP layer's Json<T> and the database layer's row mapping use the same declaration.
//
//   struct Address { std::string city; std::optional<std::string> zip; };
//   BOOST_DESCRIBE_STRUCT(Address, (), (city, zip))
//   enum class Role { admin, member };
//   BOOST_DESCRIBE_ENUM(Role, admin, member)
//   struct User { std::int64_t id; std::string name; Role role; std::vector<Address> addresses; };
//   BOOST_DESCRIBE_STRUCT(User, (), (id, name, role, addresses))
//
//   std::string text = json::to_string(user);   // {"id":7,"name":"Ada","role":"admin","addresses":[...]}
//   Result<User, json::Error> back = json::from_string<User>(text);
//
// Supported: bool, integers (range-checked), floating point, std::string, std::optional (null or
// missing), std::vector, std::map with string keys, described enums (as their names), described structs
// (as objects: unknown members ignored, a missing member that is not optional is an error naming it),
// and boost::json::value as it is. Parsing is iterative with a nesting limit, so a hostile body nested
// 100,000 deep is an error, not a stack overflow; conversion recurses only as deep as the parser allowed.

#include <boost/describe/class.hpp>
#include <boost/describe/enum.hpp>
#include <boost/describe/enum_from_string.hpp>
#include <boost/describe/enum_to_string.hpp>
#include <boost/describe/members.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/value.hpp>
#include <boost/mp11/algorithm.hpp>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "spindle/result.hpp"

namespace spindle::json {

/// Why a text did not become a value.
struct Error {
  enum class Kind {
    syntax,  // not JSON at all (or nested too deep): HTTP answers 400
    data,    // JSON, but not of the expected shape: a wrong type, a missing member (422)
  };
  Kind kind = Kind::syntax;
  std::string message;
  /// Where in the document: "addresses[1].city"; empty for the whole document.
  std::string path;
};

struct ParseOptions {
  /// Arrays and objects nested deeper than this are a syntax error.
  std::size_t max_depth = 64;
};

/// Appends `text` as a JSON string literal, quotes included.
void write_string(std::string& out, std::string_view text);

namespace detail {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

template <class T>
constexpr bool is_described_struct = boost::describe::has_describe_members<T>::value&& std::is_class_v<T>;
template <class T>
constexpr bool is_described_enum = boost::describe::has_describe_enumerators<T>::value;

void write_double(std::string& out, double value);
/// A document as JSON text (Boost's serializer writes infinity as `Infinity`, which is not JSON).
void write_value(std::string& out, const boost::json::value& value);
/// "admin, member": the names a described enum accepts, for an error message.
template <class E>
std::string enumerator_names() {
  std::string names;
  boost::mp11::mp_for_each<boost::describe::describe_enumerators<E>>([&](auto d) {
    if (!names.empty()) names += ", ";
    names += d.name;
  });
  return names;
}

/// Converts a parsed document into T, remembering where it failed.
class Decoder {
 public:
  Error error;

  template <class T>
  bool read(const boost::json::value& v, T& out) {
    if constexpr (std::is_same_v<T, boost::json::value>) {
      out = v;
      return true;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_bool()) return fail("must be true or false");
      out = v.get_bool();
      return true;
    } else if constexpr (std::is_integral_v<T>) {
      if (v.is_int64() && std::in_range<T>(v.get_int64())) {
        out = static_cast<T>(v.get_int64());
        return true;
      }
      if (v.is_uint64() && std::in_range<T>(v.get_uint64())) {
        out = static_cast<T>(v.get_uint64());
        return true;
      }
      if (v.is_int64() || v.is_uint64()) return fail("is out of range");
      return fail(std::is_signed_v<T> ? "must be an integer" : "must be a non-negative integer");
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) return fail("must be a number");
      const double number = v.to_number<double>();
      // 1e999 parses as infinity, which JSON cannot carry back out.
      if (!std::isfinite(number) || (std::is_same_v<T, float> && std::abs(number) > 3.4028234663852886e38))
        return fail("is out of range");
      out = static_cast<T>(number);
      return true;
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) return fail("must be a string");
      out.assign(v.get_string().data(), v.get_string().size());
      return true;
    } else if constexpr (is_optional<T>::value) {
      if (v.is_null()) {
        out.reset();
        return true;
      }
      return read(v, out.emplace());
    } else if constexpr (is_vector<T>::value) {
      if (!v.is_array()) return fail("must be an array");
      const auto& array = v.get_array();
      out.clear();
      out.reserve(array.size());
      const std::size_t outer = path_.size();
      for (std::size_t i = 0; i < array.size(); ++i) {
        path_ += '[';
        path_ += std::to_string(i);
        path_ += ']';
        if (!read(array[i], out.emplace_back())) return false;
        path_.resize(outer);
      }
      return true;
    } else if constexpr (is_string_map<T>::value) {
      if (!v.is_object()) return fail("must be an object");
      out.clear();
      const std::size_t outer = path_.size();
      for (const auto& member : v.get_object()) {
        enter(member.key());
        std::string key{member.key()};
        if (!read(member.value(), out[std::move(key)])) return false;
        path_.resize(outer);
      }
      return true;
    } else if constexpr (is_described_enum<T>) {
      if (!v.is_string()) return fail("must be one of " + enumerator_names<T>());
      const auto& name = v.get_string();
      if (!boost::describe::enum_from_string(std::string{name}.c_str(), out))
        return fail("must be one of " + enumerator_names<T>());
      return true;
    } else if constexpr (is_described_struct<T>) {
      if (!v.is_object()) return fail("must be an object");
      const auto& object = v.get_object();
      const std::size_t outer = path_.size();
      bool ok = true;
      boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto d) {
        if (!ok) return;
        using Member = std::remove_cvref_t<decltype(out.*d.pointer)>;
        enter(d.name);
        if (const boost::json::value* found = object.if_contains(d.name)) {
          ok = read(*found, out.*d.pointer);
        } else if constexpr (is_optional<Member>::value) {
          (out.*d.pointer).reset();
        } else {
          ok = fail("is missing");
        }
        if (ok) path_.resize(outer);
      });
      return ok;
    } else {
      static_assert(sizeof(T) == 0,
                    "spindle::json cannot read this type: declare it with BOOST_DESCRIBE_STRUCT or "
                    "BOOST_DESCRIBE_ENUM, or use bool, a number, std::string, std::optional, std::vector, "
                    "std::map<std::string, X> or boost::json::value");
    }
  }

 private:
  std::string path_;

  void enter(std::string_view name) {
    if (!path_.empty()) path_ += '.';
    path_ += name;
  }
  bool fail(std::string message) {
    error = Error{Error::Kind::data, std::move(message), path_};
    return false;
  }
};

/// Parses `text` into a document whose memory comes from `storage`.
Result<boost::json::value, Error> parse(std::string_view text, boost::json::storage_ptr storage,
                                        const ParseOptions& options);

}  // namespace detail

/// Appends `value` as JSON to `out`: serialization writes straight into the buffer that becomes the
/// response body, with no document in between.
template <class T>
void write(std::string& out, const T& value) {
  using namespace detail;
  if constexpr (std::is_same_v<T, boost::json::value>) {
    write_value(out, value);
  } else if constexpr (std::is_same_v<T, bool>) {
    out += value ? "true" : "false";
  } else if constexpr (std::is_integral_v<T>) {
    char digits[24];
    const auto written = std::to_chars(digits, digits + sizeof digits, value);
    out.append(digits, written.ptr);
  } else if constexpr (std::is_floating_point_v<T>) {
    write_double(out, static_cast<double>(value));
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    write_string(out, value);
  } else if constexpr (is_optional<T>::value) {
    if (value)
      write(out, *value);
    else
      out += "null";
  } else if constexpr (is_vector<T>::value) {
    out += '[';
    bool first = true;
    for (const auto& element : value) {
      if (!first) out += ',';
      first = false;
      write(out, element);
    }
    out += ']';
  } else if constexpr (is_string_map<T>::value) {
    out += '{';
    bool first = true;
    for (const auto& [key, element] : value) {
      if (!first) out += ',';
      first = false;
      write_string(out, key);
      out += ':';
      write(out, element);
    }
    out += '}';
  } else if constexpr (is_described_enum<T>) {
    write_string(out, boost::describe::enum_to_string(value, "unknown"));
  } else if constexpr (is_described_struct<T>) {
    out += '{';
    bool first = true;
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto d) {
      if (!first) out += ',';
      first = false;
      write_string(out, d.name);
      out += ':';
      write(out, value.*d.pointer);
    });
    out += '}';
  } else {
    static_assert(sizeof(T) == 0,
                  "spindle::json cannot write this type: declare it with BOOST_DESCRIBE_STRUCT or "
                  "BOOST_DESCRIBE_ENUM, or use bool, a number, std::string, std::optional, std::vector, "
                  "std::map<std::string, X> or boost::json::value");
  }
}

/// `value` as JSON text.
template <class T>
std::string to_string(const T& value) {
  std::string out;
  write(out, value);
  return out;
}

/// Reads a T from JSON text: a syntax error, or a data error naming the member at fault.
template <class T>
Result<T, Error> from_string(std::string_view text, const ParseOptions& options = {}) {
  // The document lives only while it is converted: a monotonic arena (on the stack for small bodies)
  // makes its allocations a pointer bump, freed at once.
  unsigned char arena[4096];
  boost::json::monotonic_resource resource{arena, sizeof arena};
  Result<boost::json::value, Error> document = detail::parse(text, &resource, options);
  if (!document) return Err{std::move(document).error()};
  T value{};
  detail::Decoder decoder;
  if (!decoder.read(*document, value)) return Err{std::move(decoder.error)};
  return value;
}

}  // namespace spindle::json
