#pragma once
// The router's erased handler, shared by router.hpp (plain handlers) and extract.hpp (typed ones).

#include <exception>
#include <functional>
#include <string>
#include <variant>

#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http::detail {

/// What a handler gives back: a response at once (a synchronous handler, no coroutine frame) or a task
/// that produces one.
using Reply = std::variant<Response, Task<Response>>;

/// A handler with its type erased, as the router stores it. `may_suspend` (it returns a Task) lets the
/// server copy the request out of its read buffer before a handler that may wait, so the connection's
/// buffers go back to the pool meanwhile.
struct Handler {
  std::function<Reply(Request&)> call;
  bool may_suspend = false;
  explicit operator bool() const noexcept { return static_cast<bool>(call); }
};

/// What a handler's exception says ("something that is not a std::exception" for other throws), for
/// the log and the test client.
std::string describe_exception(const std::exception_ptr& error);

}  // namespace spindle::http::detail
