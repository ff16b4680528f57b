#pragma once
// An example server as a user starts it: a child process on 127.0.0.1:0, whose banner
// ("listening on 127.0.0.1:PORT") gives the port.

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
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
  /// SIGTERM; the exit status must be 0. Returns what the process wrote on stderr.
  std::string stop() {
    stopped = true;
    process.signal(SIGTERM);
    const auto status = process.wait(std::chrono::seconds(15));
    std::string errors = process.drain_stderr();
    EXPECT_EQ(status, 0) << errors;
    return errors;
  }

  ChildProcess process;
  int port = -1;
  bool stopped = false;  ///< stop() was called (or the test reaped the process itself)
};

}  // namespace spindle_test
