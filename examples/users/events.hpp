#pragma once
// The feed of changes: {"type": "user_created" | "user_updated" | "user_deleted", "user": {...}} for every
// change, to this instance's WebSocket and server-sent-event clients. With SQLite the one process is the
// whole service and the store sends to the feed itself; with PostgreSQL every change NOTIFYs (in its own
// transaction: see store.hpp) and every instance, this one too, hears it through LISTEN, so a client sees
// the changes made through any instance, in the order they committed.

#include <spindle/pg/pool.hpp>
#include <spindle/runtime/task.hpp>
#include <spindle/ws/broadcast.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "user.hpp"

namespace users {

/// The PostgreSQL channel the changes go through.
inline constexpr std::string_view kEventsChannel = "spindle_users_events";

class Events {
 public:
  virtual ~Events() = default;

  /// Delivers other instances' changes to feed() until cancelled; returns at once where there are none.
  virtual spindle::Task<void> run() = 0;

  /// What this instance's sockets subscribe to. Messages are JSON text, encoded once for all of them.
  spindle::ws::Broadcast& feed() noexcept { return feed_; }

 protected:
  spindle::ws::Broadcast feed_{1024};
};

/// One process: the store sends each change straight to the feed.
std::unique_ptr<Events> local_events();

/// Several instances on one PostgreSQL database: a LISTEN connection on kEventsChannel, open once this
/// returns, that reconnects (with back-off) when it is lost; changes made while it is away are not
/// replayed.
spindle::Task<spindle::Result<std::unique_ptr<Events>, spindle::db::Error>> postgres_events(spindle::pg::Pool pool);

}  // namespace users
