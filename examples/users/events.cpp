#include "events.hpp"

#include <spindle/runtime/time.hpp>

#include <algorithm>
#include <chrono>
#include <optional>

#include "log.hpp"

namespace users {
namespace {

using namespace std::chrono_literals;

class LocalEvents final : public Events {
 public:
  spindle::Task<void> run() override { co_return; }
};

class PostgresEvents final : public Events {
 public:
  explicit PostgresEvents(spindle::pg::Pool pool) : pool_(std::move(pool)), channel_(kEventsChannel) {}

  /// The first LISTEN, before the server announces itself: a change made by its first request must
  /// already be heard.
  spindle::Task<spindle::Result<void, spindle::db::Error>> listen_first() {
    auto listening = pool_.listen(channel_);
    spindle::Result<spindle::pg::Listener, spindle::db::Error> listener = co_await std::move(listening);
    if (!listener) co_return spindle::Err{std::move(listener).error()};
    first_.emplace(std::move(*listener));
    co_return spindle::Result<void, spindle::db::Error>{};
  }

  spindle::Task<void> run() override {
    auto backoff = 100ms;
    for (;;) {
      spindle::Result<spindle::pg::Listener, spindle::db::Error> listener =
          spindle::Err{spindle::db::Error{spindle::db::Error::Kind::connection, "not listening yet", {}, {}}};
      if (first_) {
        listener = std::move(*first_);
        first_.reset();
      } else {
        auto listening = pool_.listen(channel_);
        listener = co_await std::move(listening);
      }
      if (!listener) {
        log(LogLevel::warn, "cannot listen for events (retrying in " + std::to_string(backoff.count()) +
                                " ms): " + listener.error().to_string());
        co_await spindle::sleep(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds{5000});
        continue;
      }
      backoff = 100ms;
      log(LogLevel::debug, "listening for events on channel " + channel_);
      for (;;) {
        auto receiving = listener->recv();
        spindle::Result<spindle::pg::Notification, spindle::db::Error> notification = co_await std::move(receiving);
        if (!notification) {
          log(LogLevel::warn, "lost the event listener's connection; events sent until it is back are not seen: " +
                                  notification.error().to_string());
          break;
        }
        feed_.send(spindle::ws::Message::text(std::move(notification->payload)));
      }
    }
  }

 private:
  spindle::pg::Pool pool_;
  std::string channel_;
  std::optional<spindle::pg::Listener> first_;
};

}  // namespace

std::unique_ptr<Events> local_events() { return std::make_unique<LocalEvents>(); }

spindle::Task<spindle::Result<std::unique_ptr<Events>, spindle::db::Error>> postgres_events(spindle::pg::Pool pool) {
  auto events = std::make_unique<PostgresEvents>(std::move(pool));
  auto listening = events->listen_first();
  spindle::Result<void, spindle::db::Error> listened = co_await std::move(listening);
  if (!listened) co_return spindle::Err{listened.error()};
  co_return std::unique_ptr<Events>{std::move(events)};
}

}  // namespace users
