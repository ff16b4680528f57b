#include "user.hpp"

namespace users {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

std::string_view trimmed(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

/// Code points of valid UTF-8 (the JSON parser has checked it): every byte that does not continue one.
std::size_t code_points(std::string_view text) {
  std::size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

bool is_domain_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
  for (unsigned char c : label) {
    const bool ascii_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ascii_ok && c < 0x80) return false;  // bytes of an internationalized label pass
  }
  return true;
}

}  // namespace

spindle::Result<std::string, Invalid> valid_name(std::string_view name) {
  name = trimmed(name);
  if (name.empty()) return spindle::Err{Invalid{"name", "must not be empty"}};
  if (code_points(name) > kMaxNameCodePoints) return spindle::Err{Invalid{"name", "must be at most 100 characters"}};
  for (unsigned char c : name)
    if (is_control(c)) return spindle::Err{Invalid{"name", "must not contain control characters"}};
  return std::string{name};
}

spindle::Result<std::string, Invalid> valid_email(std::string_view email) {
  email = trimmed(email);
  const auto invalid = [] { return spindle::Err{Invalid{"email", "must be an email address like name@example.com"}}; };
  if (email.empty()) return spindle::Err{Invalid{"email", "must not be empty"}};
  if (email.size() > kMaxEmailBytes) return spindle::Err{Invalid{"email", "must be at most 254 bytes"}};
  const std::size_t at = email.find('@');
  if (at == std::string_view::npos || email.find('@', at + 1) != std::string_view::npos) return invalid();
  const std::string_view local = email.substr(0, at);
  std::string_view domain = email.substr(at + 1);
  if (local.empty() || local.size() > 64) return invalid();
  for (unsigned char c : email)
    if (is_control(c) || is_space(static_cast<char>(c))) return invalid();
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
  for (unsigned char c : last)
    if (c >= '0' && c <= '9') return invalid();  // "a@b.123" is an IP-looking domain, not a name
  return std::string{email};
}

}  // namespace users
