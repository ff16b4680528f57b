#include "spindle/net/socket_address.hpp"

#include <gtest/gtest.h>

using spindle::SocketAddr;

namespace {

TEST(SocketAddr, ParsesIpv4Ipv6AndLocalhost) {
  auto v4 = SocketAddr::parse("127.0.0.1:8080");
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->family(), AF_INET);
  EXPECT_EQ(v4->port(), 8080);
  EXPECT_EQ(v4->to_string(), "127.0.0.1:8080");

  auto v6 = SocketAddr::parse("[::1]:0");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), AF_INET6);
  EXPECT_EQ(v6->to_string(), "[::1]:0");

  auto local = SocketAddr::parse("localhost:9");
  ASSERT_TRUE(local);
  EXPECT_EQ(local->to_string(), "127.0.0.1:9");

  auto any = SocketAddr::parse(":80");
  ASSERT_TRUE(any);
  EXPECT_EQ(any->to_string(), "0.0.0.0:80");
}

TEST(SocketAddr, RejectsMalformedInputWithAReason) {
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:80x", "300.0.0.1:80",
                          "example.com:80", "[::1:80", "[zz]:80"}) {
    auto parsed = SocketAddr::parse(bad);
    EXPECT_FALSE(parsed) << bad;
    if (!parsed) {
      EXPECT_FALSE(parsed.error().empty());
    }
  }
}

TEST(SocketAddr, PortCanBeChanged) {
  auto addr = SocketAddr::parse("[::1]:1");
  ASSERT_TRUE(addr);
  addr->set_port(4242);
  EXPECT_EQ(addr->to_string(), "[::1]:4242");
  EXPECT_EQ(*addr, *SocketAddr::parse("[::1]:4242"));
}

}  // namespace
