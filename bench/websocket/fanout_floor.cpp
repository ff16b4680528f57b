// The floor under a broadcast's fan-out on this machine: one plain send() of a small WebSocket frame to
// each of N connected loopback TCP sockets, in a loop, with nothing else (no runtime, no frame encoding,
// no reads on the other side). Whatever a server does on top, it cannot deliver faster than this; on
// loopback the sending core also runs the receiving side of TCP, which is most of the cost.
//
//   taskset -c 0 fanout_floor --connections 10000 --rounds 20
//
// Prints the time per round (all N sends) as the median of the rounds, and per send.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  int connections = 10000, rounds = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--connections") == 0) connections = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
  }
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(listener, 4096) != 0) {
    std::perror("listen");
    return 1;
  }
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
  std::vector<int> clients, servers;
  for (int i = 0; i < connections; ++i) {
    const int client = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      std::perror("connect");
      return 1;
    }
    const int server = accept(listener, nullptr, nullptr);
    const int one = 1;
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    clients.push_back(client);
    servers.push_back(server);
  }
  const char frame[] =
      "\x81\x12"
      "b 1 12345678901234";  // an unmasked 18-byte text frame
  std::vector<double> per_round_ms;
  for (int round = 0; round < rounds; ++round) {
    const auto start = std::chrono::steady_clock::now();
    for (int fd : servers)
      if (send(fd, frame, sizeof frame - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) std::perror("send");
    per_round_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    // Drain the receivers so that no buffer fills over the rounds (not timed).
    char sink[64];
    for (int fd : clients) (void)recv(fd, sink, sizeof sink, MSG_DONTWAIT);
  }
  std::sort(per_round_ms.begin(), per_round_ms.end());
  const double median = per_round_ms[per_round_ms.size() / 2];
  std::printf("connections=%d rounds=%d median_round_ms=%.2f per_send_us=%.2f\n", connections, rounds, median,
              median * 1000.0 / connections);
  return 0;
}
