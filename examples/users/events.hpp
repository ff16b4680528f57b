#pragma once
// The feed of changes: {"type": "user_created" | "user_updated" | "user_deleted", "user": {...}} for every
// change, to this instance's WebSocket and server-sent-event clients. With SQLite the one process is the
// whole service; with PostgreSQL every instance publishes through NOTIFY and every instance (this one too)
// hears it through LISTEN, so a client sees the changes made through any instance, in one order.

#include <spindle/pg/pool.hpp>
#include <spindle/runtime/task.hpp>
#include <spindle/ws/broadcast.hpp>

#include <memory>
#include <string>
#include <string_view>

#include "user.hpp"

namespace users {

struct Event {
  std::string type;
  User user;
};
BOOST_DESCRIBE_STRUCT(Event, (), (type, user))

class Events {
 public:
  virtual ~Events() = default;

  /// Tells every client of every instance about a change. Never fails the request that made it: a
  /// notification that cannot be sent is logged.
  virtual spindle::Task<void> publish(Event event) = 0;
  /// Delivers other instances' changes to feed() until cancelled; returns at once where there are none.
  virtual spindle::Task<void> run() = 0;

  /// What this instance's sockets subscribe to. Messages are JSON text, encoded once for all of them.
  spindle::ws::Broadcast& feed() noexcept { return feed_; }

 protected:
  spindle::ws::Broadcast feed_{1024};
};

/// One process: a change goes straight to the feed.
std::unique_ptr<Events> local_events();

/// Several instances on one PostgreSQL database: NOTIFY on `channel`, and a LISTEN connection, open
/// once this returns, that reconnects (with back-off) when it is lost; changes made while it is away
/// are not replayed.
spindle::Task<spindle::Result<std::unique_ptr<Events>, spindle::db::Error>> postgres_events(spindle::pg::Pool pool,
                                                                                            std::string channel);

}  // namespace users
