#include <gtest/gtest.h>

#include "support/co_assert.hpp"

#include <array>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "spindle/net/tcp_listener.hpp"
#include "spindle/net/tcp_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"

using namespace std::chrono_literals;
using spindle::IoResult;
using spindle::Runtime;
using spindle::SocketAddr;
using spindle::Task;
using spindle::TcpListener;
using spindle::TcpStream;

namespace {

SocketAddr any_loopback_port() { return *SocketAddr::parse("127.0.0.1:0"); }

Task<std::string> read_to_end(TcpStream& stream) {
  std::string out;
  std::array<char, 4096> buffer;
  for (;;) {
    IoResult<std::size_t> n = co_await stream.read(buffer);
    if (!n || *n == 0) co_return out;
    out.append(buffer.data(), *n);
  }
}

Task<void> echo_once(TcpListener& listener) {
  auto accepted = co_await listener.accept();
  EXPECT_TRUE(accepted);
  if (!accepted) co_return;
  std::array<std::byte, 1024> buffer;
  for (;;) {
    auto n = co_await accepted->stream.read(buffer);
    if (!n || *n == 0) co_return;
    EXPECT_TRUE(co_await accepted->stream.write_all(std::span{buffer}.first(*n)));
  }
}

TEST(Tcp, ConnectWriteReadAndClose) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    EXPECT_TRUE(listener);
    const SocketAddr address = *listener->local_addr();
    EXPECT_NE(address.port(), 0);
    auto server = spindle::spawn(echo_once(*listener));

    auto client = co_await TcpStream::connect(address);
    EXPECT_TRUE(client);
    EXPECT_EQ(client->peer_addr()->port(), address.port());
    EXPECT_TRUE(co_await client->write_all("hello, spindle"));
    EXPECT_TRUE(client->shutdown(spindle::Shutdown::write));
    EXPECT_EQ(co_await read_to_end(*client), "hello, spindle");
    EXPECT_TRUE(co_await std::move(server));
  }());
}

// Four megabytes through a loopback connection: writes block on a full socket buffer and resume when
// the reader drains it, so both sides park in the reactor many times.
TEST(Tcp, LargeTransfersParkAndResumeBothDirections) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    const SocketAddr address = *listener->local_addr();
    auto server = spindle::spawn(echo_once(*listener));
    auto client = co_await TcpStream::connect(address);
    EXPECT_TRUE(client);

    std::vector<std::byte> payload(4 << 20);
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<std::byte>(i * 7 + (i >> 12));
    auto writer = spindle::spawn([](TcpStream& stream, std::vector<std::byte>& data) -> Task<void> {
      EXPECT_TRUE(co_await stream.write_all(data));
      EXPECT_TRUE(stream.shutdown(spindle::Shutdown::write));
    }(*client, payload));
    std::string received = co_await read_to_end(*client);
    EXPECT_TRUE(co_await std::move(writer));
    CO_ASSERT(received.size() == payload.size());
    EXPECT_EQ(std::memcmp(received.data(), payload.data(), payload.size()), 0);
    EXPECT_TRUE(co_await std::move(server));
  }());
}

// The last bytes and the FIN arrive together and their one edge is spent before the read: the short read
// that takes the bytes must not leave the socket "not ready", or the next read parks forever.
TEST(Tcp, ShortReadBeforeAPendingFinStillSeesEndOfStream) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    auto client = co_await TcpStream::connect(*listener->local_addr());
    auto accepted = co_await listener->accept();
    CO_ASSERT(client && accepted);
    std::array<char, 64> buffer;
    // Park a read first, so the client's fd is in epoll when the data and the FIN come.
    auto first_wait = co_await spindle::timeout(5ms, client->read(buffer));
    EXPECT_FALSE(first_wait);
    EXPECT_TRUE(co_await accepted->stream.write_all("last words"));
    accepted->stream.close();
    co_await spindle::sleep(20ms);  // both arrived; the reactor has seen (and spent) their edge
    auto bytes = co_await client->read(buffer);
    EXPECT_EQ(bytes.value(), 10u);
    auto end = co_await spindle::timeout(2s, client->read(buffer));
    CO_ASSERT(end);
    EXPECT_EQ(end->value(), 0u);
  }());
}

TEST(Tcp, VectoredReadAndWrite) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    auto client = co_await TcpStream::connect(*listener->local_addr());
    auto accepted = co_await listener->accept();
    EXPECT_TRUE(client && accepted);

    std::string head = "HEAD|", body = "BODY";
    std::array<iovec, 2> out{iovec{head.data(), head.size()}, iovec{body.data(), body.size()}};
    auto written = co_await client->writev(out);
    EXPECT_EQ(written.value(), head.size() + body.size());

    std::array<char, 3> first{};
    std::array<char, 6> second{};
    std::array<iovec, 2> in{iovec{first.data(), first.size()}, iovec{second.data(), second.size()}};
    std::size_t total = 0;
    while (total < 9) {
      auto n = co_await accepted->stream.readv(in);
      EXPECT_TRUE(n);
      total += *n;
      if (*n == 0) break;
    }
    EXPECT_EQ(std::string(first.data(), 3) + std::string(second.data(), 6), "HEAD|BODY");
  }());
}

TEST(Tcp, Ipv6Loopback) {
  auto listener = TcpListener::bind(*SocketAddr::parse("[::1]:0"));
  if (!listener && listener.error() == std::errc::address_not_available) GTEST_SKIP() << "no IPv6 loopback here";
  ASSERT_TRUE(listener);
  Runtime runtime;
  runtime.block_on([](TcpListener& l) -> Task<void> {
    const SocketAddr address = *l.local_addr();
    EXPECT_EQ(address.family(), AF_INET6);
    auto server = spindle::spawn(echo_once(l));
    auto client = co_await TcpStream::connect(address);
    CO_ASSERT(client);
    EXPECT_TRUE(co_await client->write_all("over v6"));
    EXPECT_TRUE(client->shutdown(spindle::Shutdown::write));
    EXPECT_EQ(co_await read_to_end(*client), "over v6");
    EXPECT_TRUE(co_await std::move(server));
  }(*listener));
}

TEST(Tcp, ConnectionRefusedIsAnError) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    // Bind then close a listener to get a port where nothing listens.
    SocketAddr address;
    {
      auto listener = TcpListener::bind(any_loopback_port());
      address = *listener->local_addr();
    }
    auto client = co_await TcpStream::connect(address);
    CO_ASSERT(!(client));
    EXPECT_EQ(client.error(), std::errc::connection_refused);
  }());
}

TEST(Tcp, WritingToAClosedPeerIsEpipeNotSigpipe) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    auto client = co_await TcpStream::connect(*listener->local_addr());
    {
      auto accepted = co_await listener->accept();
      EXPECT_TRUE(accepted);
    }  // the server side closes
    std::vector<std::byte> chunk(64 * 1024);
    IoResult<void> result;
    for (int i = 0; i < 100 && result; ++i) {
      result = co_await client->write_all(chunk);
      co_await spindle::sleep(1ms);
    }
    CO_ASSERT(!(result));  // and the process is still alive to check it
    EXPECT_TRUE(result.error() == std::errc::broken_pipe || result.error() == std::errc::connection_reset);
  }());
}

TEST(Tcp, ReusePortLetsTwoListenersShareAPort) {
  auto first = TcpListener::bind(any_loopback_port(), {.backlog = 16, .reuse_address = true, .reuse_port = true});
  ASSERT_TRUE(first);
  const SocketAddr address = *first->local_addr();
  auto second = TcpListener::bind(address, {.backlog = 16, .reuse_address = true, .reuse_port = true});
  EXPECT_TRUE(second);
  auto without = TcpListener::bind(address);
  ASSERT_FALSE(without);
  EXPECT_EQ(without.error(), std::errc::address_in_use);
}

TEST(Tcp, CancellingAParkedAcceptWithdrawsIt) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto listener = TcpListener::bind(any_loopback_port());
    auto waiting = co_await spindle::timeout(10ms, listener->accept());
    EXPECT_FALSE(waiting);
    // The listener still works: a new accept parks in the now free slot.
    auto client_task = spindle::spawn(TcpStream::connect(*listener->local_addr()));
    auto accepted = co_await spindle::timeout(5s, listener->accept());
    EXPECT_TRUE(accepted && *accepted);
    auto client = co_await std::move(client_task);
    EXPECT_TRUE(client && *client);
  }());
}

TEST(Tcp, ManyConcurrentConnections) {
  Runtime runtime;
  const int served = runtime.block_on([]() -> Task<int> {
    auto listener = TcpListener::bind(any_loopback_port());
    const SocketAddr address = *listener->local_addr();
    constexpr int kClients = 500;
    auto server = spindle::spawn([](TcpListener& l) -> Task<void> {
      for (int i = 0; i < kClients; ++i) {
        auto accepted = co_await l.accept();
        if (!accepted) co_return;
        spindle::spawn([](TcpStream s) -> Task<void> {
          std::array<std::byte, 64> b;
          for (;;) {
            auto n = co_await s.read(b);
            if (!n || *n == 0) co_return;
            (void)co_await s.write_all(std::span{b}.first(*n));
          }
        }(std::move(accepted->stream)))
            .detach();
      }
    }(*listener));
    std::vector<spindle::JoinHandle<bool>> clients;
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(spindle::spawn([](SocketAddr a, int id) -> Task<bool> {
        auto s = co_await TcpStream::connect(a);
        if (!s) co_return false;
        const std::string message = "client " + std::to_string(id);
        if (!co_await s->write_all(message)) co_return false;
        std::string back(message.size(), '\0');
        std::size_t got = 0;
        while (got < back.size()) {
          auto n = co_await s->read(std::span{back}.subspan(got));
          if (!n || *n == 0) co_return false;
          got += *n;
        }
        co_return back == message;
      }(address, i)));
    }
    int ok = 0;
    for (auto& c : clients) ok += (co_await std::move(c)).value_or(false) ? 1 : 0;
    (void)co_await std::move(server);
    co_return ok;
  }());
  EXPECT_EQ(served, 500);
}

}  // namespace
