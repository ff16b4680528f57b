// Prints the frame size the compiler asks for (through the promise's operator new) for a few typical
// coroutines. Compilers keep in the frame what lives across an await, and often more; the figures
// go to docs/benchmarks.md per compiler.

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "spindle/runtime/detail/frame_allocator.hpp"
#include "spindle/spindle.hpp"

using spindle::Task;

namespace {

Task<void> empty() { co_return; }

Task<int> add(int a, int b) { co_return a + b; }

// A connection loop as the echo example writes it, with its 4 KiB buffer in the frame.
Task<void> echo_connection(spindle::TcpStream stream) {
  std::array<std::byte, 4096> buffer;
  for (;;) {
    auto n = co_await stream.read(buffer);
    if (!n || *n == 0) co_return;
    if (!co_await stream.write_all(std::span{buffer}.first(*n))) co_return;
  }
}

// The same loop with the buffer on the heap: what a long-lived connection frame should look like.
Task<void> echo_connection_heap_buffer(spindle::TcpStream stream) {
  std::vector<std::byte> buffer(4096);
  for (;;) {
    auto n = co_await stream.read(buffer);
    if (!n || *n == 0) co_return;
    if (!co_await stream.write_all(std::span{buffer}.first(*n))) co_return;
  }
}

// Locals dead before the await: may they stay out of the frame? (GCC 12 and clang 19 both keep them.)
Task<int> scratch_before_await() {
  std::array<char, 512> scratch{};
  for (std::size_t i = 0; i < scratch.size(); ++i) scratch[i] = static_cast<char>(i);
  int sum = 0;
  for (char c : scratch) sum += c;
  co_await empty();
  co_return sum;
}

template <class Make>
void report(const char* name, Make make) {
  std::vector<decltype(make())> kept;  // escaping, so no allocation is elided
  kept.push_back(make());
  std::printf("%-44s %5zu bytes\n", name, spindle::detail::frame_stats().last_size);
}

}  // namespace

int main() {
#if defined(__clang__)
  std::printf("compiler: clang %d.%d\n", __clang_major__, __clang_minor__);
#else
  std::printf("compiler: gcc %d.%d\n", __GNUC__, __GNUC_MINOR__);
#endif
  report("Task<void> empty()", [] { return empty(); });
  report("Task<int> add(int, int)", [] { return add(1, 2); });
  report("echo connection, 4 KiB buffer in frame", [] { return echo_connection(spindle::TcpStream{}); });
  report("echo connection, heap buffer", [] { return echo_connection_heap_buffer(spindle::TcpStream{}); });
  report("512-byte scratch dead before its await", [] { return scratch_before_await(); });
  report("TcpStream::write_all (library)", [] {
    static spindle::TcpStream stream;
    return stream.write_all(std::string_view("x"));
  });
  std::printf("%-44s %5zu bytes\n", "spawned task header (SpawnedTask<void>)",
              sizeof(spindle::detail::SpawnedTask<void>));
  std::printf("%-44s %5zu bytes\n", "socket registration (IoRegistration)", sizeof(spindle::detail::IoRegistration));
}
