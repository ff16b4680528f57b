// Memory per idle task: spawns N tasks that each sleep (parked on a timer, the state of a request
// waiting for its database), then reports the growth of the resident set per task.
//   task_memory [N=1000000] [current_thread|multi_thread]   (multi_thread: two workers)

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <vector>

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
  const bool multi_thread = argc > 2 && std::string_view(argv[2]) == "multi_thread";
  spindle::Runtime runtime =
      multi_thread ? spindle::Runtime::multi_thread().worker_threads(2).build() : spindle::Runtime{};
  runtime.block_on([](long n, spindle::Runtime& rt) -> Task<void> {
    co_await spindle::yield_now();
    const long before = resident_bytes();
    const std::uint64_t polls_before = rt.metrics().polls;
    for (long i = 0; i < n; ++i) spindle::spawn(sleeper()).detach();
    // Every task has run once and is parked on its timer.
    while (rt.metrics().polls - polls_before < static_cast<std::uint64_t>(n)) co_await spindle::sleep(10ms);
    const long after = resident_bytes();
    std::printf("tasks=%ld live=%zu rss_delta=%ld bytes_per_task=%.1f\n", n, rt.live_tasks() - 1, after - before,
                static_cast<double>(after - before) / static_cast<double>(n));
    std::printf(
        "frame of sleeper()=%zu bytes, task header=%zu bytes\n",
        [] {
          std::vector<Task<void>> keep;
          keep.push_back(sleeper());
          return spindle::detail::frame_stats().last_size;
        }(),
        sizeof(spindle::detail::SpawnedTask<void>));
  }(tasks, runtime));
  std::fflush(stdout);
  std::_Exit(0);  // skip tearing down a million tasks: the measurement is done
}
