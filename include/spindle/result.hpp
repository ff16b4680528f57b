#pragma once
// spindle::Result<T, E>: a value or an error, the way Spindle reports failures that are part of normal
// operation (a refused connection, a timeout, a bad request). std::expected would do, but it is C++23 and
// GCC 12 lacks it in C++20 mode. Exceptions remain for bugs and for handler failures.

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace spindle {

/// Marks a value as the error alternative of a Result, so Result<int, int> stays unambiguous.
///
///   Result<int, std::string> parse(std::string_view s) {
///     if (s.empty()) return Err{std::string{"empty"}};
///     return 42;
///   }
template <class E>
struct Err {
  E error;
};
template <class E>
Err(E) -> Err<E>;

/// Thrown by Result::value() when the Result holds an error: reading a value that is not there is a bug.
class BadResultAccess : public std::logic_error {
 public:
  BadResultAccess() : std::logic_error("spindle::Result::value() called on an error") {}
};

/// A value of type T or an error of type E.
///
///   Result<std::size_t, std::error_code> n = co_await stream.read(buffer);
///   if (!n) log(n.error().message());
///   else consume(buffer.first(*n));
template <class T, class E>
class [[nodiscard]] Result {
  static_assert(!std::is_reference_v<T> && !std::is_reference_v<E>, "Result holds values, not references");

 public:
  using value_type = T;
  using error_type = E;

  template <class U = T>
  requires std::is_constructible_v<T, U&&> &&(!std::is_same_v<std::remove_cvref_t<U>, Result>)Result(U&& value)
      : storage_(std::in_place_index<0>, std::forward<U>(value)) {}  // NOLINT: implicit by design

  template <class G>
  requires std::is_constructible_v<E, G&&> Result(Err<G> err)
      : storage_(std::in_place_index<1>, std::move(err.error)) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  T& value() & {
    check();
    return *std::get_if<0>(&storage_);
  }
  const T& value() const& {
    check();
    return *std::get_if<0>(&storage_);
  }
  T&& value() && {
    check();
    return std::move(*std::get_if<0>(&storage_));
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; calling it on a value is a bug (checked).
  E& error() & {
    check_error();
    return *std::get_if<1>(&storage_);
  }
  const E& error() const& {
    check_error();
    return *std::get_if<1>(&storage_);
  }
  E&& error() && {
    check_error();
    return std::move(*std::get_if<1>(&storage_));
  }

  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? *std::get_if<0>(&storage_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  void check() const {
    if (!has_value()) throw BadResultAccess{};
  }
  void check_error() const {
    if (has_value()) throw std::logic_error("spindle::Result::error() called on a value");
  }
  std::variant<T, E> storage_;
};

/// Result<void, E>: success carries nothing.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Result() = default;
  template <class G>
  requires std::is_constructible_v<E, G&&> Result(Err<G> err)
      : error_(std::move(err.error)), failed_(true) {}  // NOLINT: implicit by design

  bool has_value() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return has_value(); }
  void value() const {
    if (failed_) throw BadResultAccess{};
  }
  const E& error() const& {
    if (!failed_) throw std::logic_error("spindle::Result::error() called on a value");
    return error_;
  }

 private:
  E error_{};
  bool failed_ = false;
};

/// The result of an I/O operation: the OS error as a std::error_code.
template <class T>
using IoResult = Result<T, std::error_code>;

/// The current errno as an Err, for `return last_os_error();` after a failed syscall.
inline Err<std::error_code> last_os_error() { return Err{std::error_code(errno, std::system_category())}; }

}  // namespace spindle
