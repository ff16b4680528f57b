#pragma once
// An example server as a user starts it: a child process on 127.0.0.1:0, whose banner
// ("listening on 127.0.0.1:PORT") gives the port.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace spindle_test {

struct ExampleServer {
  explicit ExampleServer(std::string binary, std::vector<std::string> extra = {}, const ChildOptions& options = {})
      : process(
            [&] {
              std::vector<std::string> argv = {std::move(binary), "--listen", "127.0.0.1:0"};
              argv.insert(argv.end(), extra.begin(), extra.end());
              return argv;
            }(),
            options) {
    auto banner = process.read_line(std::chrono::seconds(10));
    EXPECT_TRUE(banner) << "no banner; stderr: " << process.drain_stderr();
    const std::string prefix = "listening on 127.0.0.1:";
    if (banner && banner->rfind(prefix, 0) == 0) port = std::stoi(banner->substr(prefix.size()));
    EXPECT_GT(port, 0) << "banner: " << banner.value_or("");
  }
  ChildProcess process;
  int port = -1;
};

}  // namespace spindle_test
