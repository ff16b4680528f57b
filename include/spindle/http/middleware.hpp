#pragma once
// The layers everyone needs, after tower-http: request ids, access logs, timeouts, CORS, compression,
// body and concurrency limits, and turning a handler's exception into a response of one's own.
//
//   auto app = Router<>{}
//                  .route("/users", get(list_users).post(create_user))
//                  .layer(middleware::timeout(10s))
//                  .layer(middleware::concurrency_limit(1000))   // sheds load with 503 beyond 1,000
//                  .layer(middleware::compression())
//                  .layer(middleware::cors({.allowed_origins = {"https://app.example"}}))
//                  .layer(middleware::access_log())
//                  .layer(middleware::request_id());             // outermost: every layer sees the id
//
// Every provided layer keeps a synchronous handler synchronous (no coroutine frame per request);
// timeout leaves such a handler alone, as it cannot wait and so cannot be late.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "spindle/http/layer.hpp"
#include "spindle/http/parser.hpp"
#include "spindle/runtime/time.hpp"

namespace spindle::http::middleware {

/// The id of a request, as an Extension: `Extension<RequestId> id` in a handler.
struct RequestId {
  std::string value;
};

/// Gives every request an id: the client's (or the proxy's) `x-request-id` when it is a sane token (1 to
/// 128 of A-Z a-z 0-9 - _ . :), otherwise a new random one. The id is attached as the RequestId
/// extension, returned in the response's `x-request-id`, and readable anywhere in the handler's task with
/// current_request_id() (a task-local, so code far from the handler can log it).
Layer request_id();

/// The id of the request the running task is handling (set by request_id()); empty outside one.
std::string_view current_request_id() noexcept;

struct AccessLogOptions {
  /// Receives each line, without the newline. Empty: write it to standard error.
  std::function<void(std::string_view line)> sink;
};

/// Logs one structured line per request, as JSON, once the handler has answered:
/// {"time":"2026-11-24T16:05:16.123Z","request_id":"5f1c...","method":"GET","path":"/users/7",
///  "route":"/users/{id}","status":200,"latency_us":412,"bytes":96}
/// ("request_id" when request_id() runs before it, that is, is added after it; "bytes" is null for a
/// streamed body).
Layer access_log(AccessLogOptions options = {});

/// Answers 504 when an asynchronous handler takes longer than `limit`; the handler is cancelled (its
/// coroutines destroyed, its pending operations deregistered).
Layer timeout(Duration limit);

struct CorsOptions {
  /// Origins allowed, exactly as browsers send them ("https://app.example"); empty allows any ("*").
  std::vector<std::string> allowed_origins;
  std::vector<Method> allowed_methods{Method::get, Method::head, Method::post, Method::put, Method::patch, Method::del};
  /// Request headers a browser may send (lower case); "*" allows any it asks for.
  std::vector<std::string> allowed_headers{"content-type", "authorization"};
  /// Response headers scripts may read.
  std::vector<std::string> exposed_headers;
  /// Cookies and credentials: browsers then need the exact origin echoed, never "*".
  bool allow_credentials = false;
  std::chrono::seconds max_age{600};
};

/// Cross-origin resource sharing (the Fetch standard): answers preflight requests (OPTIONS with
/// Access-Control-Request-Method) itself with 204, and adds Access-Control-Allow-Origin and friends to
/// the responses of allowed origins. A request from an origin not allowed gets its response without
/// them, so the browser withholds it from the script.
Layer cors(CorsOptions options = {});

struct CompressionOptions {
  /// Smaller bodies go as they are: below a few hundred bytes the saving is less than the cost.
  std::size_t min_size = 256;
  /// The codings offered, in the server's order of preference when the client likes several equally.
  bool br = true;
  bool gzip = true;
  bool deflate = true;
  /// zlib's 0-9 or brotli's 0-11; -1 for each coding's default (zlib 6, brotli 5: fast enough per request).
  int level = -1;
};

/// Compresses response bodies with the best coding the client accepts (Accept-Encoding, q-values):
/// brotli, gzip or deflate. Only compressible types (text, JSON, JavaScript, XML, SVG), never a body
/// already encoded, a 206 range, or one marked Cache-Control: no-transform; a strong ETag becomes weak
/// (the bytes differ from the identity's). A streamed body is compressed chunk by chunk, each flushed so
/// it reaches the client at once (server-sent events keep working); such a response holds one encoder
/// (about 256 KiB for gzip/deflate) while it streams.
Layer compression(CompressionOptions options = {});

/// Refuses request bodies over `max_bytes` with 413: at once when Content-Length says so, otherwise when
/// the handler's reading goes past it.
Layer body_limit(std::uint64_t max_bytes);

/// Lets at most `max_in_flight` requests into the wrapped handlers at once; beyond that answers 503 with
/// Retry-After at once, instead of queueing them (a queue only turns a spike into timeouts for
/// everyone: the "Black Friday" property).
Layer concurrency_limit(std::size_t max_in_flight, std::chrono::seconds retry_after = std::chrono::seconds{1});

/// Turns an exception thrown by a handler into `render(what)` (default: 500 {"error": "internal server
/// error"}, which tells the client nothing about the server's insides), and logs it. Without this layer
/// the server answers such a request with its own 500.
Layer catch_panic(std::function<Response(std::string_view what)> render = {});

}  // namespace spindle::http::middleware
