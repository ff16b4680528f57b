// The non-template parts of spindle::json: string escaping, numbers, and the parser's front end.

#include "spindle/json.hpp"

#include <boost/json/parser.hpp>
#include <cmath>

#include "spindle/text/utf8.hpp"

namespace spindle::json {

void write_string(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + 2);
  out.push_back('"');
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      // Invalid UTF-8 (in an error message quoting what a client sent, say) would make the whole
      // document invalid: each bad byte becomes U+FFFD instead.
      const std::size_t length = utf8::sequence_length(text.substr(i));
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out.push_back('"');
}

namespace detail {

void write_double(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char digits[32];
  const auto written = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, written.ptr);
}

void write_value(std::string& out, const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      out += "null";
      return;
    case boost::json::kind::bool_:
      out += value.get_bool() ? "true" : "false";
      return;
    case boost::json::kind::int64:
      out += std::to_string(value.get_int64());
      return;
    case boost::json::kind::uint64:
      out += std::to_string(value.get_uint64());
      return;
    case boost::json::kind::double_:
      write_double(out, value.get_double());
      return;
    case boost::json::kind::string:
      write_string(out, value.get_string());
      return;
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value.get_array()) {
        if (!first) out += ',';
        first = false;
        write_value(out, element);
      }
      out += ']';
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& member : value.get_object()) {
        if (!first) out += ',';
        first = false;
        write_string(out, member.key());
        out += ':';
        write_value(out, member.value());
      }
      out += '}';
      return;
    }
  }
}

Result<boost::json::value, Error> parse(std::string_view text, boost::json::storage_ptr storage,
                                        const ParseOptions& options) {
  boost::json::parse_options parse_options;
  parse_options.max_depth = options.max_depth;
  boost::json::parser parser{storage, parse_options};
  boost::system::error_code error;
  const std::size_t consumed = parser.write_some(text.data(), text.size(), error);
  // write_some takes the text as the whole document: an unfinished one is an error, and what follows a
  // finished one is reported here.
  if (!error && consumed < text.size()) error = boost::json::error::extra_data;
  if (error) {
    std::string message = error == boost::json::error::too_deep
                              ? "nested deeper than " + std::to_string(options.max_depth) + " levels"
                              : error.message();
    return Err{Error{Error::Kind::syntax, "invalid JSON at byte " + std::to_string(consumed) + ": " + message, ""}};
  }
  return parser.release();
}

}  // namespace detail
}  // namespace spindle::json
