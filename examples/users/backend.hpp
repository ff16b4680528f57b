#pragma once
// Opening the database the configuration names: the store, the event feed that fits it, and the schema.

#include <memory>
#include <string>

#include "config.hpp"
#include "events.hpp"
#include "store.hpp"

namespace users {

struct Backend {
  std::shared_ptr<UserStore> store;
  std::shared_ptr<Events> events;
};

/// Opens (SQLite: creates) the database and brings its schema up to date; the error is one line for
/// the operator ("cannot connect to postgres://app:***@db/app: ...").
spindle::Task<spindle::Result<Backend, std::string>> open_backend(const Config& config);

}  // namespace users
