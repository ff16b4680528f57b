#pragma once
// pg::Listener: PostgreSQL's LISTEN/NOTIFY as an async stream of notifications.
//
//   auto events = co_await pool.listen("user_events");
//   while (true) {
//     auto note = co_await events->recv();          // Result<Notification, db::Error>
//     if (!note) break;                             // the connection was lost: listen again
//     broadcast(note->payload);
//   }
//   // elsewhere, in any process: co_await pool.execute("SELECT pg_notify($1, $2)", "user_events", text);

#include <memory>
#include <string>

#include "spindle/db/error.hpp"
#include "spindle/result.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::pg {

struct Notification {
  std::string channel;
  std::string payload;
  int process_id = 0;  ///< the server process that sent it
};

namespace detail {
class Session;
}

/// Notifications of the channels it listens on, in the order the server sent them. Owns its connection.
class Listener {
 public:
  Listener(Listener&&) noexcept;
  Listener& operator=(Listener&&) noexcept;
  ~Listener();

  /// The next notification; waits for one. Error::Kind::connection once the connection is lost:
  /// notifications sent meanwhile are gone, so a caller that listens again should also re-read whatever
  /// state the notifications describe.
  Task<Result<Notification, db::Error>> recv();
  /// LISTEN on one more channel.
  Task<Result<void, db::Error>> listen(std::string channel);

 private:
  friend class Pool;
  explicit Listener(std::shared_ptr<detail::Session> session) noexcept;
  std::shared_ptr<detail::Session> session_;
};

}  // namespace spindle::pg
