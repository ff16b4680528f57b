// spindle::sqlite: the database (State), its writer thread and its readers, and the coroutines behind the
// calls. The design is at the top of include/spindle/sqlite/database.hpp.

#include "spindle/sqlite/database.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "connection.hpp"
#include "spindle/runtime/blocking.hpp"
#include "spindle/sync/semaphore.hpp"

namespace spindle::sqlite {
namespace detail {

using Outcome = Result<std::uint64_t, db::Error>;
// The writer hands a job's outcome to the task awaiting it the way a blocking-pool job does: lock, store,
// wake. spawn_blocking's shared state and awaiter are reused as they are, cancellation rules included (a
// task destroyed while it waits clears its waker; the writer then completes into nobody).
using Completion = spindle::detail::BlockingState<Outcome>;
using CompletionAwaiter = spindle::detail::BlockingAwaiter<Outcome>;

namespace {

db::Error make_error(db::Error::Kind kind, std::string message) { return db::Error{kind, std::move(message), {}, {}}; }
db::Error no_database() {
  return make_error(db::Error::Kind::query, "this sqlite::Database or Transaction handle was moved from");
}
db::Error transaction_ended() {
  return make_error(db::Error::Kind::query, "the transaction has already ended (committed or rolled back)");
}

// Past this many distinct SQL texts, the reader/writer decisions are forgotten and learnt again, rather
// than kept without bound for a program that builds SQL with values in it.
constexpr std::size_t kMaxRememberedRoutes = 4096;

}  // namespace

/// A transaction or savepoint. The writer thread sets `ended`; the handles read it to know whether
/// dropping them must queue a rollback. `started` is the writer's alone.
struct TxState {
  explicit TxState(std::shared_ptr<TxState> outer) noexcept
      : parent(std::move(outer)), depth(parent ? parent->depth + 1 : 0) {}

  const std::shared_ptr<TxState> parent;  // the transaction a savepoint is in
  const int depth;                        // 0: BEGIN IMMEDIATE; n > 0: SAVEPOINT spindle_tx_n
  std::atomic<bool> ended{false};
  bool started = false;
  // A statement in it failed. Its own savepoint undid the statement, but PostgreSQL's rule applies, so
  // that code written once behaves alike on both: such a transaction does not commit (commit() rolls it
  // back and says so), until a savepoint inside it that failed is rolled back. The writer's alone.
  bool failed = false;

  /// Neither ended nor inside one that ended (a transaction's commit or rollback ends its savepoints).
  bool live() const noexcept {
    for (const TxState* tx = this; tx != nullptr; tx = tx->parent.get())
      if (tx->ended.load()) return false;
    return true;
  }
  const TxState& root() const noexcept {
    const TxState* tx = this;
    while (tx->parent) tx = tx->parent.get();
    return *tx;
  }
  std::string savepoint(std::string_view verb) const {
    return std::string{verb} + " spindle_tx_" + std::to_string(depth);
  }
};

struct Job {
  enum class Kind { statement, script, begin, commit, rollback };
  Kind kind = Kind::statement;
  std::shared_ptr<Statement> statement;    // statement, script (the script is its sql)
  std::shared_ptr<TxState> tx;             // the transaction it runs in (begin: the one it starts); null: none
  std::shared_ptr<Completion> completion;  // null: nobody waits (a dropped transaction's rollback)

  /// Jobs of a transaction that has begun go to the writer's transaction queue; the rest (plain writes,
  /// and the begin of a transaction) wait in line for the writer to be free.
  bool belongs_to_open_transaction() const noexcept { return tx && !(kind == Kind::begin && !tx->parent); }
};

/// How a job ended: its outcome, or an exception thrown while its rows were read into the caller's type.
struct JobResult {
  std::optional<Outcome> outcome;
  std::exception_ptr exception;
  bool ok() const noexcept { return !exception && outcome && outcome->has_value(); }
};

namespace {

void complete(Job& job, JobResult result) {
  if (!job.completion) return;
  Completion& completion = *job.completion;
  std::lock_guard lock(completion.mutex);
  if (result.exception)
    completion.exception = std::move(result.exception);
  else
    completion.value = std::move(result.outcome);
  completion.done = true;
  if (completion.waker) std::exchange(completion.waker, spindle::detail::Waker{}).wake();
}
void complete(Job& job, Outcome outcome) { complete(job, JobResult{std::move(outcome), nullptr}); }

/// The error of a batch or transaction that SQLite rolled back by itself (disk full, I/O error), told to
/// every statement in it: the kind and message of the failure that caused it, when there is one.
db::Error rolled_back_by_sqlite(std::string_view what, const JobResult& cause) {
  db::Error error = make_error(db::Error::Kind::query, std::string{what} + " was rolled back by SQLite");
  if (cause.outcome && !cause.outcome->has_value()) {
    error.kind = cause.outcome->error().kind;
    error.message += ": " + cause.outcome->error().message;
  }
  return error;
}

template <class F>
JobResult attempt(F&& run) {
  try {
    return JobResult{run(), nullptr};
  } catch (...) {
    return JobResult{std::nullopt, std::current_exception()};
  }
}

}  // namespace

/// The writer thread: the one connection that writes, and the queue of what it must do.
///
/// It serves, in this order: the jobs of the open transaction (nothing else while one is open); else the
/// begin of the next transaction, when it is first in line; else every plain write waiting, up to
/// max_batch, committed together in one BEGIN IMMEDIATE ... COMMIT with a SAVEPOINT around each, so that
/// one failing statement is undone alone. Callers are told only once the COMMIT has succeeded.
class Writer {
 public:
  Writer(std::unique_ptr<Connection> connection, std::size_t max_batch)
      : connection_(std::move(connection)),
        max_batch_(std::max<std::size_t>(max_batch, 1)),
        thread_([this] { run(); }) {}

  /// Finishes what is queued (every transaction has queued its end by now: its handles are gone), then
  /// joins the thread.
  ~Writer() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void submit(Job job) {
    {
      std::lock_guard lock(mutex_);
      (job.belongs_to_open_transaction() ? in_transaction_ : plain_).push_back(std::move(job));
    }
    wake_.notify_one();
  }
  /// Queues a job and returns what its task awaits.
  CompletionAwaiter submit_awaited(Job::Kind kind, std::shared_ptr<Statement> statement, std::shared_ptr<TxState> tx) {
    auto completion = std::make_shared<Completion>();
    submit(Job{kind, std::move(statement), std::move(tx), completion});
    return CompletionAwaiter{std::move(completion)};
  }
  Stats stats() const noexcept { return {writes_.load(), batches_.load()}; }

 private:
  void run();
  void run_batch(std::vector<Job>& jobs);
  void begin_transaction(Job& job);
  void serve_in_transaction(Job& job);
  Result<void, db::Error> end_transaction(TxState& tx, bool commit);
  JobResult run_job(Job& job);

  std::unique_ptr<Connection> connection_;
  const std::size_t max_batch_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> plain_;           // plain writes and scripts, and begins of transactions
  std::deque<Job> in_transaction_;  // jobs of the open transaction (or of one that ended: they fail)
  bool stop_ = false;
  std::shared_ptr<TxState> active_;  // the open transaction; the writer thread's alone
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::thread thread_;  // last: it starts once everything above exists
};

void Writer::run() {
  for (;;) {
    std::optional<Job> job;
    bool in_transaction = false;
    std::vector<Job> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stop_ || !in_transaction_.empty() || (!active_ && !plain_.empty()); });
      if (!in_transaction_.empty()) {
        job.emplace(std::move(in_transaction_.front()));
        in_transaction_.pop_front();
        in_transaction = true;
      } else if (active_) {
        // Stopping with a transaction open and nothing queued for it. Its handles, all gone now, queue
        // a rollback as they go, so this should not happen; if it does, shutdown must not wait on it.
        lock.unlock();
        (void)connection_->control("ROLLBACK");
        active_->ended = true;
        active_.reset();
        continue;
      } else if (!plain_.empty()) {
        if (plain_.front().kind == Job::Kind::begin) {
          job.emplace(std::move(plain_.front()));
          plain_.pop_front();
        } else {
          while (!plain_.empty() && plain_.front().kind != Job::Kind::begin && batch.size() < max_batch_) {
            batch.push_back(std::move(plain_.front()));
            plain_.pop_front();
          }
        }
      } else {
        return;  // stopping, and nothing is left
      }
    }
    // Outside the lock: jobs (and the rows they carry) are destroyed here too, at the end of the turn.
    if (job && in_transaction)
      serve_in_transaction(*job);
    else if (job)
      begin_transaction(*job);
    else
      run_batch(batch);
  }
}

void Writer::run_batch(std::vector<Job>& jobs) {
  // A write whose task is gone (cancelled before the writer reached it) has nobody to answer: skipped.
  std::erase_if(jobs, [](const Job& job) { return job.completion.use_count() == 1; });
  if (jobs.empty()) return;
  Result<void, db::Error> begun = connection_->control("BEGIN IMMEDIATE");
  if (!begun) {
    for (Job& job : jobs) complete(job, Outcome{Err{begun.error()}});
    return;
  }
  std::vector<JobResult> results;
  results.reserve(jobs.size());
  for (Job& job : jobs) {
    results.push_back(run_job(job));
    if (!connection_->in_transaction()) {
      // SQLite rolled the whole batch back by itself: none of it was kept.
      const db::Error lost = rolled_back_by_sqlite("the batch's transaction", results.back());
      for (Job& each : jobs) complete(each, Outcome{Err{lost}});
      return;
    }
  }
  Result<void, db::Error> committed = connection_->control("COMMIT");
  if (!committed) {
    if (connection_->in_transaction()) (void)connection_->control("ROLLBACK");
    for (Job& job : jobs) complete(job, Outcome{Err{committed.error()}});
    return;
  }
  // Counted before anyone is told, so that a caller reading stats() after its write sees it.
  writes_.fetch_add(jobs.size());
  batches_.fetch_add(1);
  for (std::size_t i = 0; i < jobs.size(); ++i) complete(jobs[i], std::move(results[i]));
}

void Writer::begin_transaction(Job& job) {
  TxState& tx = *job.tx;
  if (tx.ended.load()) {  // its handle was dropped while the begin waited in line
    complete(job, Outcome{Err{make_error(db::Error::Kind::query, "the transaction was dropped before it began")}});
    return;
  }
  if (connection_->in_transaction()) (void)connection_->control("ROLLBACK");  // never expected; never inherited
  Result<void, db::Error> begun = connection_->control("BEGIN IMMEDIATE");
  if (!begun) {
    tx.ended = true;
    complete(job, Outcome{Err{begun.error()}});
    return;
  }
  tx.started = true;
  active_ = job.tx;
  complete(job, Outcome{std::uint64_t{0}});
}

void Writer::serve_in_transaction(Job& job) {
  TxState& tx = *job.tx;
  if (job.kind == Job::Kind::rollback && !tx.started && !tx.ended.load()) {
    // Dropped before its begin ran (the begin still waits in line): the begin will see it ended.
    tx.ended = true;
    complete(job, Outcome{std::uint64_t{0}});
    return;
  }
  if (!tx.live() || &tx.root() != active_.get()) {
    if (job.kind == Job::Kind::begin) tx.ended = true;
    complete(job, Outcome{Err{transaction_ended()}});
    return;
  }
  switch (job.kind) {
    case Job::Kind::begin: {  // a savepoint: a top-level begin comes through begin_transaction
      Result<void, db::Error> opened = connection_->control(tx.savepoint("SAVEPOINT"));
      if (!opened) {
        tx.ended = true;
        complete(job, Outcome{Err{opened.error()}});
        return;
      }
      tx.started = true;
      complete(job, Outcome{std::uint64_t{0}});
      return;
    }
    case Job::Kind::statement:
    case Job::Kind::script: {
      JobResult result = run_job(job);
      // A row that did not convert is the caller's problem, not the statement's (as on PostgreSQL).
      if (result.exception ||
          (result.outcome && !result.outcome->has_value() && result.outcome->error().kind != db::Error::Kind::decode))
        tx.failed = true;
      if (!connection_->in_transaction()) {
        // SQLite rolled the transaction back by itself: it is over.
        active_->ended = true;
        active_.reset();
        if (!result.exception) result.outcome = Outcome{Err{rolled_back_by_sqlite("the transaction", result)}};
      }
      complete(job, std::move(result));
      return;
    }
    case Job::Kind::commit:
    case Job::Kind::rollback: {
      Result<void, db::Error> ended = end_transaction(tx, job.kind == Job::Kind::commit);
      complete(job, ended ? Outcome{std::uint64_t{0}} : Outcome{Err{ended.error()}});
      return;
    }
  }
}

Result<void, db::Error> Writer::end_transaction(TxState& tx, bool commit) {
  Result<void, db::Error> done;
  const bool refused = commit && tx.failed;
  if (refused) {
    commit = false;
    // Releasing a failed savepoint fails its transaction too, as PostgreSQL's RELEASE would.
    if (tx.parent) tx.parent->failed = true;
  }
  if (tx.depth == 0) {
    done = connection_->control(commit ? "COMMIT" : "ROLLBACK");
    // A COMMIT that failed leaves the transaction open: roll it back; the caller learns it did not commit.
    if (connection_->in_transaction()) (void)connection_->control("ROLLBACK");
    active_.reset();
  } else {
    if (commit) done = connection_->control(tx.savepoint("RELEASE"));
    if (!commit || !done) {
      Result<void, db::Error> undone = connection_->control(tx.savepoint("ROLLBACK TO"));
      if (!commit) done = undone;
      (void)connection_->control(tx.savepoint("RELEASE"));
    }
  }
  tx.ended = true;
  if (refused && done)
    return Err{make_error(db::Error::Kind::query, "the transaction was rolled back: a statement in it had failed")};
  return done;
}

JobResult Writer::run_job(Job& job) {
  Statement& statement = *job.statement;
  sqlite3_stmt* prepared = nullptr;
  if (job.kind == Job::Kind::statement) {
    Result<sqlite3_stmt*, db::Error> found = connection_->prepare(statement.sql);
    if (!found) return JobResult{Outcome{Err{found.error()}}, nullptr};
    prepared = *found;
    // A read leaves nothing for a savepoint to undo.
    if (sqlite3_stmt_readonly(prepared)) return attempt([&] { return connection_->run(prepared, statement); });
  }
  // Each write in its own savepoint: if it fails, only what it did is undone, and the batch or the
  // transaction around it carries on.
  Result<void, db::Error> opened = connection_->control("SAVEPOINT spindle_statement");
  if (!opened) return JobResult{Outcome{Err{opened.error()}}, nullptr};
  JobResult result = attempt([&]() -> Outcome {
    if (prepared != nullptr) return connection_->run(prepared, statement);
    Result<void, db::Error> ran = connection_->exec_script(statement.sql);
    if (!ran) return Err{ran.error()};
    return std::uint64_t{0};
  });
  if (result.ok()) {
    Result<void, db::Error> released = connection_->control("RELEASE spindle_statement");
    if (released) return result;
    result = JobResult{Outcome{Err{released.error()}}, nullptr};
  }
  (void)connection_->control("ROLLBACK TO spindle_statement");
  (void)connection_->control("RELEASE spindle_statement");
  return result;
}

/// The database: the writer, the readers, and which SQL texts read.
class State {
 public:
  enum class Route { unknown, reader, writer };

  /// Opens the connections (blocking: call on the blocking pool) and starts the writer thread.
  static Result<std::shared_ptr<State>, db::Error> open(Config config);

  State(Config config, std::unique_ptr<Connection> writer, std::vector<std::unique_ptr<Connection>> readers)
      : config_(std::move(config)),
        writer(std::move(writer), config_.max_batch),
        reader_slots(readers.size()),
        readers_(std::move(readers)) {
    for (auto& reader : readers_) free_readers_.push_back(reader.get());
  }

  /// Where a statement goes: learnt by preparing it on a reader the first time (Route::unknown).
  Route route(std::string_view sql) {
    if (readers_.empty()) return Route::writer;
    std::lock_guard lock(routes_mutex_);
    auto found = routes_.find(sql);
    if (found == routes_.end()) return Route::unknown;
    return found->second ? Route::reader : Route::writer;
  }

  /// Runs `statement` on `reader` if it is a read; nullopt if it belongs on the writer. Blocking.
  std::optional<Outcome> read(Connection& reader, Statement& statement) {
    if (route(statement.sql) == Route::writer) return std::nullopt;  // learnt while this one waited
    Result<sqlite3_stmt*, db::Error> prepared = reader.prepare(statement.sql);
    if (!prepared) return Outcome{Err{prepared.error()}};
    const bool reads = is_plain_read(*prepared);
    remember(statement.sql, reads);
    if (!reads) {
      reader.forget(statement.sql);
      return std::nullopt;
    }
    return reader.run(*prepared, statement);
  }

  /// A free reader; the caller holds one of reader_slots' permits, so there is one.
  Connection* lease_reader() {
    std::lock_guard lock(readers_mutex_);
    Connection* reader = free_readers_.back();
    free_readers_.pop_back();
    return reader;
  }
  void return_reader(Connection* reader) {
    {
      std::lock_guard lock(readers_mutex_);
      free_readers_.push_back(reader);
    }
    reader_slots.release(1);
  }

 private:
  void remember(std::string_view sql, bool reads) {
    std::lock_guard lock(routes_mutex_);
    if (routes_.size() >= kMaxRememberedRoutes) routes_.clear();
    routes_.emplace(std::string{sql}, reads);
  }

  struct TextHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
  };

  const Config config_;

 public:
  Writer writer;
  /// One permit per reader connection: a read waits here, asynchronously, for a free one.
  Semaphore reader_slots;

 private:
  std::vector<std::unique_ptr<Connection>> readers_;
  std::mutex readers_mutex_;
  std::vector<Connection*> free_readers_;
  std::mutex routes_mutex_;
  std::unordered_map<std::string, bool, TextHash, std::equal_to<>> routes_;  // SQL text -> reads
};

Result<std::shared_ptr<State>, db::Error> State::open(Config config) {
  if (config.path.empty() || config.path == ":memory:")
    return Err{make_error(db::Error::Kind::connection,
                          "spindle::sqlite needs a database file (each connection would have its own in-memory "
                          "database); got \"" +
                              config.path + "\"")};
  // SQLite would only say "unable to open database file"; say which directory is missing.
  const std::filesystem::path directory = std::filesystem::path{config.path}.parent_path();
  std::error_code ignored;
  if (!directory.empty() && !std::filesystem::is_directory(directory, ignored))
    return Err{make_error(db::Error::Kind::connection, "cannot open the SQLite database \"" + config.path +
                                                           "\": its directory \"" + directory.string() +
                                                           "\" does not exist")};
  Result<std::unique_ptr<Connection>, db::Error> writer = Connection::open(config, Connection::Role::writer);
  if (!writer) return Err{std::move(writer).error()};
  std::vector<std::unique_ptr<Connection>> readers;
  for (std::size_t i = 0; i < config.readers; ++i) {
    Result<std::unique_ptr<Connection>, db::Error> reader = Connection::open(config, Connection::Role::reader);
    if (!reader) return Err{std::move(reader).error()};
    readers.push_back(std::move(*reader));
  }
  return std::make_shared<State>(std::move(config), std::move(*writer), std::move(readers));
}

namespace {

/// A reader connection and its semaphore permit, held by the blocking job that uses them, and given back
/// by it: if the awaiting task is cancelled meanwhile, the job still has the connection until it ends.
struct ReaderLease {
  ReaderLease(std::shared_ptr<State> database, Connection* connection) noexcept
      : state(std::move(database)), reader(connection) {}
  ~ReaderLease() { give_back(); }
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  void give_back() noexcept {
    if (reader != nullptr) state->return_reader(std::exchange(reader, nullptr));
  }
  std::shared_ptr<State> state;
  Connection* reader;
};

/// Runs a statement on a reader; nullopt if it turned out to be a write.
Task<std::optional<Outcome>> read_on_reader(std::shared_ptr<State> state, std::shared_ptr<Statement> statement) {
  Semaphore::Awaiter acquiring = state->reader_slots.acquire();
  Result<Semaphore::Permit, SemaphoreClosed> permit = co_await std::move(acquiring);
  if (!permit) co_return std::nullopt;  // never closed; the writer can take it
  // Many first calls of one write may have queued here before the first of them learnt it is a write.
  if (state->route(statement->sql) == State::Route::writer) co_return std::nullopt;
  permit->forget();  // the lease gives it back, with the connection
  auto lease = std::make_shared<ReaderLease>(state, state->lease_reader());
  // The job holds the lease; it gives it back as soon as the statement is done (or, if the job never
  // runs or throws, when the pool drops it).
  auto reading = spawn_blocking([lease, statement]() -> std::optional<Outcome> {
    std::optional<Outcome> read = lease->state->read(*lease->reader, *statement);
    lease->give_back();
    return read;
  });
  lease.reset();
  std::optional<Outcome> read = co_await std::move(reading);
  co_return read;
}

Task<Result<void, db::Error>> run_script(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                                         std::shared_ptr<Statement> script) {
  if (!state) co_return Err{no_database()};
  CompletionAwaiter running = state->writer.submit_awaited(Job::Kind::script, std::move(script), std::move(tx));
  Outcome ran = co_await std::move(running);
  if (!ran) co_return Err{std::move(ran).error()};
  co_return Result<void, db::Error>{};
}

}  // namespace

Task<Outcome> run_statement(std::shared_ptr<State> state, std::shared_ptr<TxState> tx,
                            std::shared_ptr<Statement> statement) {
  if (statement->error) co_return Err{*statement->error};
  if (!state) co_return Err{no_database()};
  // In a transaction everything runs on the writer, reads included: they must see the transaction's writes.
  if (!tx && state->route(statement->sql) != State::Route::writer) {
    Task<std::optional<Outcome>> reading = read_on_reader(state, statement);
    std::optional<Outcome> read = co_await std::move(reading);
    if (read) co_return std::move(*read);
  }
  CompletionAwaiter writing = state->writer.submit_awaited(Job::Kind::statement, std::move(statement), std::move(tx));
  Outcome written = co_await std::move(writing);
  co_return std::move(written);
}

Task<Result<void, db::Error>> Session::batch_execute(std::string_view script) {
  return run_script(state_, tx_, std::make_shared<Statement>(script));
}

}  // namespace detail

Task<Result<Database, db::Error>> Database::open(Config config) {
  auto opening = spawn_blocking([config = std::move(config)] { return detail::State::open(config); });
  Result<std::shared_ptr<detail::State>, db::Error> opened = co_await std::move(opening);
  if (!opened) co_return Err{std::move(opened).error()};
  co_return Database{std::move(*opened)};
}

Task<Result<Transaction, db::Error>> Database::begin() { return Transaction::start(state_, nullptr); }

Stats Database::stats() const { return state_ ? state_->writer.stats() : Stats{0, 0}; }

Task<Result<Transaction, db::Error>> Transaction::start(std::shared_ptr<detail::State> state,
                                                        std::shared_ptr<detail::TxState> parent) {
  if (!state) co_return Err{detail::no_database()};
  auto tx = std::make_shared<detail::TxState>(std::move(parent));
  // The handle exists before the begin is queued: if this task is dropped while the begin waits or runs,
  // the handle's destructor queues the rollback, and the writer is never left in a transaction that
  // nobody will end.
  Transaction handle{state, tx};
  detail::CompletionAwaiter beginning = state->writer.submit_awaited(detail::Job::Kind::begin, nullptr, tx);
  detail::Outcome begun = co_await std::move(beginning);
  if (!begun) co_return Err{std::move(begun).error()};
  co_return std::move(handle);
}

Task<Result<void, db::Error>> Transaction::finish(std::shared_ptr<detail::State> state,
                                                  std::shared_ptr<detail::TxState> tx, bool commit) {
  if (!state || !tx) co_return Err{detail::no_database()};
  detail::CompletionAwaiter ending = state->writer.submit_awaited(
      commit ? detail::Job::Kind::commit : detail::Job::Kind::rollback, nullptr, std::move(tx));
  detail::Outcome ended = co_await std::move(ending);
  if (!ended) co_return Err{std::move(ended).error()};
  co_return Result<void, db::Error>{};
}

Task<Result<void, db::Error>> Transaction::commit() { return finish(state_, tx_, true); }
Task<Result<void, db::Error>> Transaction::rollback() { return finish(state_, tx_, false); }
Task<Result<Transaction, db::Error>> Transaction::begin() {
  if (!tx_) return start(nullptr, nullptr);  // moved from: fails with the same message as the other calls
  return start(state_, tx_);
}

void Transaction::abandon() noexcept {
  if (state_ && tx_ && !tx_->ended.load())
    state_->writer.submit(detail::Job{detail::Job::Kind::rollback, nullptr, tx_, nullptr});
  tx_.reset();
  state_.reset();
}

Transaction::~Transaction() { abandon(); }

Transaction& Transaction::operator=(Transaction&& other) noexcept {
  if (this != &other) {
    abandon();
    state_ = std::move(other.state_);
    tx_ = std::move(other.tx_);
  }
  return *this;
}

}  // namespace spindle::sqlite
