// The floor for bench/http/compare.sh: a single-threaded edge-triggered epoll loop that answers every
// read with a fixed /plaintext response. It parses nothing, routes nothing and formats no date, so its
// CPU time per request is what the kernel's socket work costs on this machine; a real server can only
// add to it.
//   floor_server PORT
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
constexpr char kResponse[] =
    "HTTP/1.1 200 OK\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
    "Hello, World!";
}

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8081;
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 || ::listen(listener, 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  const int epoll = ::epoll_create1(0);
  epoll_event event{EPOLLIN, {.fd = listener}};
  ::epoll_ctl(epoll, EPOLL_CTL_ADD, listener, &event);
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
  epoll_event events[256];
  char buffer[16384];
  for (;;) {
    const int n = ::epoll_wait(epoll, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        for (int client; (client = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK)) >= 0;) {
          ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{EPOLLIN | EPOLLET, {.fd = client}};
          ::epoll_ctl(epoll, EPOLL_CTL_ADD, client, &e);
        }
        continue;
      }
      for (;;) {
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) {
          if (got == 0) ::close(fd);
          break;
        }
        // One response per request line: count the request heads in what arrived.
        int requests = 0;
        for (ssize_t j = 3; j < got; ++j)
          if (std::memcmp(buffer + j - 3, "\r\n\r\n", 4) == 0) ++requests;
        static char out[sizeof kResponse * 64];
        int length = 0;
        for (int r = 0; r < requests && r < 64; ++r) {
          std::memcpy(out + length, kResponse, sizeof kResponse - 1);
          length += sizeof kResponse - 1;
        }
        if (length > 0) (void)::send(fd, out, static_cast<std::size_t>(length), MSG_NOSIGNAL);
        if (got < static_cast<ssize_t>(sizeof buffer)) break;  // drained
      }
    }
  }
}
