#include <gtest/gtest.h>

#include <unistd.h>
#include "support/co_assert.hpp"

#include <array>
#include <string>
#include <thread>

#include "spindle/net/unix_stream.hpp"
#include "spindle/runtime/runtime.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"

using spindle::Runtime;
using spindle::Task;
using spindle::UnixListener;
using spindle::UnixStream;

namespace {

std::string temp_socket_path() { return "/tmp/spindle-unix-test-" + std::to_string(::getpid()) + ".sock"; }

TEST(Unix, ListenerAcceptsAndStreamsTalk) {
  const std::string path = temp_socket_path();
  ::unlink(path.c_str());
  Runtime runtime;
  runtime.block_on([](std::string socket_path) -> Task<void> {
    auto listener = UnixListener::bind(socket_path);
    EXPECT_TRUE(listener);
    auto server = spindle::spawn([](UnixListener& l) -> Task<std::string> {
      auto accepted = co_await l.accept();
      if (!accepted) co_return "accept failed";
      std::array<char, 64> buffer;
      auto n = co_await accepted->read(buffer);
      if (!n) co_return "read failed";
      (void)co_await accepted->write_all("pong");
      co_return std::string(buffer.data(), *n);
    }(*listener));
    auto client = co_await UnixStream::connect(socket_path);
    EXPECT_TRUE(client);
    EXPECT_TRUE(co_await client->write_all("ping"));
    std::array<char, 8> reply{};
    auto n = co_await client->read(reply);
    EXPECT_EQ(std::string(reply.data(), n.value()), "pong");
    EXPECT_EQ((co_await std::move(server)).value(), "ping");
  }(path));
  ::unlink(path.c_str());
}

TEST(Unix, PairIsConnectedBothWays) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto pair = UnixStream::pair();
    EXPECT_TRUE(pair);
    auto& [a, b] = *pair;
    EXPECT_TRUE(co_await a.write_all("to b"));
    EXPECT_TRUE(co_await b.write_all("to a"));
    std::array<char, 4> buffer{};
    EXPECT_EQ((co_await b.read(buffer)).value(), 4u);
    EXPECT_EQ(std::string(buffer.data(), 4), "to b");
    EXPECT_EQ((co_await a.read(buffer)).value(), 4u);
    EXPECT_EQ(std::string(buffer.data(), 4), "to a");
    a.close();
    EXPECT_EQ((co_await b.read(buffer)).value(), 0u);  // end of stream
  }());
}

// One task waits in read() while another closes the stream: the read ends with ECANCELED (it does not
// hang, and nothing touches the freed registration: ASan checks that).
TEST(Unix, ClosingAStreamEndsTheReadParkedOnIt) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto pair = UnixStream::pair();
    CO_ASSERT(pair);
    auto& [a, b] = *pair;
    auto reader = spindle::spawn([](UnixStream& stream) -> Task<spindle::IoResult<std::size_t>> {
      std::array<char, 16> buffer;
      co_return co_await stream.read(buffer);
    }(a));
    co_await spindle::yield_now();  // the reader parks
    a.close();
    auto outcome = co_await std::move(reader);
    CO_ASSERT(outcome);
    CO_ASSERT(!*outcome);
    EXPECT_EQ(outcome->error(), std::errc::operation_canceled);
  }());
}

TEST(Unix, ConnectToAMissingPathFails) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto client = co_await UnixStream::connect("/tmp/spindle-no-such-socket");
    EXPECT_FALSE(client);
    auto too_long = co_await UnixStream::connect(std::string(200, 'x'));
    EXPECT_FALSE(too_long);
  }());
}

}  // namespace

namespace {

TEST(Unix, OperationsOnAClosedStreamFailWithEbadf) {
  Runtime runtime;
  runtime.block_on([]() -> Task<void> {
    auto pair = UnixStream::pair();
    CO_ASSERT(pair);
    auto& [a, b] = *pair;
    a.close();
    std::array<char, 4> buffer;
    auto n = co_await a.read(buffer);
    CO_ASSERT(!n);
    EXPECT_EQ(n.error(), std::errc::bad_file_descriptor);
    auto w = co_await a.write_all("x");
    EXPECT_FALSE(w);
  }());
}

// Sockets that outlive the runtime they waited on can be used by a later runtime; while that first
// runtime lives, another runtime cannot take them (its reactor belongs to its own thread).
TEST(Unix, SocketsOutliveTheirRuntimeButDoNotMoveBetweenLiveOnes) {
  auto pair = UnixStream::pair();
  ASSERT_TRUE(pair);
  auto other = UnixStream::pair();
  ASSERT_TRUE(other);
  auto park_once = [](UnixStream& s) -> Task<void> {
    std::array<char, 1> buffer;
    (void)co_await spindle::timeout(std::chrono::milliseconds(1), s.read(buffer));  // registers it
  };
  {
    Runtime first;
    first.block_on(park_once(pair->first));
    first.block_on(park_once(other->first));  // a second registration, ahead in the reactor's list
    Runtime second;
    std::thread([&] {
      second.block_on([](UnixStream& s) -> Task<void> {
        std::array<char, 1> buffer;
        auto n = co_await s.read(buffer);
        EXPECT_TRUE(!n && n.error() == std::errc::operation_not_supported);
      }(pair->first));
    }).join();
  }
  other->first.close();  // freed after its runtime: must not disturb the other's links
  Runtime later;
  later.block_on([](UnixStream& s, UnixStream& peer) -> Task<void> {
    EXPECT_TRUE(co_await peer.write_all("z"));
    std::array<char, 1> buffer;
    auto n = co_await s.read(buffer);
    EXPECT_EQ(n.value(), 1u);
    s.close();
  }(pair->first, pair->second));
}

}  // namespace
