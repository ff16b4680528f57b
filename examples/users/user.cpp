#include "user.hpp"

#include <cstdint>

namespace users {
namespace {

/// The code point at the start of valid UTF-8 (the JSON parser has checked it) and its length.
std::pair<char32_t, std::size_t> first_code_point(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return {lead, 1};
  if (lead < 0xE0) return {((lead & 0x1Fu) << 6) | (byte(1) & 0x3Fu), 2};
  if (lead < 0xF0) return {((lead & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu), 3};
  return {((lead & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) | (byte(3) & 0x3Fu), 4};
}

/// The code point that ends valid UTF-8 and its length.
std::pair<char32_t, std::size_t> last_code_point(std::string_view text) {
  std::size_t start = text.size() - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return first_code_point(text.substr(start));
}

/// Unicode's White_Space property.
bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/// C0 and C1 controls, and DEL.
bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

std::string_view trimmed(std::string_view text) {
  while (!text.empty()) {
    const auto [c, length] = first_code_point(text);
    if (!is_space(c)) break;
    text.remove_prefix(length);
  }
  while (!text.empty()) {
    const auto [c, length] = last_code_point(text);
    if (!is_space(c)) break;
    text.remove_suffix(length);
  }
  return text;
}

/// Calls `visit` with every code point; stops at the first for which it returns false.
template <class Visit>
bool every_code_point(std::string_view text, Visit visit) {
  while (!text.empty()) {
    const auto [c, length] = first_code_point(text);
    if (!visit(c)) return false;
    text.remove_prefix(length);
  }
  return true;
}

bool is_domain_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  for (unsigned char c : label) {
    const bool ascii_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ascii_ok && c < 0x80) return false;  // the bytes of an internationalized label pass
  }
  return true;
}

}  // namespace

spindle::Result<std::string, Invalid> valid_name(std::string_view name) {
  name = trimmed(name);
  if (name.empty()) return spindle::Err{Invalid{"name", "must not be empty"}};
  std::size_t code_points = 0;
  const bool no_controls = every_code_point(name, [&](char32_t c) {
    ++code_points;
    return !is_control(c);
  });
  if (!no_controls) return spindle::Err{Invalid{"name", "must not contain control characters"}};
  if (code_points > kMaxNameCodePoints) return spindle::Err{Invalid{"name", "must be at most 100 characters"}};
  return std::string{name};
}

spindle::Result<std::string, Invalid> valid_email(std::string_view email) {
  email = trimmed(email);
  const auto invalid = [] { return spindle::Err{Invalid{"email", "must be an email address like name@example.com"}}; };
  if (email.empty()) return spindle::Err{Invalid{"email", "must not be empty"}};
  if (email.size() > kMaxEmailBytes) return spindle::Err{Invalid{"email", "must be at most 254 bytes"}};
  if (!every_code_point(email, [](char32_t c) { return !is_control(c) && !is_space(c); })) return invalid();
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) return invalid();
  const std::string_view local = email.substr(0, at);
  std::string_view domain = email.substr(at + 1);
  if (local.empty() || local.size() > 64) return invalid();
  std::size_t labels = 0;
  std::string_view last;
  while (true) {
    const std::size_t dot = domain.find('.');
    last = domain.substr(0, dot);
    if (!is_domain_label(last)) return invalid();
    ++labels;
    if (dot == std::string_view::npos) break;
    domain.remove_prefix(dot + 1);
  }
  if (labels < 2 || last.size() < 2) return invalid();
  if (last.find_first_not_of("0123456789") == std::string_view::npos) return invalid();  // "a@b.123": an IP's tail
  return std::string{email};
}

std::string email_key(std::string_view email) {
  std::string key{email};
  for (char& c : key)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return key;
}

}  // namespace users
