// Built against an installed Spindle by tests/install_consumer_test.sh.
#include <spindle/spindle.hpp>

#include <chrono>
#include <cstdio>

spindle::Task<int> answer() {
  co_await spindle::sleep(std::chrono::milliseconds(1));
  co_return 42;
}

int main() {
  spindle::Runtime runtime;
  std::printf("consumer: %d\n", runtime.block_on(answer()));
}
