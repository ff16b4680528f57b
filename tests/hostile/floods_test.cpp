// Floods and oversized input against a real server process (hostile_server): the file table filled to
// its limit, heads, bodies and WebSocket messages over their limits, JSON nested 100,000 deep and a
// deflate bomb. Each case asserts its outcome (a status, a close code, the connection closed) and then
// that the server answers a normal request.
#include <gtest/gtest.h>
#include <poll.h>
#include <zlib.h>

#include <cstring>
#include <thread>

#include "hostile/hostile_support.hpp"
#include "support/ws_raw.hpp"

namespace {

using namespace std::chrono_literals;
using namespace spindle_test;
using namespace spindle_test::hostile;
using spindle::ws::Opcode;

/// Sends a GET on a connected (possibly non-blocking) socket and waits up to `limit` for the status
/// line; the status, or 0 when none came.
int status_on(int fd, std::chrono::milliseconds limit) {
  const std::string request = "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::size_t sent = 0;
  std::string received;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd watched{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    if (::poll(&watched, 1, 50) <= 0) continue;
    if (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) sent += static_cast<std::size_t>(n);
      continue;
    }
    char buffer[256];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
    if (received.size() >= 12) return std::stoi(received.substr(9, 3));
  }
  return 0;
}

// The server may hold 128 files; 300 clients connect at once. Those it cannot accept wait in the
// listener's backlog while the accept loop backs off (10 ms doubling to 1 s) without spinning; once
// clients leave, the waiting ones are served.
TEST(Floods, AFullFileTableMakesTheAcceptLoopBackOffAndServeAgainOnceFilesFree) {
  raise_file_limit();
  HostileServer server({}, {"prlimit", "--nofile=128:128", "--"});
  ASSERT_GT(server.port, 0);
  std::vector<int> clients;
  for (int i = 0; i < 300; ++i) {
    const int fd = connect_nonblocking(server.port);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    clients.push_back(fd);
  }
  const int first = status_on(clients[0], 5s);
  EXPECT_EQ(first, 200);
  std::this_thread::sleep_for(300ms);  // the table is full: the server backs off

  const long before = server.process.cpu_ticks();
  std::this_thread::sleep_for(2s);
  const long used = server.process.cpu_ticks() - before;
  EXPECT_LT(used, ::sysconf(_SC_CLK_TCK) / 5) << "the server used " << used << " ticks in 2 s while out of files";

  for (int i = 0; i < 200; ++i) ::close(clients[static_cast<std::size_t>(i)]);
  const auto freed = std::chrono::steady_clock::now();
  const int waiting = status_on(clients[299], 5s);
  EXPECT_EQ(waiting, 200) << "a client that waited in the backlog";
  const auto waited = std::chrono::steady_clock::now() - freed;
  EXPECT_LT(waited, 2s) << "served " << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()
                        << " ms after files were freed (the back-off is at most 1 s)";
  EXPECT_EQ(status_on(clients[250], 5s), 200);
  for (int i = 200; i < 300; ++i) ::close(clients[static_cast<std::size_t>(i)]);

  expect_normal_answer(server.port, "the file table was full");
  const std::string log = server.stop();
  const bool logged = log.find("backing off") != std::string::npos;
  EXPECT_TRUE(logged) << log;
  record_outcome(
      "300 clients against a 128-file limit: the accept loop backs off (< 20% of a core while full) and "
      "logs it; a client waiting in the backlog is served within 2 s of files freeing",
      "first client " + std::to_string(first) + "; " + std::to_string(used) + " clock ticks in 2 s (" +
          std::to_string(100 * used / (2 * ::sysconf(_SC_CLK_TCK))) + "% of a core) while full; " +
          (logged ? "logged" : "not logged") + "; waiting client answered " + std::to_string(waiting) + " " +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(waited).count()) +
          " ms after files were freed");
}

// Heads and bodies over the limits: refused with their status, the connection closed, nothing else read.
TEST(Floods, OversizedHeadsAndBodiesGetTheirStatusAndTheConnectionCloses) {
  HostileServer server({"--max-body", "1048576"});
  ASSERT_GT(server.port, 0);
  struct Case {
    const char* what;
    std::string request;
    int status;
  };
  std::string many_fields = "GET /plaintext HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 150; ++i) many_fields += "X-Field-" + std::to_string(i) + ": v\r\n";
  const std::vector<Case> cases = {
      {"a 10 KiB request line", "GET /" + std::string(10 * 1024, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n", 414},
      {"a 20 KiB header block",
       "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(20 * 1024, 'b') + "\r\n\r\n", 431},
      {"150 header fields", many_fields + "\r\n", 431},
      {"a 2 MiB Content-Length (the limit is 1 MiB)",
       "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2097152\r\n\r\n", 413},
  };
  std::string expected, observed;
  for (const Case& c : cases) {
    RawConnection connection(server.port);
    connection.send(c.request);
    auto response = connection.read_response();
    ASSERT_TRUE(response) << c.what;
    EXPECT_EQ(response->status, c.status) << c.what;
    const bool closed = connection.closed_by_server();
    EXPECT_TRUE(closed) << c.what;
    expected += std::string{c.what} + ": " + std::to_string(c.status) + ", closed; ";
    observed += std::string{c.what} + ": " + std::to_string(response->status) + (closed ? ", closed; " : ", open; ");
  }

  // A chunked body gives no size up front: refused once it passes the limit.
  RawConnection connection(server.port);
  connection.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  const std::string chunk = "10000\r\n" + std::string(0x10000, 'c') + "\r\n";  // 64 KiB each
  try {
    for (int i = 0; i < 24; ++i) connection.send(chunk);  // 1.5 MiB
  } catch (const std::exception&) {
    // the server may stop reading once it has refused: what matters is the answer below
  }
  auto response = connection.read_response();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  const bool closed = connection.closed_by_server();
  EXPECT_TRUE(closed);
  record_outcome(
      expected + "a 1.5 MiB chunked body: 413, closed",
      observed + "a 1.5 MiB chunked body: " + std::to_string(response->status) + (closed ? ", closed" : ", open"));

  expect_normal_answer(server.port, "oversized heads and bodies");
  server.stop();
}

// JSON nested 100,000 deep: refused before any recursion that deep (the reader stops at 64 levels).
TEST(Floods, JsonNestedAHundredThousandDeepIsRefused) {
  HostileServer server({"--max-body", "4194304"});  // the 2.4 MB of nested objects must reach the reader
  ASSERT_GT(server.port, 0);
  std::string deep_arrays = std::string(100'000, '[') + std::string(100'000, ']');
  std::string deep_objects;
  for (int i = 0; i < 100'000; ++i) deep_objects += R"({"name":"n","values":{},"children":[)";
  for (int i = 0; i < 100'000; ++i) deep_objects += "]}";
  std::string observed;
  for (const std::string* body : {&deep_arrays, &deep_objects}) {
    auto response = spindle_test::exchange(server.port,
                                           "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                           "Content-Length: " +
                                               std::to_string(body->size()) + "\r\n\r\n" + *body);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << response->body;
    EXPECT_NE(response->body.find("deeper than"), std::string::npos) << response->body;
    observed += (body == &deep_arrays ? "arrays: " : "objects: ") + std::to_string(response->status) + " " +
                response->body + "; ";
  }
  // Nesting within the limit is read.
  std::string shallow;
  for (int i = 0; i < 20; ++i) shallow += R"({"name":"n","values":{},"children":[)";
  for (int i = 0; i < 20; ++i) shallow += "]}";
  auto response = spindle_test::exchange(server.port,
                                         "POST /json HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                                         "Content-Length: " +
                                             std::to_string(shallow.size()) + "\r\n\r\n" + shallow);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->body, "20 nodes");
  record_outcome("arrays and objects nested 100,000 deep: 400 before any deep recursion; 20 levels are read",
                 observed + "20 levels: " + std::to_string(response->status) + " " + response->body);
  expect_normal_answer(server.port, "JSON nested 100,000 deep");
  server.stop();
}

/// `size` zero bytes as one raw DEFLATE stream, sync-flushed and without the final 00 00 ff ff, as
/// permessage-deflate puts a message on the wire.
std::string deflated_zeros(std::size_t size) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
  const std::string zeros(1024 * 1024, '\0');
  std::string out;
  char buffer[65536];
  for (std::size_t done = 0; done < size; done += zeros.size()) {
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    stream.avail_in = static_cast<uInt>(std::min(zeros.size(), size - done));
    const int flush = done + zeros.size() >= size ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    do {
      stream.next_out = reinterpret_cast<Bytef*>(buffer);
      stream.avail_out = sizeof buffer;
      deflate(&stream, flush);
      out.append(buffer, sizeof buffer - stream.avail_out);
    } while (stream.avail_out == 0);
  }
  deflateEnd(&stream);
  out.resize(out.size() - 4);
  return out;
}

long rss_kib(pid_t pid) {
  FILE* status = std::fopen(("/proc/" + std::to_string(pid) + "/status").c_str(), "r");
  if (status == nullptr) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, status) != nullptr)
    if (std::strncmp(line, "VmRSS:", 6) == 0) kib = std::atol(line + 6);
  std::fclose(status);
  return kib;
}

/// The head of a masked client frame announcing `size` payload bytes, and the first few of them: the
/// server refuses on the announced size, and a client still sending the rest when it closes would get a
/// reset that can destroy the Close frame in its receive buffer.
std::string frame_start(Opcode opcode, std::uint64_t size, bool fin) {
  char header[spindle::ws::detail::kMaxFrameHeader];
  const std::size_t length =
      spindle::ws::detail::encode_frame_header(header, opcode, fin, false, size, true, 0x5A3C9612);
  return std::string{header, length} + std::string(64, 'x');
}

// Messages over the 1 MiB limit, whole or in fragments, and an 8 MiB deflate bomb (about 8 KiB on the
// wire): each closes the socket with 1009, and the bomb is never inflated past the limit.
TEST(Floods, WebSocketMessagesOverTheLimitAndADeflateBombClose1009) {
  HostileServer server;
  ASSERT_GT(server.port, 0);
  std::string observed;
  {
    RawWebSocket socket(server.port, "/ws");
    socket.send(frame_start(Opcode::binary, 1024 * 1024 + 1, true));
    auto frame = socket.read_data_or_close();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->opcode, Opcode::close);
    EXPECT_EQ(frame->close_code(), 1009);
    EXPECT_TRUE(socket.closed_by_server());
    observed += "1 MiB + 1: close " + std::to_string(frame->close_code()) + "; ";
  }
  {
    RawWebSocket socket(server.port, "/ws");
    socket.send(client_frame(Opcode::binary, std::string(600 * 1024, 'x'), false));
    socket.send(frame_start(Opcode::continuation, 600 * 1024, true));
    auto frame = socket.read_data_or_close();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->close_code(), 1009);
    observed += "1.2 MiB in two fragments: close " + std::to_string(frame->close_code()) + "; ";
  }
  {
    RawWebSocket socket(server.port, "/ws", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
    const std::string bomb = deflated_zeros(std::size_t{8} << 20);
    ASSERT_LT(bomb.size(), 16u * 1024);
    socket.send(client_frame(Opcode::binary, bomb, true, true, true));
    auto frame = socket.read_data_or_close();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->close_code(), 1009);
    const long rss = rss_kib(server.process.pid());
    EXPECT_LT(rss, 64 * 1024) << "the server's RSS after the bomb, KiB";
    observed += "bomb (" + grouped(static_cast<long long>(bomb.size())) + " bytes on the wire): close " +
                std::to_string(frame->close_code()) + ", server RSS " + grouped(rss) + " KiB; ";
  }
  {
    // A message within the limit still goes through.
    RawWebSocket socket(server.port, "/ws");
    socket.send_frame(Opcode::text, "still here");
    auto frame = socket.read_data_or_close();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->payload, "still here");
    observed += "a small message afterwards: echoed";
  }
  record_outcome(
      "1009 for a 1 MiB + 1 message, for 1.2 MiB in fragments and for an 8 MiB deflate bomb; the "
      "server's RSS stays under 64 MiB; a small message is echoed afterwards",
      observed);
  expect_normal_answer(server.port, "oversized WebSocket messages and a deflate bomb");
  server.stop();
}

}  // namespace
