#pragma once
// What in-process HTTP tests (TestClient) share: running a coroutine test body, and one-field header maps.

#include <string_view>

#include "spindle/http/header_map.hpp"
#include "spindle/runtime/runtime.hpp"

namespace spindle_test {

/// Runs `body()` (a coroutine lambda returning Task<void>) on a fresh current_thread runtime.
template <class Body>
void run(Body body) {
  spindle::Runtime runtime;
  runtime.block_on(body());
}

/// A header map with one field: `client.send(Method::get, "/", with("x-api-key", "k"))`.
inline spindle::http::HeaderMap with(std::string_view name, std::string_view value) {
  spindle::http::HeaderMap headers;
  headers.set(name, value);
  return headers;
}

}  // namespace spindle_test
