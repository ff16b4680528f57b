// The users service (examples/users) as a cluster: two users-server processes on one PostgreSQL 15, behind
// nginx as a round-robin load balancer, everything a real child process on real sockets. A user created
// through one instance is readable through the other, and every change reaches WebSocket and server-sent
// event clients of both instances, directly and through the proxy, in the order it was made.

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "spindle/http/parser.hpp"
#include "support/child_process.hpp"
#include "support/example_server.hpp"
#include "support/http_harness.hpp"
#include "support/postgres_server.hpp"
#include "support/ws_raw.hpp"

namespace {

using namespace std::chrono_literals;
using spindle_test::ChildProcess;
using spindle_test::RawConnection;
using spindle_test::RawResponse;
using spindle_test::RawWebSocket;

/// One users-server on the shared database: one worker, warnings only (no access log).
struct Instance : spindle_test::ExampleServer {
  explicit Instance(const std::string& database_url)
      : ExampleServer(SPINDLE_USERS_SERVER_BINARY,
                      {"--database-url", database_url, "--workers", "1", "--log-level", "warn"}) {}
  /// SIGTERM; the exit status must be 0, and nothing worth a warning may have happened (a lost listener,
  /// an event not sent, the database unavailable).
  void stop() { EXPECT_EQ(ExampleServer::stop(), "") << "users-server on port " << port; }
};

/// One request on a fresh connection; status 0 when no response came (within RawConnection's 5 s).
RawResponse call(int port, const std::string& method, const std::string& target, const std::string& body = "") {
  std::string text = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!body.empty())
    text += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  text += "\r\n" + body;
  try {
    if (std::optional<RawResponse> response = spindle_test::exchange(port, text)) return *response;
  } catch (const std::exception& error) {
    return RawResponse{.status = 0, .headers = {}, .body = error.what()};
  }
  return RawResponse{.status = 0, .headers = {}, .body = "no response to " + method + " " + target};
}

std::string user_body(const std::string& name, const std::string& email) {
  return boost::json::serialize(boost::json::object{{"name", name}, {"email", email}});
}

/// The JSON object in `text`; an empty object (and a failure) when it is not one.
boost::json::object object_of(const std::string& text) {
  boost::system::error_code error;
  const boost::json::value value = boost::json::parse(text, error);
  EXPECT_FALSE(error) << text;
  EXPECT_TRUE(value.is_object()) << text;
  return !error && value.is_object() ? value.as_object() : boost::json::object{};
}

/// Equal JSON (members in any order), shown as JSON text when not.
::testing::AssertionResult same_json(const boost::json::value& got, const boost::json::value& want) {
  if (got == want) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got  " << boost::json::serialize(got) << "\nwant "
                                       << boost::json::serialize(want);
}

/// POST /users on `port`; the created user (201 and a Location naming it, else a failure).
boost::json::object create(int port, const std::string& name, const std::string& email) {
  const RawResponse created = call(port, "POST", "/users", user_body(name, email));
  EXPECT_EQ(created.status, 201) << created.body;
  boost::json::object user = object_of(created.body);
  if (user.contains("id")) {
    EXPECT_EQ(created.header("location"), "/users/" + std::to_string(user.at("id").as_int64()));
  }
  return user;
}

std::string path_of(const boost::json::object& user) { return "/users/" + std::to_string(user.at("id").as_int64()); }

/// The value of spindle_http_requests_total{method="POST",route="/users",status="201"} in the /metrics of
/// the instance on `port`: the users that instance created (0 when it has no such line yet).
int users_created_by(int port) {
  const RawResponse metrics = call(port, "GET", "/metrics");
  EXPECT_EQ(metrics.status, 200) << metrics.body;
  static const std::regex line{
      R"((?:^|\n)spindle_http_requests_total\{method="POST",route="/users",status="201"\} (\d+)\n)"};
  std::smatch match;
  return std::regex_search(metrics.body, match, line) ? std::stoi(match[1]) : 0;
}

/// The next message on `socket` is {"type": type, "user": user} and nothing else; its text in `text`.
void expect_event(RawWebSocket& socket, const std::string& type, const boost::json::object& user,
                  std::string* text = nullptr) {
  const std::optional<spindle_test::RawFrame> frame = socket.read_data_or_close();
  ASSERT_TRUE(frame) << "no " << type << " event within the receive timeout";
  ASSERT_EQ(frame->opcode, spindle::ws::Opcode::text) << frame->payload;
  EXPECT_TRUE(same_json(object_of(frame->payload), boost::json::object{{"type", type}, {"user", user}}));
  if (text != nullptr) *text = frame->payload;
}

/// A server-sent-event client on GET /events, decoding the chunked body itself: a proxy may cut the stream
/// into chunks anywhere, even inside an event.
class EventStream {
 public:
  explicit EventStream(int port) : connection_(port) {
    connection_.send("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n");
    while (raw_.find("\r\n\r\n") == std::string::npos)
      if (!fill_raw()) return;  // head() stays empty: the caller's check fails
    head_ = raw_.substr(0, raw_.find("\r\n\r\n") + 2);
    raw_.erase(0, head_.size() + 2);
  }
  /// The status line and header fields as received.
  const std::string& head() const { return head_; }
  /// The next event's data field; nullopt when none comes within the receive timeout.
  std::optional<std::string> next_data() {
    for (;;) {
      if (const std::size_t end = text_.find("\n\n"); end != std::string::npos) {
        const std::string event = text_.substr(0, end);
        text_.erase(0, end + 2);
        if (event.rfind("data: ", 0) == 0) return event.substr(6);
        continue;  // a comment (": keep-alive") or another field
      }
      const auto step = decoder_.decode(raw_);
      if (step.status == spindle::http::ChunkedDecoder::Status::error) {
        ADD_FAILURE() << "bad chunked framing in the event stream";
        return std::nullopt;
      }
      text_.append(step.data);
      raw_.erase(0, step.consumed);
      if (step.status == spindle::http::ChunkedDecoder::Status::done) return std::nullopt;
      if ((raw_.empty() || step.consumed == 0) && !fill_raw()) return std::nullopt;
    }
  }

 private:
  bool fill_raw() {
    char chunk[4096];
    const ssize_t n = ::recv(connection_.fd(), chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    raw_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  RawConnection connection_;
  spindle::http::ChunkedDecoder decoder_;
  std::string head_;
  std::string raw_;   // bytes received and not decoded yet
  std::string text_;  // decoded body not yet returned
};

/// nginx in the foreground, one process, everything it writes inside its own temp dir, balancing two
/// upstreams round robin on a free port of 127.0.0.1.
class Nginx {
 public:
  Nginx(int upstream_a, int upstream_b) {
    char pattern[] = "/tmp/spindle-nginx-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    // The port is free when picked but may be taken before nginx binds it: then try another.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = spindle::test::postgres_detail::pick_port();
      write_config(upstream_a, upstream_b);
      std::ofstream{dir_ + "/error.log", std::ios::trunc};  // this attempt's log only
      process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
          SPINDLE_NGINX_BINARY, "-p", dir_ + "/", "-c", dir_ + "/nginx.conf", "-e", dir_ + "/error.log"});
      if (await_ready()) return;
      if (log().find("Address already in use") == std::string::npos) break;
    }
    ADD_FAILURE() << "nginx did not come up on 127.0.0.1:" << port_ << "\n" << log() << process_->drain_stderr();
    process_.reset();  // killed if still running; stop() has nothing left to do
    port_ = -1;
  }
  Nginx(const Nginx&) = delete;
  Nginx& operator=(const Nginx&) = delete;
  ~Nginx() {
    process_.reset();  // SIGKILL and reap if stop() was not called
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  int port() const { return port_; }
  /// SIGTERM (fast shutdown, open connections closed); nginx exits 0 and has logged nothing at warn or
  /// above (no upstream refused, failed or cut).
  void stop() {
    if (!process_) return;
    process_->signal(SIGTERM);
    EXPECT_EQ(process_->wait(10s), 0) << log() << process_->drain_stderr();
    EXPECT_EQ(log(), "");
  }
  std::string log() const {
    std::ifstream file(dir_ + "/error.log");
    return std::string{std::istreambuf_iterator<char>{file}, {}};
  }

 private:
  void write_config(int upstream_a, int upstream_b) const {
    std::ofstream config(dir_ + "/nginx.conf");
    config << "daemon off;\n"
           << "master_process off;\n"
           << "pid " << dir_ << "/nginx.pid;\n"
           << "error_log " << dir_ << "/error.log warn;\n"
           << "events { worker_connections 256; }\n"
           << "http {\n"
           << "  access_log off;\n"
           << "  client_body_temp_path " << dir_ << "/client_body;\n"
           << "  proxy_temp_path " << dir_ << "/proxy;\n"
           << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n"
           << "  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
           << "  scgi_temp_path " << dir_ << "/scgi;\n"
           << "  map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
           << "  upstream users {\n"
           << "    server 127.0.0.1:" << upstream_a << ";\n"
           << "    server 127.0.0.1:" << upstream_b << ";\n"
           << "  }\n"
           << "  server {\n"
           << "    listen 127.0.0.1:" << port_ << ";\n"
           << "    location / {\n"
           << "      proxy_pass http://users;\n"
           << "      proxy_http_version 1.1;\n"
           << "      proxy_set_header Upgrade $http_upgrade;\n"
           << "      proxy_set_header Connection $connection_upgrade;\n"
           << "      proxy_buffering off;\n"
           << "    }\n"
           << "  }\n"
           << "}\n";
  }
  /// Polls GET /healthz through nginx for up to 10 s; false when nginx exits or never answers 200.
  bool await_ready() {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (call(port_, "GET", "/healthz").status == 200) return true;
      if (process_->wait(1ms)) return false;  // exited: its error log says why
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::string dir_;
  int port_ = -1;
  std::unique_ptr<ChildProcess> process_;
};

class UsersCluster : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::filesystem::exists(SPINDLE_NGINX_BINARY))
      postgres_ = new spindle::test::PostgresServer(spindle::test::PostgresServer::start());
  }
  static void TearDownTestSuite() {
    delete postgres_;
    postgres_ = nullptr;
  }

  void SetUp() override {
    if (!std::filesystem::exists(SPINDLE_NGINX_BINARY))
      GTEST_SKIP() << SPINDLE_NGINX_BINARY << " is not installed (apt-get install nginx; make bootstrap does)";
    ASSERT_NE(postgres_, nullptr);
    static int databases = 0;
    const std::string name = "users_cluster_" + std::to_string(++databases);
    postgres_->create_database(name);
    const std::string url = "postgres://postgres@127.0.0.1:" + std::to_string(postgres_->port()) + "/" + name;
    // One after the other: the first creates the schema, the second finds it up to date.
    a_ = std::make_unique<Instance>(url);
    ASSERT_GT(a_->port, 0);
    b_ = std::make_unique<Instance>(url);
    ASSERT_GT(b_->port, 0);
    nginx_ = std::make_unique<Nginx>(a_->port, b_->port);
    ASSERT_GT(nginx_->port(), 0);
  }

  void TearDown() override {
    if (nginx_) nginx_->stop();
    if (b_) b_->stop();
    if (a_) a_->stop();
    nginx_.reset();
  }

  static spindle::test::PostgresServer* postgres_;
  std::unique_ptr<Instance> a_;
  std::unique_ptr<Instance> b_;
  std::unique_ptr<Nginx> nginx_;
};
spindle::test::PostgresServer* UsersCluster::postgres_ = nullptr;

TEST_F(UsersCluster, BothInstancesServeOneSetOfUsers) {
  // Through the balancer: the creations are shared between the instances, as each one's metrics tell.
  std::vector<boost::json::object> users;
  for (int i = 0; i < 4; ++i) {
    users.push_back(create(nginx_->port(), "Balanced " + std::to_string(i), "lb" + std::to_string(i) + "@example.com"));
    ASSERT_TRUE(users.back().contains("id"));
  }
  const int by_a = users_created_by(a_->port);
  const int by_b = users_created_by(b_->port);
  EXPECT_GE(by_a, 1);
  EXPECT_GE(by_b, 1);
  EXPECT_EQ(by_a + by_b, 4);
  // Each of them is there for both instances, whichever created it.
  for (const boost::json::object& user : users) {
    SCOPED_TRACE(path_of(user));
    for (const int port : {a_->port, b_->port}) {
      const RawResponse read = call(port, "GET", path_of(user));
      EXPECT_EQ(read.status, 200) << read.body;
      EXPECT_TRUE(same_json(object_of(read.body), user));
    }
  }

  // Created on A, read on B: the very same text; and the other way round.
  const RawResponse ada = call(a_->port, "POST", "/users", user_body("Ada", "ada@example.com"));
  ASSERT_EQ(ada.status, 201) << ada.body;
  const RawResponse ada_on_b = call(b_->port, "GET", ada.header("location").value_or("/no-location"));
  EXPECT_EQ(ada_on_b.status, 200) << ada_on_b.body;
  EXPECT_EQ(ada_on_b.body, ada.body);
  const RawResponse grace = call(b_->port, "POST", "/users", user_body("Grace", "grace@example.com"));
  ASSERT_EQ(grace.status, 201) << grace.body;
  const RawResponse grace_on_a = call(a_->port, "GET", grace.header("location").value_or("/no-location"));
  EXPECT_EQ(grace_on_a.status, 200) << grace_on_a.body;
  EXPECT_EQ(grace_on_a.body, grace.body);
  users.push_back(object_of(ada.body));
  users.push_back(object_of(grace.body));
  // One database, one uniqueness: the address A took is refused by B.
  const RawResponse taken = call(b_->port, "POST", "/users", user_body("Ada again", "ADA@example.com"));
  EXPECT_EQ(taken.status, 409) << taken.body;

  // The list through the balancer has all of them, by id.
  const RawResponse listed = call(nginx_->port(), "GET", "/users");
  ASSERT_EQ(listed.status, 200) << listed.body;
  const boost::json::object page = object_of(listed.body);
  ASSERT_TRUE(page.contains("total") && page.contains("users")) << listed.body;
  EXPECT_TRUE(same_json(page.at("total"), static_cast<std::int64_t>(users.size())));
  std::sort(users.begin(), users.end(),
            [](const auto& x, const auto& y) { return x.at("id").as_int64() < y.at("id").as_int64(); });
  EXPECT_TRUE(same_json(page.at("users"), boost::json::array(users.begin(), users.end())));
}

TEST_F(UsersCluster, EveryChangeReachesClientsOfBothInstancesInOrder) {
  RawWebSocket on_b{b_->port, "/ws/events"};
  RawWebSocket through_nginx{nginx_->port(), "/ws/events"};
  ASSERT_NO_FATAL_FAILURE(spindle_test::await_receiving(on_b));
  ASSERT_NO_FATAL_FAILURE(spindle_test::await_receiving(through_nginx));
  // The stream subscribes before its head is sent: once the head is through, it hears every change.
  EventStream stream{nginx_->port()};
  ASSERT_EQ(stream.head().rfind("HTTP/1.1 200", 0), 0u) << stream.head();
  EXPECT_TRUE(std::regex_search(stream.head(), std::regex{"\r\ncontent-type: text/event-stream", std::regex::icase}))
      << stream.head();
  EXPECT_TRUE(std::regex_search(stream.head(), std::regex{"\r\ntransfer-encoding: chunked", std::regex::icase}))
      << stream.head();

  // Created through A, renamed through B, deleted through A.
  const boost::json::object ada = create(a_->port, "Ada", "ada@example.com");
  ASSERT_TRUE(ada.contains("id"));
  const RawResponse renamed = call(b_->port, "PATCH", path_of(ada), R"({"name":"Countess"})");
  ASSERT_EQ(renamed.status, 200) << renamed.body;
  const boost::json::object countess = object_of(renamed.body);
  EXPECT_EQ(countess.at("name").as_string(), "Countess");
  const RawResponse deleted = call(a_->port, "DELETE", path_of(ada));
  ASSERT_EQ(deleted.status, 204) << deleted.body;

  const std::vector<std::pair<std::string, boost::json::object>> expected = {
      {"user_created", ada}, {"user_updated", countess}, {"user_deleted", countess}};
  for (const auto& [type, user] : expected) {
    SCOPED_TRACE(type);
    std::string text;
    ASSERT_NO_FATAL_FAILURE(expect_event(on_b, type, user, &text));
    ASSERT_NO_FATAL_FAILURE(expect_event(through_nginx, type, user));
    const std::optional<std::string> data = stream.next_data();
    ASSERT_TRUE(data) << "no " << type << " on the event stream within the receive timeout";
    EXPECT_EQ(*data, text);  // encoded once, by the instance that made the change
  }
}

}  // namespace
