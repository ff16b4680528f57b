// A TCP echo server: every byte a client sends comes back.
//   echo --listen 127.0.0.1:7000 --workers 2
#include <spindle/spindle.hpp>

#include "server_main.hpp"

using namespace spindle;

Task<void> echo(TcpStream stream) {
  std::array<std::byte, 4096> buffer;
  for (;;) {
    IoResult<std::size_t> n = co_await stream.read(buffer);
    if (!n || *n == 0) co_return;  // an error, or the client closed its side
    if (!co_await stream.write_all(std::span{buffer}.first(*n))) co_return;
  }
}

Task<void> stopped(CancellationToken stop) { co_await stop.cancelled(); }

Task<void> serve(TcpListener listener, CancellationToken stop) {
  for (;;) {
    // accept() backs off by itself when out of fds
    // Named operands: GCC 12 destroys temporaries made inside a co_await expression twice.
    Task<IoResult<TcpListener::Accepted>> accepting = listener.accept();
    Task<void> stopping = stopped(stop);
    auto next = co_await select(std::move(accepting), std::move(stopping));
    if (next.index() == 1) co_return;  // SIGTERM: open connections end with the runtime
    auto& accepted = std::get<0>(next);
    if (!accepted) co_return;  // the listener itself failed
    spawn(echo(std::move(accepted->stream))).detach();
  }
}

int main(int argc, char** argv) {
  return examples::run_server(examples::parse_server_args(argc, argv, "TCP echo server"), serve);
}
