// The HTTP client over real sockets, against Spindle's server (and, for what a well-behaved server never
// sends, a raw TCP server in the test): keep-alive and its pool, Connection: close, chunked streaming,
// HEAD, large bodies, pipelining, stale pooled connections, errors and timeouts, concurrency.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "support/co_assert.hpp"
#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
using namespace std::chrono_literals;
using spindle_test::TestServer;

namespace {

/// The client ports the server saw: one port per connection.
class PeerPorts {
 public:
  void record(const Request& request) {
    const auto peer = request.peer_addr();
    std::lock_guard lock(mutex_);
    if (peer) ports_.insert(peer->port());
  }
  std::size_t connections() {
    std::lock_guard lock(mutex_);
    return ports_.size();
  }

 private:
  std::mutex mutex_;
  std::set<int> ports_;
};

Task<Response> echo_body(Request request) {
  auto body = co_await request.body().collect();
  if (!body) co_return Response::error(body.error().status, body.error().message);
  co_return Response::text(std::move(*body));
}

/// Sends "part 0\n", "part 1\n", "part 2\n", each after the client has signalled it has the one before.
Task<void> send_parts(BodySender sender, Notify* client_has_it) {
  for (int i = 0; i < 3; ++i) {
    if (i > 0) co_await client_has_it->notified();
    std::string part = "part " + std::to_string(i) + "\n";
    auto sending = sender.send(std::move(part));
    if (!co_await std::move(sending)) co_return;
  }
}

std::string pattern(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>('a' + i % 23);
  return bytes;
}

Router<> test_routes(PeerPorts* ports, Notify* gate) {
  return Router<>{}
      .route("/hello", get([ports](Request request) {
               ports->record(request);
               return Response::text("Hello, World!");
             }))
      .route("/echo", post(echo_body))
      .route("/close", get([ports](Request request) {
               ports->record(request);
               Response r = Response::text("bye");
               r.headers.set("connection", "close");
               return r;
             }))
      .route("/target", get([ports](Request request) {
               ports->record(request);
               return Response::text(std::string{request.path()} + "|" + std::string{request.query()});
             }))
      .route("/big", get([](Request) { return Response::text(pattern(2 * 1024 * 1024)); }))
      .route("/slow", get([](Request) -> Task<Response> {
               co_await sleep(500ms);
               co_return Response::text("late");
             }))
      .route("/stream", get([gate](Request) {
               auto [sender, body] = Body::channel(1);
               spawn(send_parts(std::move(sender), gate)).detach();
               return Response{Status::ok, {}, std::move(body)};
             }));
}

ServerConfig large_bodies() {
  ServerConfig config;
  config.max_body = 8 * 1024 * 1024;
  return config;
}

std::string url(int port, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(port) + std::string{path};
}

/// The test server's URLs, as named strings: a std::string made inside a co_await expression is a GCC 12
/// hazard (docs/architecture.md), so none is.
struct Urls {
  explicit Urls(int port)
      : root(url(port, "/")),
        hello(url(port, "/hello")),
        echo(url(port, "/echo")),
        close(url(port, "/close")),
        stream(url(port, "/stream")),
        big(url(port, "/big")),
        slow(url(port, "/slow")),
        missing(url(port, "/nowhere?x=1")) {}
  std::string root, hello, echo, close, stream, big, slow, missing;
};

/// Runs a test body on a current_thread runtime on this thread.
void run(Task<void> test) {
  Runtime runtime;
  runtime.block_on(std::move(test));
}

Task<std::string> read_text(ClientResponse& response) {
  auto text = co_await response.text();
  co_return text ? *text : "<error: " + text.error().message + ">";
}

// --- a raw TCP server, for answers Spindle's server would never give

/// Reads one request head (up to its empty line); false if the connection closed first.
Task<bool> read_request_head(TcpStream& stream) {
  std::string head;
  char buffer[1024];
  while (head.find("\r\n\r\n") == std::string::npos) {
    auto n = co_await stream.read(std::span{buffer});
    if (!n || *n == 0) co_return false;
    head.append(buffer, *n);
  }
  co_return true;
}

/// One connection per answer: reads a request, sends the answer as given, closes.
Task<void> canned_server(TcpListener listener, std::vector<std::string> answers) {
  for (const std::string& answer : answers) {
    auto accepted = co_await listener.accept();
    if (!accepted) co_return;
    if (!co_await read_request_head(accepted->stream)) continue;
    (void)co_await accepted->stream.write_all(answer);
  }
}

/// Answers a first request with keep-alive, then closes the connection when the second request arrives,
/// without answering it (a server's idle close racing the request); answers on the next connection.
Task<void> drops_the_second_request(TcpListener listener) {
  auto first = co_await listener.accept();
  if (!first) co_return;
  if (!co_await read_request_head(first->stream)) co_return;
  (void)co_await first->stream.write_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst");
  if (!co_await read_request_head(first->stream)) co_return;
  first->stream.close();
  auto second = co_await listener.accept();
  if (!second) co_return;
  if (!co_await read_request_head(second->stream)) co_return;
  (void)co_await second->stream.write_all("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
}

TcpListener local_listener() { return *TcpListener::bind(*SocketAddr::parse("127.0.0.1:0")); }

}  // namespace

TEST(HttpClient, GetAndPost) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    auto hello = co_await client.get(at.hello);
    CO_ASSERT(hello);
    EXPECT_EQ(hello->status(), Status::ok);
    EXPECT_EQ(hello->version_minor(), 1);
    EXPECT_EQ(hello->header("content-type"), "text/plain; charset=utf-8");
    EXPECT_EQ(hello->content_length(), 13u);
    EXPECT_EQ(co_await read_text(*hello), "Hello, World!");

    auto posting = client.post(at.echo, "ping", "text/plain");  // a local: see Urls
    auto echoed = co_await std::move(posting);
    CO_ASSERT(echoed);
    EXPECT_EQ(echoed->status(), Status::ok);
    EXPECT_EQ(co_await read_text(*echoed), "ping");

    auto missing = co_await client.get(at.missing);
    CO_ASSERT(missing);
    EXPECT_EQ(missing->status(), Status::not_found);
    EXPECT_NE((co_await read_text(*missing)).find("error"), std::string::npos);
  }(server.port()));
}

TEST(HttpClient, ResolvesNames) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    Client client;
    // "localhost" goes through spindle::resolve; an address the server does not listen on (::1, if
    // /etc/hosts lists it first) is refused and the next one tried.
    const std::string by_name = "http://localhost:" + std::to_string(port) + "/hello";
    auto hello = co_await client.get(by_name);
    CO_ASSERT(hello);
    EXPECT_EQ(co_await read_text(*hello), "Hello, World!");
  }(server.port()));
}

TEST(HttpClient, KeepAliveReusesOneConnection) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    for (int i = 0; i < 5; ++i) {
      auto response = co_await client.get(at.hello);
      CO_ASSERT(response);
      EXPECT_EQ(client.idle_connections(), 0u) << "the response owns its connection until its body is read";
      EXPECT_EQ(co_await read_text(*response), "Hello, World!");
      EXPECT_EQ(client.idle_connections(), 1u);
    }
  }(server.port()));
  EXPECT_EQ(ports.connections(), 1u);
}

TEST(HttpClient, ConnectionCloseIsNotReused) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    auto closing = co_await client.get(at.close);
    CO_ASSERT(closing);
    EXPECT_EQ(closing->header("connection"), "close");
    EXPECT_EQ(co_await read_text(*closing), "bye");
    EXPECT_EQ(client.idle_connections(), 0u);

    // The client asking to close: not pooled either.
    ClientRequest request;
    request.headers.set("connection", "close");
    auto asked = co_await client.send(at.hello, std::move(request));
    CO_ASSERT(asked);
    EXPECT_EQ(co_await read_text(*asked), "Hello, World!");
    EXPECT_EQ(client.idle_connections(), 0u);

    auto next = co_await client.get(at.hello);
    CO_ASSERT(next);
    EXPECT_EQ(co_await read_text(*next), "Hello, World!");
    EXPECT_EQ(client.idle_connections(), 1u);
  }(server.port()));
  EXPECT_EQ(ports.connections(), 3u);
}

TEST(HttpClient, ReadsAChunkedResponsePieceByPiece) {
  Notify gate;  // outlives the server: its producer task may still wait on it when the server stops
  PeerPorts ports;
  TestServer server(test_routes(&ports, &gate));
  run([](int port, Notify& client_has_it) -> Task<void> {
    const Urls at{port};
    Client client;
    auto response = co_await client.get(at.stream);
    CO_ASSERT(response);
    EXPECT_EQ(response->header("transfer-encoding"), "chunked");
    EXPECT_FALSE(response->content_length());
    for (int i = 0; i < 3; ++i) {
      // Part i+1 is not even produced before we have part i: this is streaming, not buffering.
      auto piece = co_await response->next();
      CO_ASSERT(piece);
      EXPECT_EQ(*piece, "part " + std::to_string(i) + "\n");
      client_has_it.notify_one();
    }
    auto end = co_await response->next();
    CO_ASSERT(end);
    EXPECT_TRUE(end->empty());
    EXPECT_EQ(client.idle_connections(), 1u);
    auto after = co_await response->next();  // past the end: still empty
    CO_ASSERT(after);
    EXPECT_TRUE(after->empty());
  }(server.port(), gate));
}

TEST(HttpClient, HeadHasHeadersButNoBody) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    for (int i = 0; i < 2; ++i) {
      ClientRequest request;
      request.method = Method::head;
      auto response = co_await client.send(at.hello, std::move(request));
      CO_ASSERT(response);
      EXPECT_EQ(response->status(), Status::ok);
      EXPECT_EQ(response->header("content-length"), "13");
      EXPECT_EQ(client.idle_connections(), 1u) << "no body to read: pooled at once";
      EXPECT_EQ(co_await read_text(*response), "");
    }
    auto get = co_await client.get(at.hello);  // nothing was left on the connection
    CO_ASSERT(get);
    EXPECT_EQ(co_await read_text(*get), "Hello, World!");
  }(server.port()));
  EXPECT_EQ(ports.connections(), 1u);
}

TEST(HttpClient, LargeBodiesBothWays) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr), large_bodies());
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    const std::string sent = pattern(2 * 1024 * 1024 + 7);
    auto posting = client.post(at.echo, sent, "application/octet-stream");
    auto echoed = co_await std::move(posting);
    CO_ASSERT(echoed);
    EXPECT_EQ(echoed->content_length(), sent.size());
    const std::string back = co_await read_text(*echoed);
    EXPECT_EQ(back.size(), sent.size());
    EXPECT_TRUE(back == sent);

    auto big = co_await client.get(at.big);
    CO_ASSERT(big);
    std::string received;
    int pieces = 0;
    for (;;) {
      auto piece = co_await big->next();
      CO_ASSERT(piece);
      if (piece->empty()) break;
      received.append(*piece);
      ++pieces;
    }
    EXPECT_TRUE(received == pattern(2 * 1024 * 1024));
    EXPECT_GT(pieces, 1);
    EXPECT_EQ(client.idle_connections(), 1u);
  }(server.port()));
}

TEST(HttpClient, PipelinedResponsesComeBackInOrder) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    std::vector<ClientRequest> batch(16);
    for (int i = 0; i < 16; ++i) batch[i].target = "/target?n=" + std::to_string(i);
    batch[5].method = Method::post;  // a body in the middle of the batch
    batch[5].target = "/echo";
    batch[5].body = Body{"five"};
    batch[9].method = Method::head;  // a response without a body in the middle
    auto responses = co_await client.pipeline(at.root, std::move(batch));
    CO_ASSERT(responses);
    CO_ASSERT(responses->size() == 16u);
    for (int i = 0; i < 16; ++i) {
      const CollectedResponse& r = (*responses)[i];
      EXPECT_EQ(r.status, Status::ok) << i;
      if (i == 5)
        EXPECT_EQ(r.body, "five");
      else if (i == 9)
        EXPECT_EQ(r.body, "") << "HEAD";
      else
        EXPECT_EQ(r.body, "/target|n=" + std::to_string(i));
    }
    EXPECT_EQ(client.idle_connections(), 1u);
    auto after = co_await client.get(at.hello);
    CO_ASSERT(after);
    EXPECT_EQ(co_await read_text(*after), "Hello, World!");
  }(server.port()));
  EXPECT_EQ(ports.connections(), 1u);
}

TEST(HttpClient, APooledConnectionTheServerClosedIsReplaced) {
  PeerPorts ports;
  ServerConfig config;
  config.idle_timeout = 150ms;
  TestServer server(test_routes(&ports, nullptr), config);
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    auto first = co_await client.get(at.hello);
    CO_ASSERT(first);
    EXPECT_EQ(co_await read_text(*first), "Hello, World!");
    EXPECT_EQ(client.idle_connections(), 1u);
    co_await sleep(600ms);  // the server's idle timeout closes it meanwhile
    auto second = co_await client.get(at.hello);
    CO_ASSERT(second);
    EXPECT_EQ(co_await read_text(*second), "Hello, World!");
    EXPECT_EQ(client.idle_connections(), 1u);
  }(server.port()));
  EXPECT_EQ(ports.connections(), 2u);
}

TEST(HttpClient, RetriesOnceWhenAReusedConnectionClosesBeforeAnswering) {
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    JoinHandle<void> server = spawn(drops_the_second_request(std::move(listener)));
    Client client;
    auto first = co_await client.get(at.root);
    CO_ASSERT(first);
    EXPECT_EQ(co_await read_text(*first), "first");
    EXPECT_EQ(client.idle_connections(), 1u);
    auto second = co_await client.get(at.root);  // the pooled connection is dropped mid-request
    CO_ASSERT(second);
    EXPECT_EQ(co_await read_text(*second), "second");
    CO_ASSERT(co_await std::move(server));
  }());
  // A streamed body cannot be sent twice: the failure is reported.
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    JoinHandle<void> server = spawn(drops_the_second_request(std::move(listener)));
    Client client;
    auto first = co_await client.get(at.root);
    CO_ASSERT(first);
    EXPECT_EQ(co_await read_text(*first), "first");
    auto [sender, body] = Body::channel(4);
    auto sending = sender.send(std::string(100, 'x'));
    CO_ASSERT(co_await std::move(sending));
    { [[maybe_unused]] BodySender done = std::move(sender); }  // the body ends after that chunk
    ClientRequest upload;
    upload.method = Method::put;  // idempotent: only the stream stops the retry
    upload.body = std::move(body);
    auto second = co_await client.send(at.root, std::move(upload));
    CO_ASSERT(!second);
    EXPECT_EQ(second.error().kind, ClientError::Kind::io) << second.error().message;
    server.abort();
  }());
  // Nor is a POST: the server may have acted on it before the connection failed.
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    JoinHandle<void> server = spawn(drops_the_second_request(std::move(listener)));
    Client client;
    auto first = co_await client.get(at.root);
    CO_ASSERT(first);
    EXPECT_EQ(co_await read_text(*first), "first");
    auto second = co_await client.post(at.root, "order #1", "text/plain");
    CO_ASSERT(!second);
    EXPECT_EQ(second.error().kind, ClientError::Kind::io) << second.error().message;
    co_await sleep(20ms);
    EXPECT_FALSE(server.is_finished()) << "the POST was sent again, on a second connection";
    server.abort();
  }());
  // The same for a pipelined batch with a POST in it.
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    JoinHandle<void> server = spawn(drops_the_second_request(std::move(listener)));
    Client client;
    auto first = co_await client.get(at.root);
    CO_ASSERT(first);
    EXPECT_EQ(co_await read_text(*first), "first");
    std::vector<ClientRequest> batch(2);
    batch[1].method = Method::post;
    auto answers = co_await client.pipeline(at.root, std::move(batch));
    CO_ASSERT(!answers);
    EXPECT_EQ(answers.error().kind, ClientError::Kind::io) << answers.error().message;
    co_await sleep(20ms);
    EXPECT_FALSE(server.is_finished()) << "the batch was sent again, on a second connection";
    server.abort();
  }());
}

TEST(HttpClient, ConnectRefused) {
  run([]() -> Task<void> {
    int port = 0;
    {
      TcpListener listener = local_listener();  // a port nobody listens on once it is closed
      port = listener.local_addr()->port();
    }
    const Urls at{port};
    Client client;
    auto response = co_await client.get(at.root);
    CO_ASSERT(!response);
    EXPECT_EQ(response.error().kind, ClientError::Kind::connect) << response.error().message;
    EXPECT_NE(response.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << response.error().message;
  }());
}

TEST(HttpClient, RequestTimeout) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    ClientConfig config;
    config.request_timeout = 100ms;
    Client client{config};
    const Instant start = now();
    auto response = co_await client.get(at.slow);
    CO_ASSERT(!response);
    EXPECT_EQ(response.error().kind, ClientError::Kind::timeout) << response.error().message;
    EXPECT_LT(now() - start, 400ms);
    EXPECT_EQ(client.idle_connections(), 0u);
    auto fast = co_await client.get(at.hello);  // the client carries on, on a new connection
    CO_ASSERT(fast);
    EXPECT_EQ(co_await read_text(*fast), "Hello, World!");
  }(server.port()));
}

TEST(HttpClient, MalformedResponsesAreProtocolErrors) {
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    std::vector<std::string> answers = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello",  // smuggling shape
        "HTTP/1.1 2x0 OK\r\n\r\n",                                                          // bad status line
        "HTTP/1.1 200 OK\nContent-Length: 2\n\nok",                                         // bare LF
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",                   // not asked for
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",                      // bad chunk size
    };
    JoinHandle<void> server = spawn(canned_server(std::move(listener), std::move(answers)));
    Client client;
    for (int i = 0; i < 4; ++i) {
      auto response = co_await client.get(at.root);
      CO_ASSERT(!response);
      EXPECT_EQ(response.error().kind, ClientError::Kind::protocol) << i << ": " << response.error().message;
    }
    auto chunked = co_await client.get(at.root);
    CO_ASSERT(chunked);  // the head is fine; the body is not
    auto body = co_await chunked->text();
    CO_ASSERT(!body);
    EXPECT_EQ(body.error().kind, ClientError::Kind::protocol) << body.error().message;
    auto again = co_await chunked->next();  // the error sticks
    CO_ASSERT(!again);
    EXPECT_EQ(client.idle_connections(), 0u);
    CO_ASSERT(co_await std::move(server));
  }());
}

TEST(HttpClient, InterimResponsesUntilCloseBodiesAndHttp10) {
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    std::vector<std::string> answers = {
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\n\r\nuntil the server closes",
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    };
    JoinHandle<void> server = spawn(canned_server(std::move(listener), std::move(answers)));
    ClientConfig config;
    config.max_idle_per_host = 0;  // each answer comes on a new connection
    Client client{config};

    auto interim = co_await client.get(at.root);
    CO_ASSERT(interim);
    EXPECT_EQ(interim->status(), Status::ok);
    EXPECT_FALSE(interim->header("link")) << "the 103's fields are not the response's";
    EXPECT_EQ(co_await read_text(*interim), "ok");

    auto until_close = co_await client.get(at.root);
    CO_ASSERT(until_close);
    EXPECT_FALSE(until_close->content_length());
    EXPECT_EQ(co_await read_text(*until_close), "until the server closes");

    auto old = co_await client.get(at.root);
    CO_ASSERT(old);
    EXPECT_EQ(old->version_minor(), 0);
    EXPECT_EQ(co_await read_text(*old), "hi");
    CO_ASSERT(co_await std::move(server));
  }());
  // The same two without the pool switched off: neither is reused.
  run([]() -> Task<void> {
    TcpListener listener = local_listener();
    const Urls at{listener.local_addr()->port()};
    std::vector<std::string> answers = {"HTTP/1.1 200 OK\r\n\r\nuntil close",
                                        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"};
    JoinHandle<void> server = spawn(canned_server(std::move(listener), std::move(answers)));
    Client client;
    for (const char* expected : {"until close", "hi"}) {
      auto response = co_await client.get(at.root);
      CO_ASSERT(response);
      EXPECT_EQ(co_await read_text(*response), expected);
      EXPECT_EQ(client.idle_connections(), 0u) << expected;
    }
    CO_ASSERT(co_await std::move(server));
  }());
}

TEST(HttpClient, AResponseDroppedBeforeItsBodyEndsClosesTheConnection) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    Client client;
    {
      auto big = co_await client.get(at.big);
      CO_ASSERT(big);
      auto piece = co_await big->next();  // a little of it, then gone
      CO_ASSERT(piece && !piece->empty());
    }
    EXPECT_EQ(client.idle_connections(), 0u);
    {
      // Every byte read, only the final empty piece not asked for: the body is over, the connection kept.
      auto hello = co_await client.get(at.hello);
      CO_ASSERT(hello);
      auto piece = co_await hello->next();
      CO_ASSERT(piece);
      EXPECT_EQ(*piece, "Hello, World!");
      EXPECT_EQ(client.idle_connections(), 0u) << "the view is still in use";
    }
    EXPECT_EQ(client.idle_connections(), 1u);
  }(server.port()));
  EXPECT_EQ(ports.connections(), 1u);  // only /hello records
}

TEST(HttpClient, BodiesAndHeadsOverTheLimitsAreTooLarge) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  run([](int port) -> Task<void> {
    const Urls at{port};
    ClientConfig config;
    config.max_collect = 1000;
    config.limits.max_header_bytes = 20;
    Client client{config};
    auto head_too_large = co_await client.get(at.hello);
    CO_ASSERT(!head_too_large);
    EXPECT_EQ(head_too_large.error().kind, ClientError::Kind::too_large) << head_too_large.error().message;

    ClientConfig small_bodies;
    small_bodies.max_collect = 1000;
    Client small{small_bodies};
    auto big = co_await small.get(at.big);
    CO_ASSERT(big);
    auto body = co_await big->text();
    CO_ASSERT(!body);
    EXPECT_EQ(body.error().kind, ClientError::Kind::too_large);
    EXPECT_EQ(small.idle_connections(), 0u);

    std::vector<ClientRequest> batch(2);
    batch[1].target = "/big";
    auto pipelined = co_await small.pipeline(at.root, std::move(batch));
    CO_ASSERT(!pipelined);
    EXPECT_EQ(pipelined.error().kind, ClientError::Kind::too_large);
  }(server.port()));
}

TEST(HttpClient, RefusesWhatItCannotSend) {
  run([]() -> Task<void> {
    Client client;
    for (const char* bad :
         {"ftp://127.0.0.1/", "https://127.0.0.1/", "127.0.0.1:80/", "http://", "http:///path", "http://127.0.0.1:0/",
          "http://127.0.0.1:65536/", "http://127.0.0.1:8x/", "http://user@127.0.0.1/", "http://[::1/", "http://a b/",
          "http://127.0.0.1/a b", "http://127.0.0.1/caf\xc3\xa9"}) {
      auto response = co_await client.get(bad);
      CO_ASSERT(!response);
      EXPECT_EQ(response.error().kind, ClientError::Kind::invalid_url) << bad << ": " << response.error().message;
    }
    ClientRequest nameless;
    nameless.method = Method::other;
    auto response = co_await client.send("http://127.0.0.1:1/", std::move(nameless));
    CO_ASSERT(!response);
    EXPECT_EQ(response.error().kind, ClientError::Kind::invalid_request);
    auto posting = client.post("http://127.0.0.1:1/", "x", "text/plain\r\nX-Injected: 1");
    auto typed = co_await std::move(posting);
    CO_ASSERT(!typed);
    EXPECT_EQ(typed.error().kind, ClientError::Kind::invalid_request);
    std::vector<ClientRequest> batch(1);
    batch[0].target = "no-slash";
    auto pipelined = co_await client.pipeline("http://127.0.0.1:1", std::move(batch));
    CO_ASSERT(!pipelined);
    EXPECT_EQ(pipelined.error().kind, ClientError::Kind::invalid_request);
  }());
}

namespace {
Task<int> fetch_many(Client client, int port, int worker) {
  int ok = 0;
  for (int i = 0; i < 25; ++i) {
    const std::string query = std::to_string(worker) + "-" + std::to_string(i);
    const std::string address = url(port, "/target?n=" + query);
    auto response = co_await client.get(address);
    if (!response) continue;
    auto text = co_await response->text();
    if (text && *text == "/target|n=" + query) ++ok;
  }
  co_return ok;
}
}  // namespace

TEST(HttpClient, ConcurrentRequestsFromManyTasksOnAMultiThreadRuntime) {
  PeerPorts ports;
  TestServer server(test_routes(&ports, nullptr));
  Runtime runtime = Runtime::multi_thread().worker_threads(4).build();
  const int ok = runtime.block_on([](int port) -> Task<int> {
    Client client;
    JoinSet<int> workers;
    for (int w = 0; w < 32; ++w) workers.spawn(fetch_many(client, port, w));
    int total = 0;
    while (auto done = co_await workers.join_next())
      if (*done) total += done->value();
    EXPECT_GE(client.idle_connections(), 1u);
    EXPECT_LE(client.idle_connections(), 32u);
    co_return total;
  }(server.port()));
  EXPECT_EQ(ok, 32 * 25);
  EXPECT_LE(ports.connections(), 32u) << "connections are reused, not one per request";
}
