// pg::Pool: which connection a call runs on, opening connections (and again after a failure), leases
// for transactions and exclusive mode. The policy is described in spindle/pg/pool.hpp.

#include "spindle/pg/pool.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

#include "session.hpp"
#include "spindle/sync/notify.hpp"
#include "spindle/sync/semaphore.hpp"
#include "transaction_state.hpp"

namespace spindle::pg {
namespace detail {

Task<Result<std::shared_ptr<Session>, db::Error>> connect_session(Config config);

namespace {
constexpr Duration kFirstBackoff = std::chrono::milliseconds{50};
}

class PoolCore : public std::enable_shared_from_this<PoolCore> {
 public:
  explicit PoolCore(PoolConfig config_in)
      : config(std::move(config_in)), leases(config.pipeline ? config.max_size - 1 : config.max_size) {}
  /// The last Pool handle and lease are gone: close the connections (each one's reader task holds it).
  ~PoolCore() {
    for (Slot& slot : slots_) slot.session->close();
  }

  /// A connection that stays with a task until the lease is destroyed.
  struct Lease {
    Lease(std::shared_ptr<PoolCore> core_in, Semaphore::Permit permit_in)
        : core(std::move(core_in)), permit(std::move(permit_in)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { core->give_back(session); }

    std::shared_ptr<PoolCore> core;
    std::shared_ptr<Session> session;
    Semaphore::Permit permit;
  };

  Task<Result<std::shared_ptr<Session>, db::Error>> shared_session();
  /// Submits `requests` to `session` if it is still a shared one of this pool (a lease may have taken it
  /// since shared_session() chose it); false otherwise. Under the pool's mutex, so no lease can begin a
  /// transaction on it in between.
  bool submit_shared(const std::shared_ptr<Session>& session, const std::vector<std::shared_ptr<Request>>& requests);
  /// The common case without a coroutine: sends `requests` on the least busy shared connection and
  /// returns it, or returns null when the caller should take the slow path (shared_session: no
  /// connection yet, or a new one should open).
  template <class Requests>
  std::shared_ptr<Session> try_send_shared(const Requests& requests) {
    std::lock_guard lock(mutex_);
    drop_broken_locked();
    Slot* slot = pick_locked(Pick::least_busy);
    if (slot == nullptr) return nullptr;
    if (slot->session->in_flight() != 0 && may_connect_locked(now())) return nullptr;
    slot->session->submit(requests);
    return slot->session;
  }
  Task<Result<std::shared_ptr<Lease>, db::Error>> lease();
  PoolStats stats() const;

  const PoolConfig config;

 private:
  struct Slot {
    std::shared_ptr<Session> session;
    bool leased = false;
  };
  enum class Pick { least_busy, idle_only };

  void drop_broken_locked();
  Slot* pick_locked(Pick pick);
  bool may_connect_locked(Instant at) const {
    return slots_.size() + connecting_ < config.max_size && at >= retry_after_;
  }
  /// Opens a connection (connecting_ already counted) and adds it; records a failure for the back-off.
  Task<Result<std::shared_ptr<Session>, db::Error>> open(bool leased);
  void give_back(const std::shared_ptr<Session>& session);
  Task<void> wait_for_change(Instant deadline);
  db::Error unavailable_locked() const;

  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  std::size_t connecting_ = 0;
  std::size_t connects_ = 0;
  Instant retry_after_{};
  Duration backoff_{0};
  std::optional<db::Error> last_connect_error_;
  Notify changed_;  // a connection opened, failed to open, or came back from a lease

 public:
  Semaphore leases;
};

void PoolCore::drop_broken_locked() {
  std::erase_if(slots_, [](const Slot& slot) { return !slot.leased && !slot.session->is_usable(); });
}

PoolCore::Slot* PoolCore::pick_locked(Pick pick) {
  Slot* best = nullptr;
  for (Slot& slot : slots_) {
    if (slot.leased || !slot.session->is_usable()) continue;
    if (pick == Pick::idle_only && slot.session->in_flight() != 0) continue;
    if (best == nullptr || slot.session->in_flight() < best->session->in_flight()) best = &slot;
  }
  return best;
}

db::Error PoolCore::unavailable_locked() const {
  if (last_connect_error_) return *last_connect_error_;
  return db::Error{db::Error::Kind::connection, "no connection to the database", {}, {}};
}

Task<Result<std::shared_ptr<Session>, db::Error>> PoolCore::open(bool leased) {
  // connecting_ counts this attempt until it ends, also when the task waiting on it is cancelled
  // meanwhile (a query timeout): a count that leaked would keep the pool from ever connecting again.
  struct Attempt {
    PoolCore& core;
    ~Attempt() {
      std::lock_guard lock(core.mutex_);
      --core.connecting_;
      core.changed_.notify_waiters();
    }
  };
  std::optional<Attempt> attempt{std::in_place, *this};
  Config connect_config{config.url, config.connect_timeout};
  Task<Result<std::shared_ptr<Session>, db::Error>> connecting = connect_session(std::move(connect_config));
  Result<std::shared_ptr<Session>, db::Error> session = co_await std::move(connecting);
  attempt.reset();
  std::lock_guard lock(mutex_);
  if (!session) {
    backoff_ = backoff_ == Duration{0} ? kFirstBackoff : std::min<Duration>(backoff_ * 2, config.reconnect_backoff);
    retry_after_ = now() + backoff_;
    last_connect_error_ = session.error();
    co_return Err{std::move(session).error()};
  }
  backoff_ = Duration{0};
  retry_after_ = Instant{};
  last_connect_error_.reset();
  ++connects_;
  (*session)->set_exclusive(leased || !config.pipeline);
  slots_.push_back(Slot{*session, leased});
  co_return std::move(*session);
}

Task<Result<std::shared_ptr<Session>, db::Error>> PoolCore::shared_session() {
  const Instant deadline = now() + config.acquire_timeout;
  for (;;) {
    std::shared_ptr<Session> best;
    bool connect = false;
    {
      std::lock_guard lock(mutex_);
      drop_broken_locked();
      if (Slot* slot = pick_locked(Pick::least_busy)) best = slot->session;
      const bool room = slots_.size() + connecting_ < config.max_size;
      // An idle connection, or a busy one when no more may open: pipeline behind its queries.
      if (best && (best->in_flight() == 0 || !room)) co_return best;
      if (may_connect_locked(now())) {
        ++connecting_;
        connect = true;
      } else if (best) {
        co_return best;
      } else if (connecting_ == 0) {
        co_return Err{unavailable_locked()};  // in the back-off after a failed connect: fail fast
      }
    }
    if (connect) {
      Task<Result<std::shared_ptr<Session>, db::Error>> opening = open(false);
      Result<std::shared_ptr<Session>, db::Error> opened = co_await std::move(opening);
      if (opened) co_return opened;
      if (best) co_return best;
      co_return opened;
    }
    // Every connection is being opened by other calls: wait for one of them.
    if (now() >= deadline)
      co_return Err{
          db::Error{db::Error::Kind::pool_timeout, "no database connection became available in time", {}, {}}};
    co_await wait_for_change(deadline);
  }
}

Task<void> PoolCore::wait_for_change(Instant deadline) {
  // A change that lands between the caller's look and this wait is not stored by notify_waiters(): the
  // wait is bounded, so such a miss costs a short delay, not the whole deadline.
  const Duration bound = std::min<Duration>(deadline - now(), std::chrono::milliseconds{20});
  Result<void, TimedOut> woke = co_await timeout(bound, changed_.notified());
  (void)woke;
}

Task<Result<std::shared_ptr<PoolCore::Lease>, db::Error>> PoolCore::lease() {
  const Instant deadline = now() + config.acquire_timeout;
  Result<Result<Semaphore::Permit, SemaphoreClosed>, TimedOut> permit =
      co_await timeout(config.acquire_timeout, leases.acquire());
  if (!permit || !*permit)
    co_return Err{db::Error{
        db::Error::Kind::pool_timeout, "no database connection became free within the acquire timeout", {}, {}}};
  auto lease = std::make_shared<Lease>(shared_from_this(), std::move(**permit));
  for (;;) {
    bool connect = false;
    {
      std::lock_guard lock(mutex_);
      drop_broken_locked();
      Slot* slot = pick_locked(Pick::idle_only);
      // Else a busy one, when no more may open: in pipeline mode it carries shared queries; in exclusive
      // mode, an abandoned query still finishing. The lease's statements queue behind them.
      if (slot == nullptr && !may_connect_locked(now())) slot = pick_locked(Pick::least_busy);
      if (slot != nullptr) {
        slot->leased = true;
        slot->session->set_exclusive(true);
        lease->session = slot->session;
        co_return lease;
      }
      if (may_connect_locked(now())) {
        ++connecting_;
        connect = true;
      } else if (connecting_ == 0 && last_connect_error_ && now() < retry_after_) {
        co_return Err{unavailable_locked()};
      }
    }
    if (connect) {
      Task<Result<std::shared_ptr<Session>, db::Error>> opening = open(true);
      Result<std::shared_ptr<Session>, db::Error> opened = co_await std::move(opening);
      if (!opened) co_return Err{std::move(opened).error()};
      lease->session = std::move(*opened);
      co_return lease;
    }
    if (now() >= deadline)
      co_return Err{db::Error{db::Error::Kind::pool_timeout, "no database connection became free in time", {}, {}}};
    co_await wait_for_change(deadline);
  }
}

bool PoolCore::submit_shared(const std::shared_ptr<Session>& session,
                             const std::vector<std::shared_ptr<Request>>& requests) {
  std::lock_guard lock(mutex_);
  const bool shared = std::any_of(slots_.begin(), slots_.end(),
                                  [&](const Slot& slot) { return slot.session == session && !slot.leased; });
  if (!shared) return false;
  session->submit(requests);
  return true;
}

void PoolCore::give_back(const std::shared_ptr<Session>& session) {
  if (!session) return;  // the lease failed before it had a connection
  std::lock_guard lock(mutex_);
  for (Slot& slot : slots_)
    if (slot.session == session) {
      slot.leased = false;
      session->set_exclusive(!config.pipeline);
    }
  drop_broken_locked();
  changed_.notify_waiters();
}

PoolStats PoolCore::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats stats{slots_.size(), 0, 0, connects_};
  for (const Slot& slot : slots_) {
    stats.leased += slot.leased ? 1 : 0;
    stats.in_flight += slot.session->in_flight();
  }
  return stats;
}

namespace {

db::Error timed_out() {
  return db::Error{db::Error::Kind::timeout, "the query ran past the pool's query timeout", {}, {}};
}

/// Sends `requests` on a shared connection of the pool (pipeline mode); the connection it went to.
Task<Result<std::shared_ptr<Session>, db::Error>> send_shared(std::shared_ptr<PoolCore> core,
                                                              std::vector<std::shared_ptr<Request>> requests) {
  for (;;) {
    Task<Result<std::shared_ptr<Session>, db::Error>> choosing = core->shared_session();
    Result<std::shared_ptr<Session>, db::Error> session = co_await std::move(choosing);
    if (!session) co_return Err{std::move(session).error()};
    if (core->submit_shared(*session, requests)) co_return std::move(*session);
  }
}

// Each call is one coroutine in the common case: the request is sent before the first suspension, and the
// frame holds little while it waits (memory per waiting query is what bench/db measures).

Task<Result<QueryResult, db::Error>> run_shared(std::shared_ptr<PoolCore> core, std::shared_ptr<Request> request) {
  std::shared_ptr<Session> session = core->try_send_shared(request);
  if (!session) {
    std::vector<std::shared_ptr<Request>> requests{request};
    Task<Result<std::shared_ptr<Session>, db::Error>> sending = send_shared(core, std::move(requests));
    Result<std::shared_ptr<Session>, db::Error> sent = co_await std::move(sending);
    if (!sent) co_return Err{std::move(sent).error()};
    session = std::move(*sent);
  }
  Session::Completion completion{std::move(session), request};
  co_await completion;
  co_return Session::outcome_of(*request);
}

Task<Result<BatchResults, db::Error>> run_shared_batch(std::shared_ptr<PoolCore> core,
                                                       std::vector<std::shared_ptr<Request>> requests) {
  if (requests.empty()) co_return BatchResults{{}};
  std::shared_ptr<Session> session = core->try_send_shared(requests);
  if (!session) {
    Task<Result<std::shared_ptr<Session>, db::Error>> sending = send_shared(core, requests);
    Result<std::shared_ptr<Session>, db::Error> sent = co_await std::move(sending);
    if (!sent) co_return Err{std::move(sent).error()};
    session = std::move(*sent);
  }
  Session::Completion completion{std::move(session), requests.back()};
  co_await completion;
  co_return Session::outcome_of(requests);
}

/// Runs `run(session, input)` on a connection leased for the call: exclusive mode, and scripts (which
/// leave pipeline mode while they run). The lease goes back when the call has finished.
template <class T, class Input>
Task<Result<T, db::Error>> on_leased(std::shared_ptr<PoolCore> core, Input input,
                                     Task<Result<T, db::Error>> (*run)(std::shared_ptr<Session>, Input)) {
  Task<Result<std::shared_ptr<PoolCore::Lease>, db::Error>> leasing = core->lease();
  Result<std::shared_ptr<PoolCore::Lease>, db::Error> lease = co_await std::move(leasing);
  if (!lease) co_return Err{std::move(lease).error()};
  Task<Result<T, db::Error>> running = run((*lease)->session, std::move(input));
  Result<T, db::Error> result = co_await std::move(running);
  co_return result;
}

template <class T>
Task<Result<T, db::Error>> failed(db::Error error) {
  co_return Err{std::move(error)};
}

template <class T>
Task<Result<T, db::Error>> with_deadline(Duration limit, Task<Result<T, db::Error>> call) {
  Result<Result<T, db::Error>, TimedOut> result = co_await timeout(limit, std::move(call));
  if (!result) co_return Err{timed_out()};
  co_return std::move(*result);
}

template <class T>
Task<Result<T, db::Error>> bounded(const PoolConfig& config, Task<Result<T, db::Error>> call) {
  if (!config.query_timeout) return call;  // no frame for a deadline nobody set
  return with_deadline(*config.query_timeout, std::move(call));
}

}  // namespace
}  // namespace detail

Task<Result<Pool, db::Error>> Pool::connect(PoolConfig config) {
  if (config.max_size == 0 || (config.pipeline && config.max_size < 2))
    co_return Err{db::Error{db::Error::Kind::connection,
                            "a pool needs max_size >= 1, and >= 2 in pipeline mode (one connection stays shared)",
                            {},
                            {}}};
  auto core = std::make_shared<detail::PoolCore>(std::move(config));
  Task<Result<std::shared_ptr<detail::Session>, db::Error>> first = core->shared_session();
  Result<std::shared_ptr<detail::Session>, db::Error> opened = co_await std::move(first);
  if (!opened) co_return Err{std::move(opened).error()};
  co_return Pool{std::move(core)};
}

Task<Result<detail::QueryResult, db::Error>> Pool::submit(detail::Statement statement) {
  if (statement.error()) return detail::failed<detail::QueryResult>(*statement.error());
  if (!core_->config.pipeline)
    return detail::bounded(core_->config, detail::on_leased(core_, std::move(statement), &detail::Session::run));
  return detail::bounded(core_->config, detail::run_shared(core_, detail::Session::request_for(std::move(statement))));
}

Task<Result<void, db::Error>> Pool::submit_script(std::string script) {
  return detail::bounded(core_->config, detail::on_leased(core_, std::move(script), &detail::Session::run_script));
}

Task<Result<Transaction, db::Error>> Pool::begin_on(std::shared_ptr<detail::PoolCore> core) {
  Task<Result<std::shared_ptr<detail::PoolCore::Lease>, db::Error>> leasing = core->lease();
  Result<std::shared_ptr<detail::PoolCore::Lease>, db::Error> lease = co_await std::move(leasing);
  if (!lease) co_return Err{std::move(lease).error()};
  std::shared_ptr<detail::Session> session = (*lease)->session;
  auto state = std::make_shared<detail::TransactionState>(std::move(session), nullptr, std::move(*lease));
  Task<Result<Transaction, db::Error>> starting = Transaction::start(std::move(state));
  Result<Transaction, db::Error> started = co_await std::move(starting);
  co_return started;
}

Task<Result<Listener, db::Error>> Pool::listen_on(PoolConfig config, std::string channel) {
  Config connect_config{config.url, config.connect_timeout};
  Task<Result<std::shared_ptr<detail::Session>, db::Error>> connecting =
      detail::connect_session(std::move(connect_config));
  Result<std::shared_ptr<detail::Session>, db::Error> session = co_await std::move(connecting);
  if (!session) co_return Err{std::move(session).error()};
  Listener listener{std::move(*session)};
  Task<Result<void, db::Error>> listening = listener.listen(std::move(channel));
  Result<void, db::Error> listened = co_await std::move(listening);
  if (!listened) co_return Err{listened.error()};
  co_return std::move(listener);
}

Task<Result<Transaction, db::Error>> Pool::begin() { return begin_on(core_); }

Task<Result<Listener, db::Error>> Pool::listen(std::string channel) {
  return listen_on(core_->config, std::move(channel));
}

Task<Result<void, db::Error>> Pool::ping() {
  Task<Result<std::int32_t, db::Error>> asking = query_one<std::int32_t>("SELECT 1");
  return [](Task<Result<std::int32_t, db::Error>> pending) -> Task<Result<void, db::Error>> {
    Result<std::int32_t, db::Error> answer = co_await std::move(pending);
    if (!answer) co_return Err{std::move(answer).error()};
    co_return Result<void, db::Error>{};
  }(std::move(asking));
}

Task<Result<BatchResults, db::Error>> Pool::submit_batch(Batch batch) {
  if (!core_->config.pipeline)
    return detail::bounded(core_->config, detail::on_leased(core_, std::move(batch), &detail::Session::run_batch));
  std::vector<std::shared_ptr<detail::Request>> requests = detail::Session::requests_for(std::move(batch));
  for (const std::shared_ptr<detail::Request>& request : requests)
    if (request->statement.error()) return detail::failed<BatchResults>(*request->statement.error());
  return detail::bounded(core_->config, detail::run_shared_batch(core_, std::move(requests)));
}

PoolStats Pool::stats() const { return core_->stats(); }

}  // namespace spindle::pg
