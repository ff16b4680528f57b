// Memory a server spends per connection, read from its /proc/PID/status (VmRSS) while this program holds
// N connections open against it (bench/http/memory.sh runs it):
//   idle     every connection makes one keep-alive request (GET /plaintext), then stays open and silent;
//            reports (RSS after - RSS before) / N once the responses are in;
//   waiting  every connection sends GET /delay?ms=D at once and waits; reports the peak RSS growth
//            (VmRSS sampled every 10 ms) while the requests are in flight, then checks every answer.
//   connection_memory --port 8080 --pid 1234 --connections 10000 --mode idle
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval limit{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  return fd;
}

// Reads one response with a Content-Length body; true if its status is 200.
bool read_response(int fd) {
  std::string data;
  char chunk[4096];
  for (;;) {
    const std::size_t head_end = data.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::size_t length = 0;
      for (const char* name : {"Content-Length: ", "content-length: "}) {
        const std::size_t at = data.find(name);
        if (at != std::string::npos && at < head_end) length = std::stoul(data.substr(at + std::strlen(name)));
      }
      if (data.size() >= head_end + 4 + length) return data.compare(0, 12, "HTTP/1.1 200") == 0;
    }
    const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    data.append(chunk, static_cast<std::size_t>(n));
  }
}

void send_all(int fd, const std::string& bytes) {
  if (::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) {
    std::perror("send");
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"per-connection memory of an HTTP server"};
  int port = 0, pid = 0, connections = 10000, delay_ms = 3000;
  std::string mode = "idle";
  app.add_option("--port", port)->required();
  app.add_option("--pid", pid, "the server process whose VmRSS is read")->required();
  app.add_option("--connections", connections);
  app.add_option("--mode", mode)->check(CLI::IsMember({"idle", "waiting"}));
  app.add_option("--delay-ms", delay_ms, "waiting: how long each request waits in the server");
  CLI11_PARSE(app, argc, argv);

  const long before = rss_kib(pid);
  std::vector<int> fds;
  fds.reserve(static_cast<std::size_t>(connections));
  int ok = 0;
  long peak = before;
  const auto start = std::chrono::steady_clock::now();
  if (mode == "idle") {
    const std::string request = "GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n";
    for (int i = 0; i < connections; ++i) {
      fds.push_back(connect_to(port));
      send_all(fds.back(), request);
      ok += read_response(fds.back());
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let the server settle
    peak = rss_kib(pid);
  } else {
    const std::string request = "GET /delay?ms=" + std::to_string(delay_ms) + " HTTP/1.1\r\nHost: bench\r\n\r\n";
    for (int i = 0; i < connections; ++i) {
      fds.push_back(connect_to(port));
      send_all(fds.back(), request);
    }
    const auto sent = std::chrono::steady_clock::now();
    // All requests are in flight now (the wait is far longer than sending them took): sample until the
    // first answers are due.
    while (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(delay_ms) * 9 / 10) {
      peak = std::max(peak, rss_kib(pid));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    for (int fd : fds) ok += read_response(fd);
    if (sent - start > std::chrono::milliseconds(delay_ms) / 2)
      std::fprintf(stderr, "warning: sending took longer than half the delay; not all requests overlapped\n");
  }
  const long growth = peak - before;
  std::printf("mode=%s connections=%d ok=%d rss_before_kib=%ld rss_kib=%ld growth_kib=%ld bytes_per_connection=%.0f\n",
              mode.c_str(), connections, ok, before, peak, growth, growth * 1024.0 / connections);
  for (int fd : fds) ::close(fd);
  return ok == connections ? 0 : 1;
}
