// The users service (examples/users) end to end: the users-server binary started as a child process,
// exercised over real sockets, on SQLite and on a real PostgreSQL 15 that the suite starts itself. Every
// endpoint and every error of the service's contract (examples/users/app.hpp), the event feeds, the
// probes and metrics, the configuration's failures, and the graceful stop.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"
#include "support/example_server.hpp"
#include "support/http_harness.hpp"
#include "support/postgres_server.hpp"
#include "support/ws_raw.hpp"

namespace {

using namespace std::chrono_literals;
using spindle_test::ChildOptions;
using spindle_test::ChildProcess;
using spindle_test::RawConnection;
using spindle_test::RawResponse;

/// A running users-server.
struct Service : spindle_test::ExampleServer {
  Service(const std::string& database_url, std::vector<std::string> extra = {}, const ChildOptions& options = {})
      : ExampleServer(SPINDLE_USERS_SERVER_BINARY, with_database(database_url, std::move(extra)), options) {}
  ~Service() {
    if (!stopped) stop();
  }
  RawResponse send(const std::string& request) {
    auto response = spindle_test::exchange(port, request);
    if (!response) throw std::runtime_error("no response to " + request.substr(0, request.find('\r')));
    return *response;
  }

  static std::vector<std::string> with_database(const std::string& url, std::vector<std::string> extra) {
    std::vector<std::string> argv = {"--database-url", url, "--workers", "2", "--log-level", "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
};

std::string request(const std::string& method, const std::string& target, const std::string& body = "",
                    const std::string& content_type = "application/json") {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH")
    text += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  return text + "\r\n" + body;
}

boost::json::object json_object(const RawResponse& response) {
  boost::json::value value = boost::json::parse(response.body);
  if (!value.is_object()) throw std::runtime_error("not a JSON object: " + response.body);
  return value.as_object();
}

/// The error body of a refusal: {"error": non-empty text} plus "field" when `field` is not empty.
void expect_error(const RawResponse& response, int status, const std::string& field = "") {
  EXPECT_EQ(response.status, status) << response.body;
  EXPECT_EQ(response.header("content-type"), "application/json");
  const boost::json::object body = json_object(response);
  ASSERT_TRUE(body.contains("error")) << response.body;
  EXPECT_FALSE(body.at("error").as_string().empty());
  const std::string given = body.contains("field") ? std::string{body.at("field").as_string()} : "(none)";
  EXPECT_EQ(given, field.empty() ? "(none)" : field) << response.body;
}

std::string user_body(const std::string& name, const std::string& email) {
  return boost::json::serialize(boost::json::object{{"name", name}, {"email", email}});
}

const std::regex kRfc3339Micros{R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)"};

/// One server-sent event's data lines from a raw connection, waiting up to the socket's timeout.
class SseReader {
 public:
  explicit SseReader(int port) : connection_(port) {
    connection_.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
    // The head arrives at once; events follow in chunks.
    while (buffer_.find("\r\n\r\n") == std::string::npos)
      if (!fill()) throw std::runtime_error("no SSE head");
    head_ = buffer_.substr(0, buffer_.find("\r\n\r\n"));
    buffer_.erase(0, buffer_.find("\r\n\r\n") + 4);
  }
  const std::string& head() const { return head_; }
  void set_timeout(std::chrono::milliseconds limit) { connection_.set_receive_timeout(limit); }
  /// The next event's data ("data: X\n\n" inside the chunked framing); nullopt on timeout or close.
  std::optional<std::string> next_data() {
    for (;;) {
      if (const std::size_t start = buffer_.find("data: "); start != std::string::npos) {
        if (const std::size_t end = buffer_.find("\n\n", start); end != std::string::npos) {
          std::string data = buffer_.substr(start + 6, end - start - 6);
          buffer_.erase(0, end + 2);
          return data;
        }
      }
      if (!fill()) return std::nullopt;
    }
  }

 private:
  bool fill() {
    char chunk[4096];
    const ssize_t n = ::recv(connection_.fd(), chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  RawConnection connection_;
  std::string head_;
  std::string buffer_;
};

struct Sqlite {};
struct Postgres {};

template <class Backend>
class UsersService : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if constexpr (std::is_same_v<Backend, Postgres>)
      server_ = new spindle::test::PostgresServer(spindle::test::PostgresServer::start());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    static int databases = 0;
    const std::string name = "users_" + std::to_string(++databases);
    if constexpr (std::is_same_v<Backend, Postgres>) {
      server_->create_database(name);
      url_ = "postgres://postgres@127.0.0.1:" + std::to_string(server_->port()) + "/" + name;
      database_ = name;
    } else {
      char pattern[] = "/tmp/spindle-users-XXXXXX";
      directory_ = ::mkdtemp(pattern);
      url_ = "sqlite://" + directory_ + "/users.db";  // sqlite:///tmp/...: an absolute path
    }
  }
  void TearDown() override {
    if (!directory_.empty()) std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<Service> start(std::vector<std::string> extra = {}) {
    return std::make_unique<Service>(url_, std::move(extra));
  }
  /// Creates a user through the API; its JSON.
  boost::json::object create(Service& service, const std::string& name, const std::string& email) {
    RawResponse created = service.send(request("POST", "/users", user_body(name, email)));
    EXPECT_EQ(created.status, 201) << created.body;
    return json_object(created);
  }

  static spindle::test::PostgresServer* server_;
  std::string url_;
  std::string database_;
  std::string directory_;
};
template <class Backend>
spindle::test::PostgresServer* UsersService<Backend>::server_ = nullptr;

using Backends = ::testing::Types<Sqlite, Postgres>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, Sqlite> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(UsersService, Backends, BackendNames);

TYPED_TEST(UsersService, CreateAnswers201WithLocationAndTheStoredUser) {
  auto service = this->start();
  const auto before = std::chrono::system_clock::now();
  RawResponse created = service->send(request("POST", "/users", user_body("  Ada Lovelace \t", "ada@example.com")));
  ASSERT_EQ(created.status, 201) << created.body;
  const boost::json::object user = json_object(created);
  ASSERT_TRUE(user.at("id").is_int64());
  const std::int64_t id = user.at("id").as_int64();
  EXPECT_GT(id, 0);
  EXPECT_EQ(created.header("location"), "/users/" + std::to_string(id));
  EXPECT_EQ(user.at("name").as_string(), "Ada Lovelace");  // trimmed
  EXPECT_EQ(user.at("email").as_string(), "ada@example.com");
  const std::string created_at{user.at("created_at").as_string()};
  EXPECT_TRUE(std::regex_match(created_at, kRfc3339Micros)) << created_at;
  EXPECT_EQ(user.size(), 4u) << created.body;
  // The instant is now, in UTC.
  std::tm parts{};
  ASSERT_NE(::strptime(created_at.c_str(), "%Y-%m-%dT%H:%M:%S", &parts), nullptr);
  const auto stored = std::chrono::system_clock::from_time_t(::timegm(&parts));
  EXPECT_LE(std::chrono::abs(stored - before), 5s) << created_at;

  RawResponse read = service->send(request("GET", "/users/" + std::to_string(id)));
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(read.body, created.body);  // the same text, created_at included
}

TYPED_TEST(UsersService, CreateValidatesNameEmailAndBody) {
  auto service = this->start();
  const auto post = [&](const std::string& body, const std::string& type = "application/json") {
    return service->send(request("POST", "/users", body, type));
  };
  expect_error(post(user_body("   ", "a@example.com")), 422, "name");
  expect_error(post(user_body("", "a@example.com")), 422, "name");
  // 100 code points pass and 101 do not, counted as characters, not bytes ("é" is 2 bytes).
  std::string hundred;
  for (int i = 0; i < 100; ++i) hundred += "\xC3\xA9";
  EXPECT_EQ(post(user_body(hundred, "long@example.com")).status, 201);
  expect_error(post(user_body(hundred + "\xC3\xA9", "longer@example.com")), 422, "name");
  expect_error(post(user_body("Tab\tInside", "ctl@example.com")), 422, "name");
  expect_error(post(user_body("C1 \xC2\x80 control", "c1@example.com")), 422, "name");
  expect_error(post(user_body("\xC2\xA0\xE3\x80\x80", "nbsp@example.com")), 422, "name");  // Unicode spaces only
  // Trimmed of Unicode white space too.
  EXPECT_EQ(json_object(post(user_body("\xC2\xA0Zoë\xE2\x80\x83", "zoe@example.com"))).at("name").as_string(),
            "Zo\xC3\xAB");
  EXPECT_EQ(post(user_body("Punycode", "ivan@example.xn--p1ai")).status, 201);
  for (const char* email : {"plain", "a@b", "@example.com", "a@@example.com", "a b@example.com", "a@-x.com",
                            "a@example.c", "a@example..com", "a@.example.com", "a@example.123", ""}) {
    SCOPED_TRACE(email);
    expect_error(post(user_body("Someone", email)), 422, "email");
  }
  expect_error(post(R"({"email":"x@example.com"})"), 422, "name");
  expect_error(post(R"({"name":"X"})"), 422, "email");
  expect_error(post(R"({"name":5,"email":"x@example.com"})"), 422, "name");
  expect_error(post(R"([{"name":"X","email":"x@example.com"}])"), 422);  // not an object
  expect_error(post(R"("a string")"), 422);
  expect_error(post(R"({"name":"X","email":)"), 400);  // malformed
  expect_error(post(R"({"name":"X","email":"x@example.com"})", "text/plain"), 415, "content-type");
  expect_error(post(""), 400);

  // Emails are unique whatever the case of their ASCII letters; the taken address is refused with 409.
  EXPECT_EQ(post(user_body("Grace", "grace@example.com")).status, 201);
  expect_error(post(user_body("Grace again", "Grace@Example.com")), 409, "email");
  // Beyond ASCII, letters are compared as they are, the same on both databases whatever their locale.
  EXPECT_EQ(post(user_body("Eva", "\xC3\xA9va@example.com")).status, 201);
  EXPECT_EQ(post(user_body("EVA", "\xC3\x89VA@example.com")).status, 201);
  // Nothing refused was stored.
  const boost::json::object page = json_object(service->send(request("GET", "/users")));
  EXPECT_EQ(page.at("total").as_int64(), 6);
}

TYPED_TEST(UsersService, GetAndListWithPaging) {
  auto service = this->start();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(this->create(*service, "User " + std::to_string(i), "u" + std::to_string(i) + "@example.com")
                      .at("id")
                      .as_int64());
  expect_error(service->send(request("GET", "/users/999999")), 404);
  expect_error(service->send(request("GET", "/users/abc")), 400, "id");
  expect_error(service->send(request("GET", "/users/99999999999999999999999")), 400, "id");

  const boost::json::object first = json_object(service->send(request("GET", "/users")));
  EXPECT_EQ(first.at("total").as_int64(), 5);
  EXPECT_EQ(first.at("limit").as_int64(), 50);
  EXPECT_EQ(first.at("offset").as_int64(), 0);
  ASSERT_EQ(first.at("users").as_array().size(), 5u);
  for (std::size_t i = 0; i < ids.size(); ++i)  // ordered by id
    EXPECT_EQ(first.at("users").as_array()[i].as_object().at("id").as_int64(), ids[i]);

  const boost::json::object middle = json_object(service->send(request("GET", "/users?limit=2&offset=2")));
  EXPECT_EQ(middle.at("total").as_int64(), 5);
  EXPECT_EQ(middle.at("limit").as_int64(), 2);
  EXPECT_EQ(middle.at("offset").as_int64(), 2);
  ASSERT_EQ(middle.at("users").as_array().size(), 2u);
  EXPECT_EQ(middle.at("users").as_array()[0].as_object().at("id").as_int64(), ids[2]);
  const boost::json::object beyond = json_object(service->send(request("GET", "/users?offset=10")));
  EXPECT_TRUE(beyond.at("users").as_array().empty());
  EXPECT_EQ(json_object(service->send(request("GET", "/users?limit=500"))).at("limit").as_int64(), 500);

  for (const char* query : {"limit=0", "limit=501", "limit=-1", "limit=abc", "limit=1.5"}) {
    SCOPED_TRACE(query);
    expect_error(service->send(request("GET", std::string{"/users?"} + query)), 422, "limit");
  }
  for (const char* query : {"offset=-1", "offset=x"}) {
    SCOPED_TRACE(query);
    expect_error(service->send(request("GET", std::string{"/users?"} + query)), 422, "offset");
  }
}

TYPED_TEST(UsersService, PutReplacesAndPatchChangesWhatIsGiven) {
  auto service = this->start();
  const boost::json::object ada = this->create(*service, "Ada", "ada@example.com");
  this->create(*service, "Grace", "grace@example.com");
  const std::string path = "/users/" + std::to_string(ada.at("id").as_int64());

  RawResponse replaced = service->send(request("PUT", path, user_body(" Ada L. ", "ada.l@example.com")));
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  boost::json::object user = json_object(replaced);
  EXPECT_EQ(user.at("name").as_string(), "Ada L.");
  EXPECT_EQ(user.at("email").as_string(), "ada.l@example.com");
  EXPECT_EQ(user.at("created_at"), ada.at("created_at"));
  EXPECT_EQ(user.at("id"), ada.at("id"));
  expect_error(service->send(request("PUT", path, R"({"name":"Only a name"})")), 422, "email");
  expect_error(service->send(request("PUT", path, user_body("X", "bad"))), 422, "email");
  expect_error(service->send(request("PUT", path, user_body("X", "grace@example.com"))), 409, "email");
  expect_error(service->send(request("PUT", "/users/999999", user_body("X", "x@example.com"))), 404);
  expect_error(service->send(request("PUT", path, "{", "application/json")), 400);
  expect_error(service->send(request("PUT", path, user_body("X", "x@example.com"), "text/plain")), 415, "content-type");

  RawResponse patched = service->send(request("PATCH", path, R"({"name":"Countess"})"));
  ASSERT_EQ(patched.status, 200) << patched.body;
  user = json_object(patched);
  EXPECT_EQ(user.at("name").as_string(), "Countess");
  EXPECT_EQ(user.at("email").as_string(), "ada.l@example.com");  // kept
  user = json_object(service->send(request("PATCH", path, R"({"email":"countess@example.com"})")));
  EXPECT_EQ(user.at("name").as_string(), "Countess");
  EXPECT_EQ(user.at("email").as_string(), "countess@example.com");
  EXPECT_EQ(service->send(request("PATCH", path, "{}")).status, 200);
  expect_error(service->send(request("PATCH", path, R"({"name":""})")), 422, "name");
  expect_error(service->send(request("PATCH", path, R"({"email":"nope"})")), 422, "email");
  expect_error(service->send(request("PATCH", path, R"({"email":"GRACE@example.com"})")), 409, "email");
  expect_error(service->send(request("PATCH", path, R"({"name":7})")), 422, "name");
  expect_error(service->send(request("PATCH", path, "[]")), 422);
  expect_error(service->send(request("PATCH", "/users/999999", R"({"name":"X"})")), 404);
  expect_error(service->send(request("PATCH", "/users/x", R"({"name":"X"})")), 400, "id");
  // What GET says afterwards is the last accepted state.
  user = json_object(service->send(request("GET", path)));
  EXPECT_EQ(user.at("name").as_string(), "Countess");
  EXPECT_EQ(user.at("email").as_string(), "countess@example.com");
}

TYPED_TEST(UsersService, DeleteAnswers204Then404) {
  auto service = this->start();
  const std::string path =
      "/users/" + std::to_string(this->create(*service, "Ada", "ada@example.com").at("id").as_int64());
  RawResponse deleted = service->send(request("DELETE", path));
  EXPECT_EQ(deleted.status, 204);
  EXPECT_TRUE(deleted.body.empty());
  expect_error(service->send(request("DELETE", path)), 404);
  expect_error(service->send(request("GET", path)), 404);
  expect_error(service->send(request("DELETE", "/users/abc")), 400, "id");
  // The address is free again.
  EXPECT_EQ(service->send(request("POST", "/users", user_body("Ada", "ada@example.com"))).status, 201);
}

TYPED_TEST(UsersService, UnknownRoutesAndWrongMethodsAnswerJson) {
  auto service = this->start();
  expect_error(service->send(request("GET", "/nothing/here")), 404);
  RawResponse wrong = service->send(request("DELETE", "/users"));
  expect_error(wrong, 405);
  EXPECT_EQ(wrong.header("allow"), "GET, HEAD, POST");
  RawResponse wrong_on_one = service->send(request("POST", "/users/1", user_body("X", "x@example.com")));
  expect_error(wrong_on_one, 405);
  EXPECT_EQ(wrong_on_one.header("allow"), "GET, HEAD, PUT, DELETE, PATCH");
}

TYPED_TEST(UsersService, EveryChangeReachesTheWebSocketAndTheEventStream) {
  auto service = this->start();
  spindle_test::RawWebSocket socket{service->port, "/ws/events"};
  SseReader stream{service->port};
  EXPECT_NE(stream.head().find("content-type: text/event-stream"), std::string::npos) << stream.head();
  spindle_test::await_receiving(socket);  // the event stream subscribed before its head was sent

  const boost::json::object ada = this->create(*service, "Ada", "ada@example.com");
  const std::string path = "/users/" + std::to_string(ada.at("id").as_int64());
  const boost::json::object renamed = json_object(service->send(request("PATCH", path, R"({"name":"Countess"})")));
  ASSERT_EQ(service->send(request("DELETE", path)).status, 204);
  // A refused change is not an event.
  ASSERT_EQ(service->send(request("POST", "/users", user_body("", "x@example.com"))).status, 422);

  const std::vector<std::pair<std::string, boost::json::object>> expected = {
      {"user_created", ada}, {"user_updated", renamed}, {"user_deleted", renamed}};
  for (const auto& [type, user] : expected) {
    SCOPED_TRACE(type);
    auto frame = socket.read_data_or_close();
    ASSERT_TRUE(frame);
    ASSERT_EQ(frame->opcode, spindle::ws::Opcode::text);
    const boost::json::value event = boost::json::parse(frame->payload);
    EXPECT_EQ(event.as_object().at("type").as_string(), type);
    EXPECT_EQ(event.as_object().at("user").as_object(), user);
    EXPECT_EQ(event.as_object().size(), 2u);
    std::optional<std::string> data = stream.next_data();
    ASSERT_TRUE(data);
    EXPECT_EQ(*data, frame->payload);
  }
  // Nothing more: neither the refused request nor an empty PATCH (no change) was announced. A Pong
  // answers after anything queued before it, so it must come next; the stream must stay quiet.
  ASSERT_EQ(
      service
          ->send(request("PATCH",
                         "/users/" + std::to_string(this->create(*service, "Bo", "bo@example.com").at("id").as_int64()),
                         "{}"))
          .status,
      200);
  auto created = socket.read_data_or_close();
  ASSERT_TRUE(created);
  EXPECT_NE(created->payload.find("\"user_created\""), std::string::npos);
  ASSERT_TRUE(stream.next_data());
  socket.send_frame(spindle::ws::Opcode::ping, "last");
  auto pong = socket.read_frame();
  ASSERT_TRUE(pong);
  EXPECT_EQ(pong->opcode, spindle::ws::Opcode::pong) << pong->payload;
  stream.set_timeout(300ms);
  EXPECT_FALSE(stream.next_data());
}

TYPED_TEST(UsersService, ProbesAndMetrics) {
  auto service = this->start();
  RawResponse alive = service->send(request("GET", "/healthz"));
  EXPECT_EQ(alive.status, 200);
  EXPECT_EQ(alive.body, R"({"status":"ok"})");
  RawResponse ready = service->send(request("GET", "/readyz"));
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.body, R"({"status":"ready"})");
  this->create(*service, "Ada", "ada@example.com");
  service->send(request("GET", "/users/abc"));
  service->send(request("GET", "/no/such/route"));
  spindle_test::RawWebSocket socket{service->port, "/ws/events"};

  RawResponse metrics = service->send(request("GET", "/metrics"));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(metrics.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string& text = metrics.body;
  const auto has = [&](const std::string& line) {
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "\n" << text;
  };
  has("spindle_http_requests_total{method=\"POST\",route=\"/users\",status=\"201\"} 1\n");
  has("spindle_http_requests_total{method=\"GET\",route=\"/users/{id}\",status=\"400\"} 1\n");
  has("spindle_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1\n");
  has("spindle_http_request_duration_seconds_bucket{method=\"POST\",route=\"/users\",le=\"+Inf\"} 1\n");
  has("spindle_http_request_duration_seconds_count{method=\"POST\",route=\"/users\"} 1\n");
  has("spindle_http_requests_in_flight 1\n");  // this request
  // The socket and this request's connection at least.
  const std::smatch open = [&] {
    std::smatch m;
    std::regex_search(text, m, std::regex{R"(\nspindle_open_connections (\d+)\n)"});
    return m;
  }();
  ASSERT_FALSE(open.empty()) << text;
  EXPECT_GE(std::stoi(open[1]), 2);
  has("\nspindle_live_tasks ");
  if constexpr (std::is_same_v<TypeParam, Postgres>) {
    has("\nspindle_db_pool_connections ");
    has("\nspindle_db_pool_in_flight ");
  } else {
    has("\nspindle_db_writes_total ");
  }
  // Every sample line is "name{labels} value" or "name value".
  std::istringstream lines{text};
  const std::regex sample{R"([a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-z_]+="([^"\\]|\\.)*",?)*\})? [-+0-9.eInfa]+)"};
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line[0] != '#') {
      EXPECT_TRUE(std::regex_match(line, sample)) << line;
    }
}

TYPED_TEST(UsersService, ThePageIsServedFromTheBinary) {
  // From another working directory: the page must not depend on it.
  ChildOptions elsewhere;
  elsewhere.working_directory = "/";
  Service service{this->url_, {}, elsewhere};
  RawResponse page = service.send(request("GET", "/"));
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("app.js"), std::string::npos);
  RawResponse script = service.send(request("GET", "/app.js"));
  EXPECT_EQ(script.status, 200);
  EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
  EXPECT_NE(script.body.find("/ws/events"), std::string::npos);
  RawResponse style = service.send(request("GET", "/style.css"));
  EXPECT_EQ(style.status, 200);
  EXPECT_EQ(style.header("content-type"), "text/css; charset=utf-8");
}

TYPED_TEST(UsersService, SigtermClosesSocketsWith1001AndExitsZero) {
  auto service = this->start();
  spindle_test::RawWebSocket socket{service->port, "/ws/events"};
  SseReader stream{service->port};
  spindle_test::await_receiving(socket);
  this->create(*service, "Ada", "ada@example.com");
  ASSERT_TRUE(socket.read_data_or_close());
  ASSERT_TRUE(stream.next_data());
  service->stop();  // exit status 0, checked there
  auto goodbye = socket.read_data_or_close();
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->opcode, spindle::ws::Opcode::close);
  EXPECT_EQ(goodbye->close_code(), 1001);
  EXPECT_FALSE(stream.next_data());  // the stream ended
}

// ---- PostgreSQL only: what needs a second client of the database ----

class UsersServicePostgres : public UsersService<Postgres> {};

TEST_F(UsersServicePostgres, SigtermLetsARequestWaitingOnTheDatabaseFinish) {
  auto service = start();
  create(*service, "Ada", "ada@example.com");  // the schema exists
  // Polls a query of psql's until it answers "1" (10 s at most).
  const auto becomes_one = [&](const std::string& sql) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (server_->psql(sql, database_) == "1") return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  };
  // Another client holds the table; the service's POST waits for it, and SIGTERM arrives meanwhile.
  std::thread locker(
      [&] { server_->psql("BEGIN; LOCK TABLE users IN EXCLUSIVE MODE; SELECT pg_sleep(3); COMMIT;", database_); });
  const bool locked = becomes_one(
      "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
      "WHERE c.relname = 'users' AND l.mode = 'ExclusiveLock' AND l.granted");
  RawConnection waiting{service->port};
  if (locked) waiting.send(request("POST", "/users", user_body("Grace", "grace@example.com")));
  // The INSERT is in the handler, waiting for the lock.
  const bool in_flight = locked && becomes_one(
                                       "SELECT count(*) FROM pg_stat_activity "
                                       "WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO users%'");
  if (in_flight) service->process.signal(SIGTERM);
  auto answered = in_flight ? waiting.read_response() : std::nullopt;
  locker.join();
  ASSERT_TRUE(locked) << "the other client never took the lock";
  ASSERT_TRUE(in_flight) << "the request never waited for the lock";
  ASSERT_TRUE(answered) << "the request in flight was cut";
  EXPECT_EQ(answered->status, 201) << answered->body;
  EXPECT_EQ(answered->header("connection"), "close");
  service->stopped = true;
  EXPECT_EQ(service->process.wait(15s), 0) << service->process.drain_stderr();
  EXPECT_EQ(server_->psql("SELECT count(*) FROM users", database_), "2");
}

TEST_F(UsersServicePostgres, ADatabaseThatGoesAwayGives503AndTheServiceRecovers) {
  auto service = start();
  create(*service, "Ada", "ada@example.com");
  server_->stop();
  expect_error(service->send(request("GET", "/users/1")), 503);
  expect_error(service->send(request("POST", "/users", user_body("G", "g@example.com"))), 503);
  EXPECT_EQ(service->send(request("GET", "/readyz")).status, 503);
  EXPECT_EQ(service->send(request("GET", "/healthz")).status, 200);  // alive all the same
  server_->start_again();
  // The pool reconnects within its back-off (at most 500 ms between attempts).
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    status = service->send(request("GET", "/readyz")).status;
    if (status == 200) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(service->send(request("GET", "/users/1")).status, 200);
  // The event listener is back too, once its own back-off (up to 5 s) has passed: changes made before
  // that are not heard (documented), so the test makes one every 5 s until an event comes.
  spindle_test::RawWebSocket socket{service->port, "/ws/events"};
  spindle_test::await_receiving(socket);
  std::optional<spindle_test::RawFrame> event;
  for (int attempt = 0; attempt < 3 && !event; ++attempt) {
    create(*service, "Grace", "grace" + std::to_string(attempt) + "@example.com");
    event = socket.read_data_or_close();  // waits up to 5 s
  }
  ASSERT_TRUE(event) << "no event within 15 s of the database's return";
  EXPECT_NE(event->payload.find("\"user_created\""), std::string::npos) << event->payload;
}

// ---- Configuration: mistakes fail at start, in one line, with a non-zero status ----

struct Outcome {
  std::optional<int> status;
  std::string out;
  std::string err;
};

Outcome run_server(std::vector<std::string> args, const ChildOptions& options = {}) {
  args.insert(args.begin(), SPINDLE_USERS_SERVER_BINARY);
  ChildProcess process{std::move(args), options};
  Outcome outcome;
  outcome.status = process.wait(20s);
  while (auto line = process.read_line(100ms)) outcome.out += *line + "\n";
  outcome.err = process.drain_stderr();
  return outcome;
}

void expect_one_line_failure(const Outcome& outcome, const std::string& mentions) {
  ASSERT_TRUE(outcome.status) << "did not exit";
  EXPECT_NE(*outcome.status, 0);
  EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
  EXPECT_NE(outcome.err.find(mentions), std::string::npos) << outcome.err;
  EXPECT_EQ(outcome.out.find("listening on"), std::string::npos) << outcome.out;
}

TEST(UsersServiceConfig, HelpDocumentsEveryOption) {
  Outcome help = run_server({"--help"});
  ASSERT_TRUE(help.status);
  EXPECT_EQ(*help.status, 0);
  for (const char* mention :
       {"--listen", "--workers", "--database-url", "DATABASE_URL", "PORT", "--log-level", "sqlite://", "postgres://"})
    EXPECT_NE(help.out.find(mention), std::string::npos) << mention << "\n" << help.out;
}

TEST(UsersServiceConfig, BadConfigurationFailsAtStartInOneLine) {
  expect_one_line_failure(run_server({"--database-url", "mysql://localhost/users"}), "unsupported scheme");
  expect_one_line_failure(run_server({"--database-url", "users.db"}), "DATABASE_URL");
  expect_one_line_failure(run_server({"--database-url", "sqlite:///nonexistent-spindle-dir/users.db"}),
                          "does not exist");
  expect_one_line_failure(run_server({"--listen", "not-an-address"}), "--listen");
  expect_one_line_failure(run_server({"--workers", "0"}), "--workers");
  expect_one_line_failure(run_server({"--log-level", "loud"}), "--log-level");
  ChildOptions bad_env;
  bad_env.environment = {{"DATABASE_URL", "postgres://postgres@127.0.0.1:1/users"}};
  expect_one_line_failure(run_server({}, bad_env), "cannot connect to postgres://postgres@127.0.0.1:1/users");
  bad_env.environment = {{"DATABASE_URL", "postgres://postgres:secret@127.0.0.1:1/users"}};
  const Outcome hidden = run_server({}, bad_env);
  expect_one_line_failure(hidden, "postgres://postgres:***@127.0.0.1:1/users");
  EXPECT_EQ(hidden.err.find("secret"), std::string::npos) << hidden.err;
  bad_env.environment = {{"DATABASE_URL", "postgres://127.0.0.1:1/users?user=postgres&password=secret"}};
  const Outcome hidden_in_query = run_server({}, bad_env);
  expect_one_line_failure(hidden_in_query, "postgres://127.0.0.1:1/users?user=postgres&password=***");
  EXPECT_EQ(hidden_in_query.err.find("secret"), std::string::npos) << hidden_in_query.err;

  // A port already taken.
  const int taken = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t length = sizeof address;
  ::getsockname(taken, reinterpret_cast<sockaddr*>(&address), &length);
  const std::string in_use = "127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  char pattern[] = "/tmp/spindle-users-config-XXXXXX";
  const std::string directory = ::mkdtemp(pattern);
  expect_one_line_failure(run_server({"--listen", in_use, "--database-url", "sqlite://" + directory + "/u.db"}),
                          "cannot listen on " + in_use);
  ::close(taken);
  std::filesystem::remove_all(directory);
}

TEST(UsersServiceConfig, EnvironmentAndARelativeSqlitePath) {
  char pattern[] = "/tmp/spindle-users-env-XXXXXX";
  const std::string directory = ::mkdtemp(pattern);
  std::filesystem::create_directory(directory + "/data");
  ChildOptions options;
  options.working_directory = directory;
  options.environment = {{"DATABASE_URL", "sqlite://data/users.db"}, {"LOG_LEVEL", "warn"}, {"WORKERS", "1"}};
  {
    Service service{"sqlite://data/users.db", {}, options};  // the flag and the variable agree
    EXPECT_EQ(service.send(request("POST", "/users", user_body("Ada", "ada@example.com"))).status, 201);
  }
  EXPECT_TRUE(std::filesystem::exists(directory + "/data/users.db"));
  // The variable alone, and PORT instead of --listen: the same data, on the port asked for.
  const int free_port = [] {
    const int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(probe, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(probe, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(probe);
    return static_cast<int>(ntohs(address.sin_port));
  }();
  options.environment.push_back({"PORT", std::to_string(free_port)});
  ChildProcess process{{SPINDLE_USERS_SERVER_BINARY}, options};
  auto banner = process.read_line(10s);
  ASSERT_TRUE(banner) << process.drain_stderr();
  EXPECT_EQ(*banner, "listening on 0.0.0.0:" + std::to_string(free_port));
  auto listed = spindle_test::exchange(free_port, request("GET", "/users"));
  ASSERT_TRUE(listed);
  EXPECT_EQ(json_object(*listed).at("total").as_int64(), 1);
  process.signal(SIGTERM);
  EXPECT_EQ(process.wait(15s), 0);
  std::filesystem::remove_all(directory);
}

}  // namespace
