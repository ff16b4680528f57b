#pragma once
// What the hostile-client tests share: the target server as a child process (hostile_server.cpp), the
// test's own file limit raised for thousands of sockets, a raw non-blocking connect, and the check that
// ends every case: the server still answers a normal request.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/http_harness.hpp"

namespace spindle_test::hostile {

/// Raises this process's soft limit on open files to its hard limit (20,000 on these machines).
inline void raise_file_limit() {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

/// hostile_server in a child process on 127.0.0.1:0 (one worker unless `extra` says --workers); `prefix`
/// goes before it (prlimit to lower its file limit, taskset to pin it).
struct HostileServer {
  explicit HostileServer(std::vector<std::string> extra = {}, std::vector<std::string> prefix = {})
      : process([&] {
          std::vector<std::string> argv = std::move(prefix);
          argv.insert(argv.end(), {SPINDLE_HOSTILE_SERVER_BINARY, "--listen", "127.0.0.1:0"});
          argv.insert(argv.end(), extra.begin(), extra.end());
          return argv;
        }()) {
    auto banner = process.read_line(std::chrono::seconds(10));
    const std::string expected = "listening on 127.0.0.1:";
    if (banner && banner->rfind(expected, 0) == 0) port = std::stoi(banner->substr(expected.size()));
    EXPECT_GT(port, 0) << "banner: " << banner.value_or("") << "; stderr: " << process.drain_stderr();
  }
  /// SIGTERM and the exit status, which must be 0; what the server wrote on stderr.
  std::string stop() {
    process.signal(SIGTERM);
    EXPECT_EQ(process.wait(std::chrono::seconds(15)), 0);
    return process.drain_stderr();
  }

  ChildProcess process;
  int port = -1;
};

/// What the case expects and what it saw, for docs/reliability.md (scripts/reliability reads the tests'
/// JSON reports): recorded as the test's properties.
inline void record_outcome(const std::string& expected, const std::string& observed) {
  ::testing::Test::RecordProperty("expected", expected);
  ::testing::Test::RecordProperty("observed", observed);
}

/// `value` with thousands separators: 12345 -> "12,345".
inline std::string grouped(long long value) {
  const std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out = value < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

/// A normal request on a new connection gets its normal answer.
inline void expect_normal_answer(int port, const std::string& after) {
  std::optional<RawResponse> response;
  try {
    response = spindle_test::exchange(port, "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
  } catch (const std::exception& error) {
    ADD_FAILURE() << "after " << after << ": " << error.what();
    return;
  }
  ASSERT_TRUE(response) << "after " << after << ": no answer to a normal request";
  EXPECT_EQ(response->status, 200) << "after " << after;
  EXPECT_EQ(response->body, "Hello, World!") << "after " << after;
}

/// A connection whose connect() may still be in progress (thousands at once: the backlog fills).
inline int connect_nonblocking(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace spindle_test::hostile
