// Slowloris: 2,000 connections each send a request head a byte at a time and never finish it. The server
// holds no timer per connection for them (docs/architecture.md, "The HTTP server"), so normal clients
// must keep at least 90% of their throughput; and the header timeout must answer every slow connection
// 408 and close it. A throughput assertion: release build only (labelled slow). The server runs on core
// 0 and every client thread on core 1, and the normal clients pipeline, so that the server, not the
// clients, sets the pace: what the slow connections cost it shows in the figure.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "hostile/hostile_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace spindle_test;
using namespace spindle_test::hostile;

constexpr int kSlowConnections = 2000;
constexpr int kNormalClients = 4;
constexpr int kPipelined = 8;

/// Keeps the calling thread on core 1 (the server has core 0).
void pin_to_core_1() {
  cpu_set_t cores;
  CPU_ZERO(&cores);
  CPU_SET(1, &cores);
  ::sched_setaffinity(0, sizeof cores, &cores);
}

/// Requests per second that kNormalClients keep-alive clients get on /plaintext over `window`.
double requests_per_second(int port, std::chrono::milliseconds window) {
  std::atomic<long> answered{0};
  std::vector<std::thread> clients;
  const auto until = std::chrono::steady_clock::now() + window;
  for (int i = 0; i < kNormalClients; ++i) {
    clients.emplace_back([&] {
      pin_to_core_1();
      RawConnection connection(port);
      std::string batch;
      for (int k = 0; k < kPipelined; ++k) batch += "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
      while (std::chrono::steady_clock::now() < until) {
        connection.send(batch);
        for (int k = 0; k < kPipelined; ++k) {
          auto response = connection.read_response();
          if (!response || response->status != 200) return;
        }
        answered.fetch_add(kPipelined, std::memory_order_relaxed);
      }
    });
  }
  for (auto& client : clients) client.join();
  return static_cast<double>(answered.load()) / std::chrono::duration<double>(window).count();
}

/// 2,000 slow connections, each sending a byte of its head every 250 ms (a request line, then a field
/// value that never ends), from a thread on core 1, until destroyed (which closes them).
class Slowloris {
 public:
  explicit Slowloris(int port) {
    for (int i = 0; i < kSlowConnections; ++i) {
      const int fd = connect_nonblocking(port);
      if (fd < 0) throw std::runtime_error(std::string{"connect: "} + std::strerror(errno));
      fds_.push_back(fd);
    }
    dribbler_ = std::thread([this] {
      pin_to_core_1();
      const std::string head = "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: ";
      std::vector<std::size_t> sent(fds_.size(), 0);
      while (dribbling_.load()) {
        for (std::size_t i = 0; i < fds_.size(); ++i) {
          const char byte = sent[i] < head.size() ? head[sent[i]] : 'a';
          if (::send(fds_[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) ++sent[i];
        }
        std::this_thread::sleep_for(250ms);
      }
    });
  }
  Slowloris(const Slowloris&) = delete;
  Slowloris& operator=(const Slowloris&) = delete;
  ~Slowloris() {
    stop_dribbling();
    for (const int fd : fds_) ::close(fd);
  }
  void stop_dribbling() {
    dribbling_ = false;
    if (dribbler_.joinable()) dribbler_.join();
  }
  const std::vector<int>& fds() const { return fds_; }

 private:
  std::vector<int> fds_;
  std::atomic<bool> dribbling_{true};
  std::thread dribbler_;
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

TEST(Slowloris, NormalClientsKeepTheirThroughputAndSlowHeadsAreCutByTheTimeout) {
  if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs two cores: the server's and the clients'";
  raise_file_limit();
  HostileServer server({"--header-timeout-ms", "6000"}, {"taskset", "-c", "0"});
  ASSERT_GT(server.port, 0);

  // Throughput here drifts by 10-20% from one second to the next (a shared machine), more than the
  // effect measured. So alone and beside the slowloris alternate, 7 times, and each beside-window is
  // compared with the alone-window just before it; the median of those ratios is the figure.
  std::vector<double> alone, beside, ratios;
  for (int cycle = 0; cycle < 7; ++cycle) {
    alone.push_back(requests_per_second(server.port, 500ms));
    {
      Slowloris attack(server.port);
      std::this_thread::sleep_for(300ms);  // connected and dribbling
      beside.push_back(requests_per_second(server.port, 500ms));
    }
    ratios.push_back(beside.back() / alone.back());
    std::this_thread::sleep_for(200ms);  // the server sees the 2,000 closes
  }
  const double before = median(alone), during = median(beside), ratio = median(ratios);
  ASSERT_GT(before, 1000.0);
  EXPECT_GE(ratio, 0.9) << "normal clients: " << before << " req/s alone, " << during << " beside " << kSlowConnections
                        << " slowloris connections (medians of 7 windows each)";

  // Then 2,000 slow connections left to the header timeout.
  Slowloris attack(server.port);
  const std::vector<int>& slow = attack.fds();
  std::this_thread::sleep_for(1s);
  attack.stop_dribbling();

  // The header timeout runs from each head's first byte (6 s) and the sweeper looks a few times per
  // timeout: every slow connection must be answered and closed well within 8 s from here.
  std::vector<std::string> received(slow.size());
  std::vector<bool> closed(slow.size(), false);
  std::size_t closed_count = 0;
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (closed_count < slow.size() && std::chrono::steady_clock::now() < deadline) {
    std::vector<pollfd> watched;
    std::vector<std::size_t> index;
    for (std::size_t i = 0; i < slow.size(); ++i) {
      if (closed[i]) continue;
      watched.push_back({slow[i], POLLIN, 0});
      index.push_back(i);
    }
    if (::poll(watched.data(), watched.size(), 200) <= 0) continue;
    for (std::size_t k = 0; k < watched.size(); ++k) {
      if (watched[k].revents == 0) continue;
      const std::size_t i = index[k];
      char buffer[512];
      const ssize_t n = ::recv(slow[i], buffer, sizeof buffer, MSG_DONTWAIT);
      if (n > 0) {
        received[i].append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
        closed[i] = true;
        ++closed_count;
      }
    }
  }
  const auto answered_408 = std::count_if(received.begin(), received.end(),
                                          [](const std::string& r) { return r.rfind("HTTP/1.1 408 ", 0) == 0; });
  EXPECT_EQ(closed_count, slow.size()) << "slow connections still open after the header timeout";
  EXPECT_EQ(answered_408, kSlowConnections) << "slow connections answered 408 before being closed";

  record_outcome(
      "normal clients keep >= 90% of their throughput; every slow connection gets 408 and is closed "
      "by the 6 s header timeout; a normal request is answered afterwards",
      "normal clients: " + grouped(static_cast<long long>(before)) + " req/s alone, " +
          grouped(static_cast<long long>(during)) +
          " beside the slow ones (medians of 7 alternating "
          "windows; the median ratio " +
          std::to_string(static_cast<int>(100 * ratio)) + "%); " + grouped(answered_408) + " of " +
          grouped(kSlowConnections) + " slow connections answered 408, " +
          grouped(static_cast<long long>(closed_count)) + " closed");
  expect_normal_answer(server.port, "2,000 slowloris connections");
  server.stop();
}

}  // namespace
