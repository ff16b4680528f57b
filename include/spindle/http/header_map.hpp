#pragma once
// HeaderMap: the header fields of a message Spindle builds (a response, a client request).

#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  struct Field {
    std::string name;
    std::string value;
  };

  /// Replaces every field named `name` by one with `value`.
  void set(std::string_view name, std::string_view value);
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
  std::vector<Field> fields_;
};

}  // namespace spindle::http
