#pragma once
// The whole WebSocket layer (docs/websocket.md): the upgrade extractor, sockets, the client, broadcast
// rooms. Server-sent events are in spindle/http/sse.hpp (part of spindle/http.hpp).

#include "spindle/ws/broadcast.hpp"
#include "spindle/ws/client.hpp"
#include "spindle/ws/upgrade.hpp"
#include "spindle/ws/websocket.hpp"
