#pragma once
// Rows into C++ values, the same way for every database. A row type is one of:
//   - a struct described with BOOST_DESCRIBE_STRUCT (the same declaration spindle::json uses): each public
//     member takes the column of the same name, wherever it is in the result; a missing column is an error
//     unless the member is a std::optional;
//   - a std::tuple: columns by position;
//   - anything else (int, std::string, std::optional<Timestamp>...): the first column.
//
// A backend supplies the columns (count and names) and a reader for one field of the current row; this
// header decides which column goes where, once per result rather than once per row.

#include <array>
#include <boost/describe/members.hpp>
#include <boost/mp11/algorithm.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "spindle/db/error.hpp"
#include "spindle/result.hpp"

namespace spindle::db {

namespace detail {

template <class T>
struct is_tuple : std::false_type {};
template <class... A>
struct is_tuple<std::tuple<A...>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

}  // namespace detail

template <class T>
inline constexpr bool is_described_row =
    boost::describe::has_describe_members<T>::value&& std::is_class_v<T> && !detail::is_tuple<T>::value;

/// How many fields a row type has.
template <class T>
constexpr std::size_t row_width() {
  if constexpr (is_described_row<T>)
    return boost::mp11::mp_size<boost::describe::describe_members<T, boost::describe::mod_public>>::value;
  else if constexpr (detail::is_tuple<T>::value)
    return std::tuple_size_v<T>;
  else
    return 1;
}

/// Which column each field of T reads: computed once per result. -1 marks an optional member whose column
/// is absent (it stays empty).
template <class T>
class ColumnBinding {
 public:
  /// `Columns` has `int column_count() const` and `std::string_view column_name(int) const`.
  template <class Columns>
  static Result<ColumnBinding, Error> bind(const Columns& columns) {
    ColumnBinding binding;
    const int count = columns.column_count();
    if constexpr (is_described_row<T>) {
      std::optional<Error> error;
      std::size_t field = 0;
      boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>([&](auto d) {
        int found = -1;
        for (int c = 0; c < count; ++c)
          if (columns.column_name(c) == std::string_view{d.name}) {
            found = c;
            break;
          }
        using Member = std::remove_cvref_t<decltype(std::declval<T&>().*d.pointer)>;
        if (found < 0 && !detail::is_optional<Member>::value && !error)
          error = Error{Error::Kind::decode, std::string("the result has no column \"") + d.name + "\"", {}, {}};
        binding.columns_[field++] = found;
      });
      if (error) return Err{std::move(*error)};
    } else {
      if (count < static_cast<int>(row_width<T>()))
        return Err{Error{Error::Kind::decode,
                         "the result has " + std::to_string(count) + " columns, the row type needs " +
                             std::to_string(row_width<T>()),
                         {},
                         {}}};
      for (std::size_t i = 0; i < row_width<T>(); ++i) binding.columns_[i] = static_cast<int>(i);
    }
    return binding;
  }

  int column(std::size_t field) const noexcept { return columns_[field]; }

 private:
  std::array<int, row_width<T>()> columns_{};
};

/// Reads the current row into a T. `Reader` has `template <class V> Result<void, Error> read(int column,
/// V& out)`, which converts one field (and names the column in its error).
template <class T, class Reader>
Result<T, Error> read_row(Reader& reader, const ColumnBinding<T>& binding) {
  T row{};
  std::optional<Error> error;
  auto read_field = [&](std::size_t field, auto& out) {
    if (error) return;
    const int column = binding.column(field);
    if (column < 0) return;  // an optional member without a column
    Result<void, Error> done = reader.read(column, out);
    if (!done) error = done.error();
  };
  if constexpr (is_described_row<T>) {
    std::size_t field = 0;
    boost::mp11::mp_for_each<boost::describe::describe_members<T, boost::describe::mod_public>>(
        [&](auto d) { read_field(field++, row.*d.pointer); });
  } else if constexpr (detail::is_tuple<T>::value) {
    [&]<std::size_t... I>(std::index_sequence<I...>) { (read_field(I, std::get<I>(row)), ...); }
    (std::make_index_sequence<row_width<T>()>{});
  } else {
    read_field(0, row);
  }
  if (error) return Err{std::move(*error)};
  return row;
}

}  // namespace spindle::db
