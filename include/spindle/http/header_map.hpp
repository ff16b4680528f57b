#pragma once
// HeaderMap: the header fields of a message Spindle builds (a response, a client request).

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/http/detail/field_syntax.hpp"

namespace spindle::http {

/// Header fields in the order added; names compare case-insensitively. Repeated names are kept (append)
/// or replaced (set). A name that is not a token or a value with CR, LF or another control is refused
/// (std::invalid_argument): it would let a value chosen by a client split the response.
///
///   HeaderMap headers;
///   headers.set("content-type", "text/plain");
///   headers.append("set-cookie", "a=1");
///   if (auto type = headers.get("Content-Type")) ...
class HeaderMap {
 public:
  /// A field name known when the program is compiled (a string literal): checked by the compiler (a
  /// name that is not a token does not compile) and stored without a copy.
  class StaticName {
   public:
    consteval StaticName(const char* text) : text_(text) {  // NOLINT: implicit by design
      if (!detail::is_token(text_)) throw "a header field name must be a token";
    }
    constexpr std::string_view view() const noexcept { return text_; }

   private:
    std::string_view text_;
  };
  /// A field value known when the program is compiled: a control character in it does not compile.
  class StaticValue {
   public:
    consteval StaticValue(const char* text) : text_(text) {  // NOLINT: implicit by design
      if (!detail::is_field_value(text_)) throw "a header field value must not contain control characters";
    }
    constexpr std::string_view view() const noexcept { return text_; }

   private:
    std::string_view text_;
  };

  /// One field. `name` and `value` view storage the field owns (or a string literal's).
  class Field {
   public:
    Field(std::string_view n, std::string_view v, bool copy);
    Field(const Field& other) : Field(other.name, other.value, other.storage_ != nullptr) {}
    Field& operator=(const Field& other) {
      if (this != &other) *this = Field{other};
      return *this;
    }
    Field(Field&&) noexcept = default;
    Field& operator=(Field&&) noexcept = default;
    ~Field() = default;

    std::string_view name;
    std::string_view value;

   private:
    std::unique_ptr<char[]> storage_;  // name then value, unless both are static
  };

  /// Replaces every field named `name` by one with `value`.
  void set(std::string_view name, std::string_view value);
  /// set() for literals: no check at run time, no copy (`headers.set_static("content-type", "text/html")`).
  void set_static(StaticName name, StaticValue value);
  /// Adds a field, keeping any others of the same name.
  void append(std::string_view name, std::string_view value);
  /// The first value of `name`.
  std::optional<std::string_view> get(std::string_view name) const noexcept;
  bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
  /// Removes every field named `name`; how many there were.
  std::size_t remove(std::string_view name) noexcept;

  bool empty() const noexcept { return fields_.empty(); }
  std::size_t size() const noexcept { return fields_.size(); }
  auto begin() const noexcept { return fields_.begin(); }
  auto end() const noexcept { return fields_.end(); }

 private:
  void replace(std::string_view name, Field field);
  std::vector<Field> fields_;
};

}  // namespace spindle::http
