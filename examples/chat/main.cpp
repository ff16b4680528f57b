// A chat room: every text message a client sends on GET /ws goes to every connected client (the sender
// too), GET /events streams the same messages as server-sent events, and GET / is a page to use it.
// Both feeds read one ws::Broadcast: a message is encoded once for every socket.
//
//   chat --listen 127.0.0.1:8080 --workers 2 [--compression] [--ping-interval 30]
//
// It is also the server of bench/websocket, which holds 50,000 sockets open on it.
#include <spindle/http.hpp>
#include <spindle/spindle.hpp>
#include <spindle/ws.hpp>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;

namespace {

constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>Spindle chat</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; }
  #log { border: 1px solid #ccc; height: 20rem; overflow-y: auto; padding: .5rem; white-space: pre-wrap; }
  form { display: flex; gap: .5rem; margin-top: .5rem; } input { flex: 1; }
</style>
<h1>Spindle chat</h1>
<p id="status">connecting…</p>
<div id="log"></div>
<form id="form"><input id="text" autocomplete="off" placeholder="say something"><button>Send</button></form>
<script>
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const socket = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  socket.onopen = () => { status.textContent = 'connected'; };
  socket.onclose = (event) => { status.textContent = `disconnected (${event.code})`; };
  socket.onmessage = (event) => {
    const line = document.createElement('div');
    line.textContent = event.data;
    log.append(line);
    log.scrollTop = log.scrollHeight;
  };
  document.getElementById('form').onsubmit = (event) => {
    event.preventDefault();
    const input = document.getElementById('text');
    if (input.value && socket.readyState === WebSocket.OPEN) socket.send(input.value);
    input.value = '';
  };
</script>
</html>
)html";

struct ChatArgs {
  bool compression = false;
  unsigned ping_interval = 0;  // seconds; 0: no keep-alive pings
};

Router<> chat_routes(ws::Broadcast& room, const ChatArgs& chat) {
  ws::Config config;
  config.max_message_size = 64 * 1024;
  if (chat.compression) config.compression = ws::DeflateConfig{};
  config.ping_interval = std::chrono::seconds(chat.ping_interval);
  Router<> router;
  router.route("/", get([] { return Html{std::string{kPage}}; }));
  router.route("/events", get([&room] { return room.event_stream(); }));
  router.route("/ws", get([&room, config](ws::WebSocketUpgrade upgrade) {
                 return upgrade.config(config).on_upgrade([&room](ws::WebSocket socket) -> Task<void> {
                   socket.join(room);  // the room's messages go out on this socket while it receives
                   for (;;) {
                     auto message = co_await socket.recv();
                     if (!message || message->is_close()) co_return;
                     if (message->is_text()) room.send(std::move(*message));
                   }
                 });
               }));
  return router;
}

}  // namespace

int main(int argc, char** argv) {
  ChatArgs chat;
  const examples::ServerArgs args =
      examples::parse_server_args(argc, argv, "WebSocket chat room", [&chat](CLI::App& app) {
        app.add_flag("--compression", chat.compression, "accept permessage-deflate");
        app.add_option("--ping-interval", chat.ping_interval, "seconds of silence before a keep-alive Ping (0: none)");
      });
  ws::Broadcast room{1024};
  Server server{chat_routes(room, chat)};
  return examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
