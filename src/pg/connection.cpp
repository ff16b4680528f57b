// The PostgreSQL connection: connecting without blocking, the session (pipelined calls, the reader task,
// cancellation), Connection, Transaction and Listener. See session.hpp for who does what.

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "error.hpp"
#include "session.hpp"
#include "socket.hpp"
#include "spindle/net/resolve.hpp"
#include "spindle/pg/connection.hpp"
#include "spindle/runtime/blocking.hpp"
#include "spindle/runtime/spawn.hpp"
#include "spindle/runtime/time.hpp"
#include "spindle/sync/notify.hpp"
#include "transaction_state.hpp"

namespace spindle::pg {
namespace detail {

// ---- Session -------------------------------------------------------------------------------------------

namespace {

/// The prepared-statement cache's key: the SQL and its parameter types (the same SQL called with an
/// int32 and then an int64 argument needs two statements).
void cache_key(std::string& key, const Statement& statement) {
  key.assign(statement.sql());
  key.push_back('\0');
  for (Oid type : statement.types()) key.append(reinterpret_cast<const char*>(&type), sizeof type);
}

db::Error aborted_error() {
  return db::Error{db::Error::Kind::query, "not run: an earlier query of the same batch failed", {}, {}};
}

db::Error unsupported_copy_error() {
  return db::Error{db::Error::Kind::query, "COPY ... FROM STDIN / TO STDOUT is not supported by spindle::pg", {}, {}};
}

/// A reference to a registration, dropped even when the task holding it is destroyed mid-wait.
struct RegistrationRef {
  explicit RegistrationRef(spindle::detail::IoRegistration* registration) noexcept : registration(registration) {
    registration->add_ref();
  }
  RegistrationRef(const RegistrationRef&) = delete;
  RegistrationRef& operator=(const RegistrationRef&) = delete;
  ~RegistrationRef() { registration->release(); }
  spindle::detail::IoRegistration* registration;
};

}  // namespace

Session::Session(PGconn* connection) : connection_(connection) {}

Session::~Session() {
  if (registration_ != nullptr) {
    spindle::detail::Reactor::deregister(*registration_);
    registration_->release();
  }
  if (watched_fd_ >= 0) ::close(watched_fd_);
  if (cancel_ != nullptr) PQfreeCancel(cancel_);
  if (connection_ != nullptr) PQfinish(connection_);
}

Result<std::shared_ptr<Session>, db::Error> Session::start(PGconn* connection) {
  std::shared_ptr<Session> session{new Session(connection)};
  if (PQsetnonblocking(connection, 1) != 0 || PQenterPipelineMode(connection) != 1) {
    db::Error error = connection_error(connection, "could not enter pipeline mode");
    session->connection_ = nullptr;  // the caller still owns it
    return Err{std::move(error)};
  }
  session->watched_fd_ = ::fcntl(PQsocket(connection), F_DUPFD_CLOEXEC, 0);
  if (session->watched_fd_ < 0) {
    session->connection_ = nullptr;
    return Err{db::Error{db::Error::Kind::connection, "could not duplicate the connection's socket", {}, {}}};
  }
  // libpq prints the server's notices ("table does not exist, skipping") to stderr by default; they are
  // informational, and a server's stderr is not the place for them.
  PQsetNoticeProcessor(
      connection, [](void*, const char*) {}, nullptr);
  session->server_version_ = PQserverVersion(connection);
  session->cancel_ = PQgetCancel(connection);
  session->registration_ = spindle::detail::IoRegistration::create(session->watched_fd_);
  spawn(read_loop(session), {.name = "postgres reader"}).detach();
  spawn(flush_loop(session), {.name = "postgres flush"}).detach();
  return session;
}

void Session::close() {
  std::lock_guard lock(mutex_);
  if (!broken_.load(std::memory_order_relaxed))
    fail_all_locked(db::Error{db::Error::Kind::connection, "the connection was closed", {}, {}});
}

void Session::fail_all_locked(const db::Error& error) {
  broken_.store(true, std::memory_order_release);
  broken_error_ = error;
  auto fail = [&](std::deque<std::shared_ptr<Request>>& requests) {
    for (const std::shared_ptr<Request>& request : requests) {
      if (!request->error) request->error = std::make_unique<db::Error>(error);
      complete_locked(*request);
    }
    requests.clear();
  };
  fail(in_flight_);
  fail(pending_);
  in_flight_count_.store(0, std::memory_order_relaxed);
  if (notification_waker_) std::exchange(notification_waker_, spindle::detail::Waker{}).wake();
  // End the session's tasks: waits parked now end with ECANCELED, and a wait that begins later finds
  // the read side shut (end of stream at once), whichever comes first. Shutting the read side sends the
  // server nothing, so PQfinish still says goodbye properly.
  ::shutdown(watched_fd_, SHUT_RD);
  spindle::detail::Reactor::deregister(*registration_);
  flush_wanted_.notify_one();
}

db::Error Session::connection_error_locked(std::string_view what) const { return connection_error(connection_, what); }

void Session::complete_locked(Request& request) {
  request.phase = Request::Phase::done;
  request.done.store(true, std::memory_order_release);
  if (request.waker) std::exchange(request.waker, spindle::detail::Waker{}).wake();
}

void Session::submit(const std::shared_ptr<Request>& request) {
  std::lock_guard lock(mutex_);
  submit_locked(request);
  after_send_locked();
}

void Session::submit(const std::vector<std::shared_ptr<Request>>& requests) {
  std::lock_guard lock(mutex_);
  for (const std::shared_ptr<Request>& request : requests) submit_locked(request);
  after_send_locked();  // one flush for all of them
}

void Session::submit_locked(const std::shared_ptr<Request>& request) {
  if (!broken_.load(std::memory_order_relaxed) &&
      (script_running_ || cancel_running_ || !pending_.empty() || (request->is_script && !in_flight_.empty()))) {
    pending_.push_back(request);
    return;
  }
  if (!broken_.load(std::memory_order_relaxed)) send_locked(*request);
  if (broken_.load(std::memory_order_relaxed)) {  // before, or because sending failed
    request->error = std::make_unique<db::Error>(*broken_error_);
    complete_locked(*request);
    return;
  }
  in_flight_.push_back(request);
  in_flight_count_.fetch_add(1, std::memory_order_relaxed);
}

void Session::send_locked(Request& request) {
  if (request.is_script) {
    // The simple query protocol (several statements in one text) is not allowed in pipeline mode:
    // leave it while nothing is in flight, and come back when the script's results are in.
    if (PQexitPipelineMode(connection_) != 1 || PQsendQuery(connection_, request.statement.sql().c_str()) != 1) {
      fail_all_locked(connection_error_locked("could not send a script"));
      return;
    }
    request.phase = Request::Phase::script;
    script_running_ = true;
    return;
  }
  thread_local std::string key;
  thread_local std::vector<const char*> values;
  thread_local std::vector<int> lengths;
  thread_local std::vector<int> formats;
  static const std::string kUnnamed;
  const Statement& statement = request.statement;
  cache_key(key, statement);
  const std::string* name = &kUnnamed;
  auto cached = statements_.find(key);
  // A statement whose Parse is still unanswered is used only inside the Sync group that sent it: were
  // that Parse skipped (an earlier statement of its batch failed), a call of another group would fail.
  if (cached != statements_.end() && (cached->second.confirmed || cached->second.creator == request.group)) {
    name = &cached->second.name;
    request.phase = Request::Phase::query;
  } else {
    // Past kMaxPreparedStatements (an application building SQL text on the fly), and while another group's
    // Parse of the same statement is unanswered, the statement goes unnamed: parsed for this call only.
    if (cached == statements_.end() && statements_.size() < kMaxPreparedStatements) {
      request.created_statement = true;
      name = &statements_.emplace(key, Prepared{"spindle_" + std::to_string(next_statement_++), request.group, false})
                  .first->second.name;
    }
    if (PQsendPrepare(connection_, name->c_str(), statement.sql().c_str(), static_cast<int>(statement.size()),
                      statement.types().data()) != 1) {
      fail_all_locked(connection_error_locked("could not send a query"));
      return;
    }
    request.phase = Request::Phase::prepare;
  }
  statement.wire(values, lengths, formats);
  if (PQsendQueryPrepared(connection_, name->c_str(), static_cast<int>(statement.size()), values.data(), lengths.data(),
                          formats.data(), 1) != 1 ||
      (request.sync_after && PQpipelineSync(connection_) != 1)) {
    fail_all_locked(connection_error_locked("could not send a query"));
    return;
  }
}

void Session::after_send_locked() {
  if (broken_.load(std::memory_order_relaxed)) return;
  const int flushed = PQflush(connection_);
  if (flushed < 0) {
    fail_all_locked(connection_error_locked("could not send"));
    return;
  }
  // The socket is full: the flush task waits until it takes more, while calls keep queueing in libpq's
  // buffer.
  if (flushed == 1) flush_wanted_.notify_one();
  // While a send blocks, libpq reads what the server sent meanwhile into its buffer (so that neither side
  // waits on the other); those bytes are no longer in the socket, where the reader task looks.
  drain_results_locked();
}

void Session::send_pending_locked() {
  bool sent = false;
  while (!pending_.empty() && !script_running_ && !cancel_running_ && !broken_.load(std::memory_order_relaxed)) {
    std::shared_ptr<Request> request = pending_.front();
    if (request->is_script && !in_flight_.empty()) break;  // runs once the pipeline is empty
    pending_.pop_front();
    submit_locked(request);
    sent = true;
  }
  if (sent) after_send_locked();
}

void Session::process_input_locked() {
  if (PQconsumeInput(connection_) != 1) {
    fail_all_locked(connection_error_locked("the connection was lost"));
    return;
  }
  drain_results_locked();
  if (broken_.load(std::memory_order_relaxed)) return;
  bool notified = false;
  while (PGnotify* note = PQnotifies(connection_)) {
    notifications_.push_back(Notification{note->relname, note->extra, note->be_pid});
    PQfreemem(note);
    notified = true;
  }
  if (notified && notification_waker_) std::exchange(notification_waker_, spindle::detail::Waker{}).wake();
}

void Session::drain_results_locked() {
  auto pop_front = [&] {
    std::shared_ptr<Request> request = std::move(in_flight_.front());
    in_flight_.pop_front();
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
    complete_locked(*request);
  };
  while (!broken_.load(std::memory_order_relaxed) && !in_flight_.empty() && PQisBusy(connection_) == 0) {
    if (PQstatus(connection_) == CONNECTION_BAD) {
      fail_all_locked(connection_error_locked("the connection was lost"));
      return;
    }
    PGresult* raw = PQgetResult(connection_);
    ResultPtr result{raw};
    Request& request = *in_flight_.front();
    const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_EMPTY_QUERY;
    // COPY would need its data sent or received through other calls: refuse it. libpq answers every
    // PQgetResult with the same COPY state until the COPY ends.
    if (status == PGRES_COPY_IN) {
      if (!request.error) request.error = std::make_unique<db::Error>(unsupported_copy_error());
      if (PQputCopyEnd(connection_, "COPY FROM STDIN is not supported by spindle::pg") != 1) {
        fail_all_locked(connection_error_locked("could not end a COPY"));
        return;
      }
      continue;  // the server answers with an error, then the results go on as usual
    }
    if (status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH) {
      fail_all_locked(unsupported_copy_error());  // its data would have to be read to the end: drop the connection
      return;
    }
    switch (request.phase) {
      case Request::Phase::prepare:
        if (raw == nullptr) {
          request.phase = Request::Phase::query;
        } else if (status == PGRES_COMMAND_OK) {
          if (request.created_statement) {
            thread_local std::string key;
            cache_key(key, request.statement);
            if (auto created = statements_.find(key); created != statements_.end()) created->second.confirmed = true;
          }
        } else {
          if (!request.error)
            request.error =
                std::make_unique<db::Error>(status == PGRES_PIPELINE_ABORTED ? aborted_error() : result_error(raw));
          if (request.created_statement) {
            thread_local std::string key;
            cache_key(key, request.statement);
            statements_.erase(key);
          }
        }
        break;
      case Request::Phase::query:
        if (raw == nullptr) {
          if (request.sync_after)
            request.phase = Request::Phase::sync;
          else
            pop_front();
        } else if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
          if (!request.error) request.result = std::move(result);
        } else if (status == PGRES_PIPELINE_ABORTED) {
          if (!request.error) request.error = std::make_unique<db::Error>(aborted_error());
        } else if (!request.error) {
          request.error = std::make_unique<db::Error>(result_error(raw));
          // "cached plan must not change result type": the table changed under the prepared statement
          // (a migration while running). Forget it, so the next call prepares it again.
          if (request.error->sqlstate == "0A000") {
            thread_local std::string key;
            cache_key(key, request.statement);
            statements_.erase(key);
          }
        }
        break;
      case Request::Phase::sync:
        // An error can come between a statement's results and the Sync's: the implicit commit at the Sync
        // failed (a deferred constraint, a serialization failure). Then nothing was committed.
        if (status == PGRES_PIPELINE_SYNC) {
          pop_front();
        } else if (status == PGRES_FATAL_ERROR) {
          request.error = std::make_unique<db::Error>(result_error(raw));
          request.result.reset();
        }
        break;
      case Request::Phase::script:
        if (raw == nullptr) {
          script_running_ = false;
          pop_front();
          if (PQenterPipelineMode(connection_) != 1) {
            fail_all_locked(connection_error_locked("could not enter pipeline mode"));
            return;
          }
          send_pending_locked();
        } else if (status == PGRES_FATAL_ERROR && !request.error) {
          request.error = std::make_unique<db::Error>(result_error(raw));
        }
        break;
      case Request::Phase::queued:
      case Request::Phase::done:
        break;
    }
  }
  if (in_flight_.empty() && !pending_.empty()) send_pending_locked();
}

bool Session::tls_bytes_pending_locked() const {
  // OpenSSL may hold decrypted bytes that libpq has not taken yet: the socket (where ReadReady looks) no
  // longer has them.
  if (broken_.load(std::memory_order_relaxed) || PQsslInUse(connection_) == 0) return false;
  auto* tls = static_cast<SSL*>(PQsslStruct(connection_, "OpenSSL"));
  return tls != nullptr && SSL_pending(tls) > 0;
}

Task<void> Session::read_loop(std::shared_ptr<Session> self) {
  for (;;) {
    std::optional<RegistrationRef> registration;
    {
      std::lock_guard lock(self->mutex_);
      if (self->broken_.load(std::memory_order_relaxed)) co_return;
      registration.emplace(self->registration_);
    }
    ReadReady readable{*registration->registration};
    IoResult<void> ready = co_await readable;
    registration.reset();
    std::lock_guard lock(self->mutex_);
    if (self->broken_.load(std::memory_order_relaxed)) co_return;
    if (!ready) {
      self->fail_all_locked(
          db::Error{db::Error::Kind::connection, "the connection's socket failed: " + ready.error().message(), {}, {}});
      co_return;
    }
    do self->process_input_locked();
    while (self->tls_bytes_pending_locked());
  }
}

Task<void> Session::flush_loop(std::shared_ptr<Session> self) {
  for (;;) {
    Notify::Awaiter wanted = self->flush_wanted_.notified();
    co_await wanted;
    for (;;) {
      std::optional<RegistrationRef> registration;
      {
        std::lock_guard lock(self->mutex_);
        if (self->broken_.load(std::memory_order_relaxed)) co_return;
        const int flushed = PQflush(self->connection_);
        if (flushed < 0) {
          self->fail_all_locked(self->connection_error_locked("could not send"));
          co_return;
        }
        // libpq reads while it sends (see after_send_locked): process what it read.
        self->drain_results_locked();
        if (flushed == 0) break;
        registration.emplace(self->registration_);
      }
      WriteReady writable{*registration->registration};
      IoResult<void> ready = co_await writable;
      if (!ready) co_return;  // the session failed or closed
    }
  }
}

void Session::abandon_locked(Request& request) {
  request.waker = spindle::detail::Waker{};
  // Not sent yet: it (and the rest of its batch) never will be.
  const auto removed =
      std::erase_if(pending_, [&](const std::shared_ptr<Request>& queued) { return queued->group == &request; });
  if (removed > 0) return;
  // Cancel only what is certainly this call's: the one query in flight, on a connection nobody else is
  // using. Calls made meanwhile wait until the cancel has been delivered, so it cannot hit them instead.
  if (!exclusive_.load(std::memory_order_relaxed) || cancel_running_ || in_flight_.size() != 1 ||
      in_flight_.front().get() != &request || cancel_ == nullptr)
    return;
  cancel_running_ = true;
  // PQcancel opens a connection and waits for the server: the blocking pool's work (libpq 15 has no
  // non-blocking cancel).
  spindle::detail::submit_blocking([self = shared_from_this()] {
    char message[256];
    PQcancel(self->cancel_, message, sizeof message);
    std::lock_guard lock(self->mutex_);
    self->cancel_running_ = false;
    self->send_pending_locked();
  });
}

std::shared_ptr<Request> Session::request_for(Statement statement) {
  auto request = std::make_shared<Request>();
  request->statement = std::move(statement);
  return request;
}

std::vector<std::shared_ptr<Request>> Session::requests_for(Batch batch) {
  std::vector<std::shared_ptr<Request>> requests;
  requests.reserve(batch.statements_.size());
  for (Statement& statement : batch.statements_) {
    requests.push_back(request_for(std::move(statement)));
    requests.back()->sync_after = false;
  }
  if (!requests.empty()) {
    requests.back()->sync_after = true;
    for (const std::shared_ptr<Request>& request : requests) request->group = requests.back().get();
  }
  return requests;
}

Result<QueryResult, db::Error> Session::outcome_of(Request& request) {
  if (request.error) return Err{std::move(*request.error)};
  return QueryResult{std::move(request.result)};
}

Result<BatchResults, db::Error> Session::outcome_of(std::vector<std::shared_ptr<Request>>& requests) {
  std::vector<QueryResult> results;
  results.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Request& request = *requests[i];
    // A failure at the batch's Sync (its implicit commit) is reported on the last statement.
    if (request.error)
      return Err{db::Error{request.error->kind,
                           "statement " + std::to_string(i + 1) + " of the batch: " + request.error->message,
                           request.error->sqlstate, request.error->constraint}};
    results.emplace_back(std::move(request.result));
  }
  return BatchResults{std::move(results)};
}

// Calls are lazy, like every Task: nothing is sent until the task is awaited.

Task<Result<QueryResult, db::Error>> Session::finish(std::shared_ptr<Session> self, std::shared_ptr<Request> request) {
  Completion completion{std::move(self), request};
  co_await completion;
  co_return outcome_of(*request);
}

Task<Result<BatchResults, db::Error>> Session::finish_batch(std::shared_ptr<Session> self,
                                                            std::vector<std::shared_ptr<Request>> requests) {
  if (requests.empty()) co_return BatchResults{{}};
  // Results come in order: when the last has completed, so have the others.
  Completion completion{std::move(self), requests.back()};
  co_await completion;
  co_return outcome_of(requests);
}

Task<Result<QueryResult, db::Error>> Session::run(std::shared_ptr<Session> self, Statement statement) {
  if (statement.error()) co_return Err{*statement.error()};
  std::shared_ptr<Request> request = request_for(std::move(statement));
  self->submit(request);
  Completion completion{std::move(self), request};
  co_await completion;
  co_return outcome_of(*request);
}

Task<Result<void, db::Error>> Session::run_script(std::shared_ptr<Session> self, std::string script) {
  auto request = std::make_shared<Request>();
  request->statement = Statement::make(script);
  request->is_script = true;
  self->submit(request);
  Completion completion{std::move(self), request};
  co_await completion;
  if (request->error) co_return Err{std::move(*request->error)};
  co_return Result<void, db::Error>{};
}

Task<Result<BatchResults, db::Error>> Session::run_batch(std::shared_ptr<Session> self, Batch batch) {
  for (const Statement& statement : batch.statements_)
    if (statement.error()) co_return Err{*statement.error()};
  std::vector<std::shared_ptr<Request>> requests = requests_for(std::move(batch));
  if (requests.empty()) co_return BatchResults{{}};
  self->submit(requests);
  Completion completion{std::move(self), requests.back()};
  co_await completion;
  co_return outcome_of(requests);
}

void Session::run_detached(std::string_view sql) { submit(request_for(Statement::make(sql))); }

Task<Result<Notification, db::Error>> Session::next_notification(std::shared_ptr<Session> self) {
  struct Wait {
    Session& session;
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      spindle::detail::Waker waker = spindle::detail::make_waker(h);
      std::lock_guard lock(session.mutex_);
      if (!session.notifications_.empty() || session.broken_.load(std::memory_order_relaxed)) return false;
      session.notification_waker_ = std::move(waker);
      return true;
    }
    void await_resume() const noexcept {}
    ~Wait() {
      std::lock_guard lock(session.mutex_);
      session.notification_waker_ = spindle::detail::Waker{};
    }
  };
  for (;;) {
    {
      std::lock_guard lock(self->mutex_);
      if (!self->notifications_.empty()) {
        Notification note = std::move(self->notifications_.front());
        self->notifications_.pop_front();
        co_return note;
      }
      if (self->broken_.load(std::memory_order_relaxed)) co_return Err{*self->broken_error_};
    }
    Wait wait{*self};
    co_await wait;
  }
}

// ---- Connecting ----------------------------------------------------------------------------------------

namespace {

struct ConnFinish {
  void operator()(PGconn* connection) const noexcept { PQfinish(connection); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnFinish>;

struct ConnectParams {
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::string host;
  std::string port;
  bool has_hostaddr = false;

  std::string* value_of(std::string_view key) {
    for (std::size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &values[i];
    return nullptr;
  }
  void set(std::string_view key, std::string value) {
    if (std::string* existing = value_of(key))
      *existing = std::move(value);
    else {
      keys.emplace_back(key);
      values.push_back(std::move(value));
    }
  }
};

Result<ConnectParams, db::Error> parse_params(const std::string& url) {
  char* message = nullptr;
  PQconninfoOption* options = PQconninfoParse(url.c_str(), &message);
  if (options == nullptr) {
    std::string text = message != nullptr ? message : "out of memory";
    if (message != nullptr) PQfreemem(message);
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return Err{db::Error{db::Error::Kind::connection, "invalid database URL: " + text, {}, {}}};
  }
  ConnectParams params;
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val == nullptr) continue;
    params.keys.emplace_back(option->keyword);
    params.values.emplace_back(option->val);
    if (std::strcmp(option->keyword, "host") == 0) params.host = option->val;
    if (std::strcmp(option->keyword, "port") == 0) params.port = option->val;
    if (std::strcmp(option->keyword, "hostaddr") == 0) params.has_hostaddr = true;
  }
  PQconninfoFree(options);
  return params;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buffer) == 1 || inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

std::string ip_of(const SocketAddr& address) {
  char text[INET6_ADDRSTRLEN] = {};
  if (address.family() == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address.native())->sin_addr, text, sizeof text);
  else
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address.native())->sin6_addr, text, sizeof text);
  return text;
}

// A GCC 12 rule (docs/architecture.md): every awaited value goes to a named local first.
Task<Result<ConnPtr, db::Error>> open_connection(Config config) {
  Result<ConnectParams, db::Error> parsed = parse_params(config.url);
  if (!parsed) co_return Err{std::move(parsed).error()};
  ConnectParams& params = *parsed;
  // libpq resolves a host name synchronously inside PQconnectPoll: resolve it here, on the blocking
  // pool, and pass every address (host repeated for each, for messages and TLS); libpq tries them in
  // order, as it would have.
  if (!params.host.empty() && params.host.front() != '/' && !params.has_hostaddr &&
      params.host.find(',') == std::string::npos && !is_ip_literal(params.host)) {
    std::uint16_t port = 5432;
    if (!params.port.empty()) {
      const auto [end, error] = std::from_chars(params.port.data(), params.port.data() + params.port.size(), port);
      if (error != std::errc{} || end != params.port.data() + params.port.size())
        co_return Err{db::Error{db::Error::Kind::connection, "invalid port \"" + params.port + "\"", {}, {}}};
    }
    IoResult<std::vector<SocketAddr>> addresses = co_await resolve(params.host, port);
    if (!addresses || addresses->empty())
      co_return Err{db::Error{db::Error::Kind::connection,
                              "could not resolve \"" + params.host +
                                  "\": " + (addresses ? std::string{"no address"} : addresses.error().message()),
                              {},
                              {}}};
    std::string hosts;
    std::string hostaddrs;
    for (const SocketAddr& address : *addresses) {
      if (!hosts.empty()) {
        hosts += ',';
        hostaddrs += ',';
      }
      hosts += params.host;
      hostaddrs += ip_of(address);
    }
    params.set("host", hosts);
    params.set("hostaddr", hostaddrs);
  }
  params.set("client_encoding", "UTF8");
  // Timestamps without a time zone are read and written as UTC, as db::Timestamp is: the session's
  // TimeZone would otherwise shift values converted between timestamp and timestamptz. A TimeZone the
  // URL's options give comes after, and wins.
  const std::string* options = params.value_of("options");
  params.set("options", "-c TimeZone=UTC" + (options != nullptr ? " " + *options : std::string{}));
  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (std::size_t i = 0; i < params.keys.size(); ++i) {
    keys.push_back(params.keys[i].c_str());
    values.push_back(params.values[i].c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  ConnPtr connection{PQconnectStartParams(keys.data(), values.data(), 0)};
  if (!connection) co_return Err{db::Error{db::Error::Kind::connection, "out of memory", {}, {}}};
  if (PQstatus(connection.get()) == CONNECTION_BAD)
    co_return Err{connection_error(connection.get(), "could not connect")};

  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
  while (polling != PGRES_POLLING_OK) {
    if (polling == PGRES_POLLING_FAILED) co_return Err{connection_error(connection.get(), "could not connect")};
    const int fd = PQsocket(connection.get());
    if (fd < 0) co_return Err{connection_error(connection.get(), "could not connect")};
    // A fresh registration for each wait, gone before PQconnectPoll: libpq may close the socket and open
    // another (the next address, or again without TLS), maybe under the same number.
    IoResult<void> ready;
    {
      SocketWatch watch{fd};
      if (polling == PGRES_POLLING_READING) {
        ReadReady readable{*watch.registration()};
        ready = co_await readable;
      } else {
        WriteReady writable{*watch.registration()};
        ready = co_await writable;
      }
    }
    if (!ready)
      co_return Err{db::Error{db::Error::Kind::connection, "could not connect: " + ready.error().message(), {}, {}}};
    polling = PQconnectPoll(connection.get());
  }
  if (PQserverVersion(connection.get()) < 140000)
    co_return Err{db::Error{db::Error::Kind::connection, "PostgreSQL 14 or newer is needed (pipeline mode)", {}, {}}};
  co_return std::move(connection);
}

}  // namespace

Task<Result<std::shared_ptr<Session>, db::Error>> connect_session(Config config) {
  const Duration limit = config.connect_timeout;
  Task<Result<ConnPtr, db::Error>> opening = open_connection(std::move(config));
  Result<Result<ConnPtr, db::Error>, TimedOut> opened = co_await timeout(limit, std::move(opening));
  if (!opened) co_return Err{db::Error{db::Error::Kind::connection, "could not connect: timed out", {}, {}}};
  if (!*opened) co_return Err{std::move(*opened).error()};
  ConnPtr connection = std::move(**opened);
  Result<std::shared_ptr<Session>, db::Error> session = Session::start(connection.get());
  if (!session) co_return Err{std::move(session).error()};
  connection.release();  // the session owns it now
  co_return std::move(*session);
}

}  // namespace detail

// ---- Connection ----------------------------------------------------------------------------------------

Connection::Connection(std::shared_ptr<detail::Session> session) noexcept : session_(std::move(session)) {}
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&& other) noexcept {
  if (this != &other) {
    if (session_) session_->close();
    session_ = std::move(other.session_);
  }
  return *this;
}
Connection::~Connection() {
  if (session_) session_->close();
}

Task<Result<Connection, db::Error>> Connection::connect(Config config) {
  Task<Result<std::shared_ptr<detail::Session>, db::Error>> connecting = detail::connect_session(std::move(config));
  Result<std::shared_ptr<detail::Session>, db::Error> session = co_await std::move(connecting);
  if (!session) co_return Err{std::move(session).error()};
  co_return Connection{std::move(*session)};
}

bool Connection::is_usable() const noexcept { return session_ && session_->is_usable(); }
int Connection::server_version() const noexcept { return session_ ? session_->server_version() : 0; }

Task<Result<detail::QueryResult, db::Error>> Connection::submit(detail::Statement statement) {
  return detail::Session::run(session_, std::move(statement));
}
Task<Result<void, db::Error>> Connection::submit_script(std::string script) {
  return detail::Session::run_script(session_, std::move(script));
}
Task<Result<BatchResults, db::Error>> Connection::submit_batch(Batch batch) {
  return detail::Session::run_batch(session_, std::move(batch));
}

Task<Result<Transaction, db::Error>> Connection::begin() {
  return Transaction::start(std::make_shared<detail::TransactionState>(session_, nullptr, nullptr));
}

// ---- Transaction ---------------------------------------------------------------------------------------

namespace detail {

TransactionState::TransactionState(std::shared_ptr<Session> session_in, std::shared_ptr<TransactionState> parent_in,
                                   std::shared_ptr<void> lease_in)
    : session(std::move(session_in)),
      parent(std::move(parent_in)),
      lease(std::move(lease_in)),
      depth(parent ? parent->depth + 1 : 0) {}

TransactionState::~TransactionState() {
  // Dropped unfinished: undo it. The ROLLBACK is queued before anything the next user of this connection
  // sends, so it cannot see the half-done work. `started` is set before the BEGIN is sent and `finished`
  // only once the end's answer came, so a task cancelled in between still rolls back (a ROLLBACK with no
  // transaction open is only a warning).
  if (finished || !started) return;
  if (depth == 0) {
    session->run_detached("ROLLBACK");
  } else {
    session->run_detached("ROLLBACK TO SAVEPOINT " + savepoint_name());
    session->run_detached("RELEASE SAVEPOINT " + savepoint_name());
  }
}

std::string TransactionState::savepoint_name() const { return "spindle_savepoint_" + std::to_string(depth); }

}  // namespace detail

Transaction::Transaction(std::shared_ptr<detail::TransactionState> state) noexcept : state_(std::move(state)) {}
Transaction::Transaction(Transaction&&) noexcept = default;
Transaction& Transaction::operator=(Transaction&&) noexcept = default;
Transaction::~Transaction() = default;

Task<Result<Transaction, db::Error>> Transaction::start(std::shared_ptr<detail::TransactionState> state) {
  std::string sql = state->depth == 0 ? std::string{"BEGIN"} : "SAVEPOINT " + state->savepoint_name();
  Task<Result<detail::QueryResult, db::Error>> starting =
      detail::Session::run(state->session, detail::Statement::make(sql));
  state->started = true;
  Result<detail::QueryResult, db::Error> started = co_await std::move(starting);
  if (!started) co_return Err{std::move(started).error()};
  co_return Transaction{std::move(state)};
}

Task<Result<detail::QueryResult, db::Error>> Transaction::submit(detail::Statement statement) {
  return detail::Session::run(state_->session, std::move(statement));
}
Task<Result<void, db::Error>> Transaction::submit_script(std::string script) {
  return detail::Session::run_script(state_->session, std::move(script));
}
Task<Result<BatchResults, db::Error>> Transaction::submit_batch(Batch batch) {
  return detail::Session::run_batch(state_->session, std::move(batch));
}

Task<Result<Transaction, db::Error>> Transaction::begin() {
  return start(std::make_shared<detail::TransactionState>(state_->session, state_, nullptr));
}

Task<Result<void, db::Error>> Transaction::commit() { return finish(state_, true); }
Task<Result<void, db::Error>> Transaction::rollback() { return finish(state_, false); }

Task<Result<void, db::Error>> Transaction::finish(std::shared_ptr<detail::TransactionState> state, bool commit) {
  if (state->ending) co_return Err{db::Error{db::Error::Kind::query, "the transaction has already ended", {}, {}}};
  state->ending = true;
  if (state->depth > 0 && !commit) {
    Task<Result<detail::QueryResult, db::Error>> undoing = detail::Session::run(
        state->session, detail::Statement::make("ROLLBACK TO SAVEPOINT " + state->savepoint_name()));
    Result<detail::QueryResult, db::Error> undone = co_await std::move(undoing);
    if (!undone) co_return Err{std::move(undone).error()};
  }
  std::string sql;
  if (state->depth == 0)
    sql = commit ? "COMMIT" : "ROLLBACK";
  else
    sql = "RELEASE SAVEPOINT " + state->savepoint_name();
  Task<Result<detail::QueryResult, db::Error>> ending =
      detail::Session::run(state->session, detail::Statement::make(sql));
  Result<detail::QueryResult, db::Error> ended = co_await std::move(ending);
  // Answered: whatever it says, the server has ended the transaction (a failed COMMIT rolls back). A
  // failed RELEASE leaves the savepoint open: the destructor's rollback undoes it.
  if (state->depth == 0 || ended) state->finished = true;
  if (!ended) co_return Err{std::move(ended).error()};
  // A COMMIT of a failed transaction answers ROLLBACK, without an error: that must not pass for success.
  if (commit && state->depth == 0 && ended->command_tag() == "ROLLBACK")
    co_return Err{
        db::Error{db::Error::Kind::query, "the transaction was rolled back: a statement in it had failed", {}, {}}};
  co_return Result<void, db::Error>{};
}

// ---- Listener ------------------------------------------------------------------------------------------

Listener::Listener(std::shared_ptr<detail::Session> session) noexcept : session_(std::move(session)) {}
Listener::Listener(Listener&&) noexcept = default;
Listener& Listener::operator=(Listener&& other) noexcept {
  if (this != &other) {
    if (session_) session_->close();
    session_ = std::move(other.session_);
  }
  return *this;
}
Listener::~Listener() {
  if (session_) session_->close();
}

Task<Result<Notification, db::Error>> Listener::recv() { return detail::Session::next_notification(session_); }

Task<Result<void, db::Error>> Listener::listen(std::string channel) {
  // LISTEN takes an identifier, not a parameter: quote it.
  std::string sql = "LISTEN \"";
  for (char c : channel) {
    if (c == '"') sql += '"';
    sql += c;
  }
  sql += '"';
  return detail::Session::run_script(session_, std::move(sql));
}

}  // namespace spindle::pg
