// The echo example from outside: a child process, blocking client sockets, signals, a lowered fd limit.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/child_process.hpp"

using namespace std::chrono_literals;
using spindle_test::ChildProcess;

namespace {

// "listening on 127.0.0.1:PORT" -> PORT
int port_from_banner(const std::string& line) {
  const std::string prefix = "listening on 127.0.0.1:";
  if (line.rfind(prefix, 0) != 0) return -1;
  return std::stoi(line.substr(prefix.size()));
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval limit{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

// Sends `message` and reads back as many bytes; "" on timeout or error.
std::string round_trip(int fd, const std::string& message) {
  if (::send(fd, message.data(), message.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(message.size())) return "";
  std::string back;
  char buffer[4096];
  while (back.size() < message.size()) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return "";
    back.append(buffer, static_cast<std::size_t>(n));
  }
  return back;
}

struct EchoServer {
  explicit EchoServer(std::vector<std::string> prefix, std::vector<std::string> extra = {})
      : process([&] {
          std::vector<std::string> argv = std::move(prefix);
          argv.insert(argv.end(), {SPINDLE_ECHO_BINARY, "--listen", "127.0.0.1:0"});
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    auto banner = process.read_line(10s);
    EXPECT_TRUE(banner) << "no banner; stderr: " << process.drain_stderr();
    if (banner) port = port_from_banner(*banner);
    EXPECT_GT(port, 0) << "banner: " << banner.value_or("");
  }
  ChildProcess process;
  int port = -1;
};

TEST(EchoExample, EchoesAndExitsZeroOnSigterm) {
  EchoServer server({});
  const int fd = connect_to(server.port);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(round_trip(fd, "hello"), "hello");
  const std::string big(200'000, 'x');
  EXPECT_EQ(round_trip(fd, big), big);
  ::close(fd);
  server.process.signal(SIGTERM);
  EXPECT_EQ(server.process.wait(10s), 0);
}

TEST(EchoExample, ExitsZeroOnSigintWithConnectionsOpen) {
  EchoServer server({}, {"--workers", "2"});
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(connect_to(server.port));
    ASSERT_GE(clients.back(), 0);
    EXPECT_EQ(round_trip(clients.back(), "ping " + std::to_string(i)), "ping " + std::to_string(i));
  }
  server.process.signal(SIGINT);
  EXPECT_EQ(server.process.wait(10s), 0);
  for (int fd : clients) ::close(fd);
}

TEST(EchoExample, RejectsABadListenAddress) {
  ChildProcess process({SPINDLE_ECHO_BINARY, "--listen", "not-an-address"});
  auto status = process.wait(10s);
  ASSERT_TRUE(status);
  EXPECT_NE(*status, 0);
  EXPECT_NE(process.drain_stderr().find("--listen"), std::string::npos);
}

// With the fd limit at 64, 150 clients exhaust the server's table. It must log once, back off without
// spinning (little CPU while the table is full), and serve the waiting clients once fds come back.
TEST(EchoExample, SurvivesFdExhaustionWithoutSpinning) {
  EchoServer server({"prlimit", "--nofile=64:64", "--"});
  std::vector<int> clients;
  for (int i = 0; i < 150; ++i) {
    const int fd = connect_to(server.port);  // completes in the kernel's backlog even when not accepted
    ASSERT_GE(fd, 0);
    clients.push_back(fd);
  }
  EXPECT_EQ(round_trip(clients[0], "first"), "first");
  std::this_thread::sleep_for(300ms);  // let the server hit the limit and start backing off

  const long before = server.process.cpu_ticks();
  std::this_thread::sleep_for(2s);
  const long used = server.process.cpu_ticks() - before;
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  EXPECT_LT(used, ticks_per_second / 5) << "the server used " << used << " ticks in 2 s while out of fds";

  const std::string log = server.process.drain_stderr();
  std::size_t count = 0;
  for (std::size_t at = log.find("backing off"); at != std::string::npos; at = log.find("backing off", at + 1)) ++count;
  EXPECT_EQ(count, 1u) << log;

  // Free the first 100 connections; the last clients, still in the backlog, must now be served.
  for (int i = 0; i < 100; ++i) ::close(clients[static_cast<std::size_t>(i)]);
  EXPECT_EQ(round_trip(clients[149], "late"), "late");
  EXPECT_EQ(round_trip(clients[120], "later"), "later");
  for (int i = 100; i < 150; ++i) ::close(clients[static_cast<std::size_t>(i)]);
  server.process.signal(SIGTERM);
  EXPECT_EQ(server.process.wait(10s), 0);
}

}  // namespace
