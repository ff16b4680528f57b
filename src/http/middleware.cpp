// Layers: Next (the rest of a from_fn chain) and the provided middleware.

#include "spindle/http/middleware.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>

#include "spindle/http/detail/compression.hpp"
#include "spindle/http/detail/field_syntax.hpp"
#include "spindle/json.hpp"
#include "spindle/runtime/detail/log.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/task_local.hpp"

namespace spindle::http {

Task<Response> Next::run(Request request) const {
  // Held here: the chain must outlive the task it returns even if the router is replaced meanwhile.
  const std::shared_ptr<const detail::Handler> inner = inner_;
  detail::Reply reply = inner->call(request);
  if (reply.index() == 0) co_return std::move(std::get<0>(reply));
  Task<Response> pending = std::move(std::get<1>(reply));
  Response response = co_await std::move(pending);
  co_return response;
}

namespace middleware {
namespace {

const TaskLocal<RequestId> current_id;

bool is_sane_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                    c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string new_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (std::size_t half = 0; half < 2; ++half) {
    std::uint64_t bits = random();
    for (std::size_t i = 0; i < 16; ++i, bits >>= 4) id[half * 16 + i] = kHex[bits & 0xF];
  }
  return id;
}

}  // namespace

std::string_view current_request_id() noexcept {
  const RequestId* id = current_id.try_get();
  return id != nullptr ? std::string_view{id->value} : std::string_view{};
}

Layer request_id() {
  return detail::keeping_sync([](std::shared_ptr<const detail::Handler> rest) {
    return [rest](Request& request) -> detail::Reply {
      const std::optional<std::string_view> given = request.header("x-request-id");
      RequestId id{given && is_sane_id(*given) ? std::string{*given} : new_id()};
      request.extensions().insert(id);
      std::string echoed = id.value;
      detail::Reply reply = current_id.with(id, [&] { return rest->call(request); });
      if (reply.index() == 1)
        reply = detail::Reply{std::in_place_index<1>, current_id.scope(std::move(id), std::move(std::get<1>(reply)))};
      return detail::map_reply(std::move(reply), [echoed = std::move(echoed)](Response& response) {
        response.headers.set("x-request-id", echoed);
      });
    };
  });
}

namespace {

struct LogEntry {
  std::string method, path, route, request_id;
  std::chrono::system_clock::time_point wall;
  std::chrono::steady_clock::time_point start;
};

std::string log_line(const LogEntry& entry, Status status, std::optional<std::size_t> bytes) {
  const auto latency =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - entry.start);
  const auto since_epoch = entry.wall.time_since_epoch();
  const std::time_t seconds = std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count();
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char time[64];  // room for any int the format could print, as GCC checks
  std::snprintf(time, sizeof time, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, static_cast<int>(millis));
  std::string line = "{\"time\":\"";
  line += time;
  line += '"';
  if (!entry.request_id.empty()) {
    line += ",\"request_id\":";
    json::write_string(line, entry.request_id);
  }
  line += ",\"method\":";
  json::write_string(line, entry.method);
  line += ",\"path\":";
  json::write_string(line, entry.path);
  line += ",\"route\":";
  json::write_string(line, entry.route);
  line += ",\"status\":" + std::to_string(static_cast<int>(status));
  line += ",\"latency_us\":" + std::to_string(latency.count());
  line += ",\"bytes\":" + (bytes ? std::to_string(*bytes) : std::string{"null"});
  line += '}';
  return line;
}

using Sink = std::function<void(std::string_view)>;

void write_to_stderr(std::string_view line) {
  std::string whole{line};
  whole += '\n';
  // One write per line: lines from several threads do not interleave (stderr is unbuffered).
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, whole.data(), whole.size());
}

Task<Response> log_when_answered(Task<Response> pending, LogEntry entry, std::shared_ptr<const Sink> sink) {
  std::optional<Response> response;
  try {
    Response answered = co_await std::move(pending);
    response = std::move(answered);
  } catch (...) {
    // The server answers a throwing handler with 500: the log says so, and the exception goes on.
    (*sink)(log_line(entry, Status::internal_server_error, std::nullopt));
    throw;
  }
  (*sink)(log_line(entry, response->status, response->body.size()));
  co_return std::move(*response);
}

}  // namespace

Layer access_log(AccessLogOptions options) {
  auto sink = std::make_shared<const Sink>(options.sink ? std::move(options.sink) : Sink{write_to_stderr});
  return detail::keeping_sync([sink](std::shared_ptr<const detail::Handler> rest) {
    return [sink, rest](Request& request) -> detail::Reply {
      const RequestId* id = request.extension<RequestId>();
      LogEntry entry{std::string{request.method_name()},   std::string{request.path()},
                     std::string{request.matched_route()}, id != nullptr ? id->value : std::string{},
                     std::chrono::system_clock::now(),     std::chrono::steady_clock::now()};
      detail::Reply reply;
      try {
        reply = rest->call(request);
      } catch (...) {
        (*sink)(log_line(entry, Status::internal_server_error, std::nullopt));
        throw;
      }
      if (reply.index() == 1)
        return detail::Reply{std::in_place_index<1>,
                             log_when_answered(std::move(std::get<1>(reply)), std::move(entry), sink)};
      const Response& response = std::get<0>(reply);
      (*sink)(log_line(entry, response.status, response.body.size()));
      return reply;
    };
  });
}

namespace {
Task<Response> within(Task<Response> pending, Duration limit) {
  Result<Response, TimedOut> answered = co_await spindle::timeout(limit, std::move(pending));
  if (!answered) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(limit).count();
    co_return Response::error(Status::gateway_timeout, "no answer within " + std::to_string(ms) + " ms");
  }
  co_return std::move(*answered);
}
}  // namespace

Layer timeout(Duration limit) {
  return detail::keeping_sync([limit](std::shared_ptr<const detail::Handler> rest) {
    return [limit, rest](Request& request) -> detail::Reply {
      detail::Reply reply = rest->call(request);
      if (reply.index() == 1)
        return detail::Reply{std::in_place_index<1>, within(std::move(std::get<1>(reply)), limit)};
      return reply;
    };
  });
}

namespace {

std::string join(const std::vector<std::string>& items) {
  std::string joined;
  for (const auto& item : items) {
    if (!joined.empty()) joined += ", ";
    joined += item;
  }
  return joined;
}

struct Cors {
  CorsOptions options;
  std::string methods;  // the Allow-Methods value
  std::string headers;  // the Allow-Headers value (unless "*", which echoes the request's)
  std::string exposed;
  bool any_origin;
  bool any_header;

  explicit Cors(CorsOptions given) : options(std::move(given)) {
    for (Method method : options.allowed_methods) {
      if (!methods.empty()) methods += ", ";
      methods += method_name(method);
    }
    any_header =
        std::find(options.allowed_headers.begin(), options.allowed_headers.end(), "*") != options.allowed_headers.end();
    headers = join(options.allowed_headers);
    exposed = join(options.exposed_headers);
    any_origin = options.allowed_origins.empty();
  }

  bool allows(std::string_view origin) const {
    if (any_origin) return true;
    for (const auto& allowed : options.allowed_origins)
      if (allowed == origin) return true;
    return false;
  }

  // Which origin to name: "*" only when any origin may read without credentials; otherwise the origin
  // itself, and then caches must key on Origin (Vary).
  void allow_origin(Response& response, std::string_view origin) const {
    if (any_origin && !options.allow_credentials) {
      response.headers.set("access-control-allow-origin", "*");
      return;
    }
    response.headers.set("access-control-allow-origin", origin);
    if (options.allow_credentials) response.headers.set("access-control-allow-credentials", "true");
  }

  /// Whether the answer depends on the Origin: then every response must say so (Vary), also those to
  /// requests without one, or a shared cache could give an allowed origin a copy without CORS headers.
  bool varies_by_origin() const { return !any_origin || options.allow_credentials; }

  Response preflight(const Request& request, std::string_view origin) const {
    Response response = Response::empty(Status::no_content);
    response.headers.set("vary", "origin, access-control-request-method, access-control-request-headers");
    if (!allows(origin)) return response;  // no CORS headers: the browser refuses the real request
    allow_origin(response, origin);
    response.headers.set("access-control-allow-methods", methods);
    if (any_header) {
      if (auto asked = request.header("access-control-request-headers"))
        response.headers.set("access-control-allow-headers", *asked);
    } else if (!headers.empty()) {
      response.headers.set("access-control-allow-headers", headers);
    }
    response.headers.set("access-control-max-age", std::to_string(options.max_age.count()));
    return response;
  }
};

}  // namespace

Layer cors(CorsOptions options) {
  auto shared = std::make_shared<const Cors>(std::move(options));
  return detail::keeping_sync([shared](std::shared_ptr<const detail::Handler> rest) {
    return [shared, rest](Request& request) -> detail::Reply {
      const std::optional<std::string_view> origin = request.header("origin");
      if (origin && request.method() == Method::options && request.header("access-control-request-method"))
        return detail::Reply{std::in_place_index<0>, shared->preflight(request, *origin)};
      // Empty: no CORS headers (no Origin, or one not allowed), but maybe Vary.
      std::string from = origin && shared->allows(*origin) ? std::string{*origin} : std::string{};
      return detail::map_reply(rest->call(request), [shared, from = std::move(from)](Response& response) {
        if (shared->varies_by_origin()) response.headers.append("vary", "origin");
        if (from.empty()) return;
        shared->allow_origin(response, from);
        if (!shared->exposed.empty()) response.headers.set("access-control-expose-headers", shared->exposed);
      });
    };
  });
}

namespace {

struct Compression {
  CompressionOptions options;
  std::vector<detail::ContentCoding> offered;
  // A stream holds its encoder while it lasts (server-sent events: hours), and brotli's costs about
  // 1.7 MiB against zlib's 262 KiB (measured; src/http/compression.cpp): streams get gzip or deflate.
  std::vector<detail::ContentCoding> offered_for_streams;

  explicit Compression(CompressionOptions given) : options(given) {
    if (options.br) offered.push_back(detail::ContentCoding::br);
    if (options.gzip) offered.push_back(detail::ContentCoding::gzip);
    if (options.deflate) offered.push_back(detail::ContentCoding::deflate);
    for (auto coding : offered)
      if (coding != detail::ContentCoding::br) offered_for_streams.push_back(coding);
  }

  static bool may_compress(const Response& response) {
    const auto status = static_cast<int>(response.status);
    if (status < 200 || status == 204 || status == 206 || status == 304) return false;
    if (response.body.is_empty() || response.headers.contains("content-encoding")) return false;
    if (response.headers.contains("content-range")) return false;
    if (auto cache = response.headers.get("cache-control");
        cache && cache->find("no-transform") != std::string_view::npos)
      return false;
    const auto type = response.headers.get("content-type");
    return type && detail::is_compressible_content_type(*type);
  }

  void apply(Response& response, const std::optional<std::string>& accept_encoding) const {
    if (!may_compress(response)) return;
    response.headers.append("vary", "accept-encoding");
    if (!response.body.is_stream() && response.body.bytes().size() < options.min_size) return;
    const std::optional<std::string_view> accepted =
        accept_encoding ? std::optional<std::string_view>{*accept_encoding} : std::nullopt;
    const std::optional<detail::ContentCoding> coding =
        detail::negotiate_coding(accepted, response.body.is_stream() ? offered_for_streams : offered);
    if (!coding || *coding == detail::ContentCoding::identity) return;
    if (response.body.is_stream()) {
      auto [sender, body] = Body::channel();
      spawn(pump(std::move(response.body), std::move(sender), detail::Compressor{*coding, options.level})).detach();
      response.body = std::move(body);
    } else {
      response.body = Body{detail::compress(*coding, response.body.bytes(), options.level)};
    }
    response.headers.set("content-encoding", detail::coding_name(*coding));
    if (auto etag = response.headers.get("etag"); etag && !etag->starts_with("W/"))
      response.headers.set("etag", "W/" + std::string{*etag});
  }

  /// Compresses a streamed body as it comes, flushing after each chunk; stops when the client leaves.
  static Task<void> pump(Body source, BodySender sink, detail::Compressor compressor) {
    std::string out;
    for (;;) {
      std::optional<std::string> chunk = co_await source.next_chunk();
      out.clear();
      if (!chunk) {
        compressor.finish(out);
        co_await sink.send(std::move(out));
        co_return;
      }
      compressor.write(*chunk, out);
      compressor.flush(out);
      const bool sent = co_await sink.send(std::move(out));
      if (!sent) co_return;
    }
  }
};

}  // namespace

Layer compression(CompressionOptions options) {
  auto shared = std::make_shared<const Compression>(options);
  return detail::keeping_sync([shared](std::shared_ptr<const detail::Handler> rest) {
    return [shared, rest](Request& request) -> detail::Reply {
      std::optional<std::string> accept_encoding;
      if (auto given = request.header("accept-encoding")) accept_encoding.emplace(*given);
      return detail::map_reply(rest->call(request), [shared, accept = std::move(accept_encoding)](Response& response) {
        shared->apply(response, accept);
      });
    };
  });
}

Layer body_limit(std::uint64_t max_bytes) {
  return detail::keeping_sync([max_bytes](std::shared_ptr<const detail::Handler> rest) {
    return [max_bytes, rest](Request& request) -> detail::Reply {
      if (auto length = request.body().content_length(); length && *length > max_bytes) {
        Response refused = Response::error(Status::payload_too_large,
                                           "request body larger than " + std::to_string(max_bytes) + " bytes");
        refused.headers.set("connection", "close");  // rather than read a body nobody wants
        return detail::Reply{std::in_place_index<0>, std::move(refused)};
      }
      request.body().limit(max_bytes);
      return rest->call(request);
    };
  });
}

namespace {
/// A place among the requests in flight, given back when the response is ready or the handler is gone.
class Permit {
 public:
  explicit Permit(std::shared_ptr<std::atomic<std::size_t>> in_flight) noexcept : in_flight_(std::move(in_flight)) {}
  Permit(Permit&&) noexcept = default;
  Permit& operator=(Permit&&) = delete;
  ~Permit() {
    if (in_flight_) in_flight_->fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<std::atomic<std::size_t>> in_flight_;
};
}  // namespace

Layer concurrency_limit(std::size_t max_in_flight, std::chrono::seconds retry_after) {
  if (max_in_flight == 0) throw std::invalid_argument("concurrency_limit: the limit must be at least 1");
  auto in_flight = std::make_shared<std::atomic<std::size_t>>(0);
  return detail::keeping_sync([in_flight, max_in_flight, retry_after](std::shared_ptr<const detail::Handler> rest) {
    return [in_flight, max_in_flight, retry_after, rest](Request& request) -> detail::Reply {
      if (in_flight->fetch_add(1, std::memory_order_relaxed) >= max_in_flight) {
        in_flight->fetch_sub(1, std::memory_order_relaxed);
        Response shed = Response::error(Status::service_unavailable, "over capacity, try again later");
        shed.headers.set("retry-after", std::to_string(retry_after.count()));
        return detail::Reply{std::in_place_index<0>, std::move(shed)};
      }
      Permit permit{in_flight};
      return detail::map_reply(rest->call(request), [permit = std::move(permit)](Response&) {});
    };
  });
}

namespace {

using Render = std::function<Response(std::string_view)>;

Response render_panic(const Render& render, const std::exception_ptr& error) {
  const std::string what = detail::describe_exception(error);
  spindle::detail::log_warning("spindle: a handler threw: %s", what.c_str());
  return render(what);
}

Task<Response> catching(Task<Response> pending, std::shared_ptr<const Render> render) {
  std::exception_ptr error;
  try {
    Response answered = co_await std::move(pending);
    co_return answered;
  } catch (...) {
    error = std::current_exception();
  }
  co_return render_panic(*render, error);
}

}  // namespace

Layer catch_panic(std::function<Response(std::string_view what)> render) {
  if (!render)
    render = [](std::string_view) { return Response::error(Status::internal_server_error, "internal server error"); };
  auto shared = std::make_shared<const Render>(std::move(render));
  return detail::keeping_sync([shared](std::shared_ptr<const detail::Handler> rest) {
    return [shared, rest](Request& request) -> detail::Reply {
      try {
        detail::Reply reply = rest->call(request);
        if (reply.index() == 1)
          return detail::Reply{std::in_place_index<1>, catching(std::move(std::get<1>(reply)), shared)};
        return reply;
      } catch (...) {
        return detail::Reply{std::in_place_index<0>, render_panic(*shared, std::current_exception())};
      }
    };
  });
}

}  // namespace middleware
}  // namespace spindle::http
