// Memory per idle task: spawns N tasks that each sleep (parked on a timer, the state of a request
// waiting for its database), then reports the growth of the resident set per task.
//   task_memory [N=1000000]

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "spindle/spindle.hpp"

using namespace std::chrono_literals;
using spindle::Task;

namespace {

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * ::sysconf(_SC_PAGESIZE);
}

Task<void> sleeper() { co_await spindle::sleep(1h); }

}  // namespace

int main(int argc, char** argv) {
  const long tasks = argc > 1 ? std::atol(argv[1]) : 1'000'000;
  spindle::Runtime runtime;
  runtime.block_on([](long n) -> Task<void> {
    co_await spindle::yield_now();
    const long before = resident_bytes();
    for (long i = 0; i < n; ++i) spindle::spawn(sleeper()).detach();
    co_await spindle::yield_now();  // every task has run once and is parked on its timer
    co_await spindle::yield_now();
    const long after = resident_bytes();
    std::printf("tasks=%ld live=%zu rss_delta=%ld bytes_per_task=%.1f\n", n, static_cast<std::size_t>(n),
                after - before, static_cast<double>(after - before) / static_cast<double>(n));
    std::printf(
        "frame of sleeper()=%zu bytes, task header=%zu bytes\n",
        [] {
          std::vector<Task<void>> keep;
          keep.push_back(sleeper());
          return spindle::detail::frame_stats().last_size;
        }(),
        sizeof(spindle::detail::SpawnedTask<void>));
  }(tasks));
  std::fflush(stdout);
  std::_Exit(0);  // skip tearing down a million tasks: the measurement is done
}
