#include "app.hpp"

#include <spindle/spindle.hpp>
#include <spindle/ws.hpp>

#include <atomic>
#include <chrono>
#include <string_view>

#include "log.hpp"
#include "web_assets.hpp"

namespace users {
namespace {

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;

struct PageQuery {
  std::optional<std::int64_t> limit;
  std::optional<std::int64_t> offset;
};
BOOST_DESCRIBE_STRUCT(PageQuery, (), (limit, offset))

AppError invalid(Invalid why) {
  return AppError{Status::unprocessable_entity, std::move(why.message), std::move(why.field)};
}

AppError not_found(std::int64_t id) { return AppError{Status::not_found, "no user " + std::to_string(id), ""}; }

/// Logs that the database is unavailable once a second at most: during an outage every request fails
/// the same way, and a line for each would flood the log (and stall the service on a full stderr pipe).
void log_unavailable(const db::Error& error) {
  static std::atomic<std::int64_t> next_line_ns{0};
  static std::atomic<std::uint64_t> suppressed{0};
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  std::int64_t due = next_line_ns.load(std::memory_order_relaxed);
  if (now < due || !next_line_ns.compare_exchange_strong(due, now + 1'000'000'000, std::memory_order_relaxed)) {
    suppressed.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const std::uint64_t skipped = suppressed.exchange(0, std::memory_order_relaxed);
  log(LogLevel::warn, "database unavailable: " + error.to_string() +
                          (skipped > 0 ? " (and " + std::to_string(skipped) + " times since the last line)" : ""));
}

/// A database failure as the client should see it: its own mistake (409), or ours and transient (503,
/// retry), or ours and not (500, logged with the detail the client does not get).
AppError from_db(const db::Error& error) {
  switch (error.kind) {
    case db::Error::Kind::unique_violation:
      return AppError{Status::conflict, "a user with this email already exists", "email"};
    case db::Error::Kind::connection:
    case db::Error::Kind::timeout:
    case db::Error::Kind::pool_timeout:
    case db::Error::Kind::busy:
      log_unavailable(error);
      return AppError{Status::service_unavailable, "the database is unavailable; try again later", ""};
    default:
      log(LogLevel::error, "database error: " + error.to_string());
      return AppError{Status::internal_server_error, "internal error", ""};
  }
}

using Created = std::tuple<Status, HeaderMap, Json<User>>;

Task<Result<Created, AppError>> create_user(State<App> app, Json<UserInput> input) {
  Result<std::string, Invalid> name = valid_name(input->name);
  if (!name) co_return Err{invalid(std::move(name).error())};
  Result<std::string, Invalid> email = valid_email(input->email);
  if (!email) co_return Err{invalid(std::move(email).error())};
  auto creating = app->store->create(std::move(*name), std::move(*email));
  Result<User, db::Error> user = co_await std::move(creating);
  if (!user) co_return Err{from_db(user.error())};
  HeaderMap headers;
  headers.set("location", "/users/" + std::to_string(user->id));
  co_return Created{Status::created, std::move(headers), Json{std::move(*user)}};
}

Task<Result<Json<User>, AppError>> show_user(State<App> app, Path<std::int64_t> id) {
  auto finding = app->store->find(*id);
  Result<std::optional<User>, db::Error> user = co_await std::move(finding);
  if (!user) co_return Err{from_db(user.error())};
  if (!*user) co_return Err{not_found(*id)};
  co_return Json{std::move(**user)};
}

Task<Result<Json<UserPage>, AppError>> list_users(State<App> app, Query<PageQuery> query) {
  const std::int64_t limit = query->limit.value_or(50);
  const std::int64_t offset = query->offset.value_or(0);
  if (limit < 1 || limit > 500) co_return Err{invalid(Invalid{"limit", "must be between 1 and 500"})};
  if (offset < 0) co_return Err{invalid(Invalid{"offset", "must not be negative"})};
  auto listing = app->store->list(limit, offset);
  Result<UserPage, db::Error> page = co_await std::move(listing);
  if (!page) co_return Err{from_db(page.error())};
  co_return Json{std::move(*page)};
}

/// PUT and PATCH: the members given, validated, then one UPDATE.
Task<Result<Json<User>, AppError>> update_user(App& app, std::int64_t id, std::optional<std::string> name,
                                               std::optional<std::string> email) {
  if (name) {
    Result<std::string, Invalid> valid = valid_name(*name);
    if (!valid) co_return Err{invalid(std::move(valid).error())};
    name = std::move(*valid);
  }
  if (email) {
    Result<std::string, Invalid> valid = valid_email(*email);
    if (!valid) co_return Err{invalid(std::move(valid).error())};
    email = std::move(*valid);
  }
  // Nothing to change ({} to PATCH): no write, and no event.
  Task<Result<std::optional<User>, db::Error>> updating =
      !name && !email ? app.store->find(id) : app.store->update(id, std::move(name), std::move(email));
  Result<std::optional<User>, db::Error> user = co_await std::move(updating);
  if (!user) co_return Err{from_db(user.error())};
  if (!*user) co_return Err{not_found(id)};
  co_return Json{std::move(**user)};
}

Task<Result<Json<User>, AppError>> replace_user(State<App> app, Path<std::int64_t> id, Json<UserInput> input) {
  return update_user(*app, *id, std::move(input->name), std::move(input->email));
}

Task<Result<Json<User>, AppError>> patch_user(State<App> app, Path<std::int64_t> id, Json<UserPatch> patch) {
  return update_user(*app, *id, std::move(patch->name), std::move(patch->email));
}

Task<Result<Status, AppError>> delete_user(State<App> app, Path<std::int64_t> id) {
  auto removing = app->store->remove(*id);
  Result<std::optional<User>, db::Error> user = co_await std::move(removing);
  if (!user) co_return Err{from_db(user.error())};
  if (!*user) co_return Err{not_found(*id)};
  co_return Status::no_content;
}

Task<Response> readiness(State<App> app) {
  // timeout()'s awaiter is awaited where it is made (it cannot be moved).
  Result<Result<void, db::Error>, TimedOut> answer = co_await spindle::timeout(2s, app->store->ping());
  if (!answer) co_return Response::error(Status::service_unavailable, "the database did not answer within 2 s");
  if (!*answer) {
    log(LogLevel::warn, "not ready: " + answer->error().to_string());  // the detail is for the operator
    co_return Response::error(Status::service_unavailable, "the database is unreachable");
  }
  co_return Response::json(R"({"status":"ready"})");
}

Response metrics(State<App> app) {
  std::string text;
  app->http_metrics->write_prometheus(text);
  app->store->write_metrics(text);
  if (app->process_metrics) app->process_metrics(text);
  Response response = Response::text(std::move(text));
  response.headers.set("content-type", prometheus::content_type);
  return response;
}

Sse event_stream(State<App> app) { return app->events->feed().event_stream(15s); }

Response event_socket(State<App> app, ws::WebSocketUpgrade upgrade) {
  ws::Config config;
  config.max_message_size = 4 * 1024;  // clients only listen
  config.ping_interval = 30s;          // finds clients that vanished without a close
  return upgrade.config(config).on_upgrade([&feed = app->events->feed()](ws::WebSocket socket) -> Task<void> {
    socket.join(feed);  // every change goes out on the socket while it is open
    for (;;) {
      auto message = co_await socket.recv();
      if (!message || message->is_close()) co_return;
    }
  });
}

Response asset(const WebAsset& file) {
  Response response{Status::ok};
  response.headers.set("content-type", file.content_type);
  response.headers.set("cache-control", "no-cache");
  response.body = Body{std::string{file.body}};
  return response;
}

}  // namespace

Router<> routes(App app) {
  Router<App> api;
  api.route("/users", get(list_users).post(create_user))
      .route("/users/{id}", get(show_user).put(replace_user).patch(patch_user).del(delete_user))
      .route("/ws/events", get(event_socket))
      .route("/events", get(event_stream))
      .route("/healthz", get([] { return Response::json(R"({"status":"ok"})"); }))
      .route("/readyz", get(readiness))
      .route("/metrics", get(metrics));
  for (const WebAsset& file : web_assets()) api.route(file.path, get([&file] { return asset(file); }));

  const bool access_log = app.access_log;
  const Duration request_timeout = app.request_timeout;
  std::shared_ptr<HttpMetrics> http_metrics = app.http_metrics;
  Router<> router = std::move(api).with_state(std::move(app));
  router.layer(middleware::timeout(request_timeout)).layer(middleware::metrics(std::move(http_metrics)));
  if (access_log) router.layer(middleware::access_log());
  router.layer(middleware::request_id());
  return router;
}

}  // namespace users
