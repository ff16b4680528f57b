// The PostgreSQL connection: connecting without blocking, the session (pipelined calls, the reader task,
// cancellation), Connection, Transaction and Listener. See session.hpp for who does what.

#include <arpa/inet.h>
#include <libpq-fe.h>

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

}  // namespace

Session::Session(PGconn* connection) : connection_(connection) {}

Session::~Session() {
  if (registration_ != nullptr) {
    spindle::detail::Reactor::deregister(*registration_);
    registration_->release();
  }
  if (cancel_ != nullptr) PQfreeCancel(cancel_);
  PQfinish(connection_);
}

Result<std::shared_ptr<Session>, db::Error> Session::start(PGconn* connection) {
  std::shared_ptr<Session> session{new Session(connection)};
  if (PQsetnonblocking(connection, 1) != 0 || PQenterPipelineMode(connection) != 1) {
    db::Error error = connection_error(connection, "could not enter pipeline mode");
    session->connection_ = nullptr;  // the caller still owns it
    return Err{std::move(error)};
  }
  // libpq prints the server's notices ("table does not exist, skipping") to stderr by default; they are
  // informational, and a server's stderr is not the place for them.
  PQsetNoticeProcessor(connection, [](void*, const char*) {}, nullptr);
  session->server_version_ = PQserverVersion(connection);
  session->cancel_ = PQgetCancel(connection);
  session->registration_ = spindle::detail::IoRegistration::create(PQsocket(connection));
  spawn(read_loop(session), {.name = "postgres reader"}).detach();
  return session;
}

void Session::close() {
  std::lock_guard lock(mutex_);
  if (broken_.load(std::memory_order_relaxed)) return;
  fail_all_locked(db::Error{db::Error::Kind::connection, "the connection was closed", {}, {}});
  // Wakes the reader task (its wait ends with ECANCELED); it sees broken_ and ends.
  spindle::detail::Reactor::deregister(*registration_);
}

void Session::fail_all_locked(const db::Error& error) {
  broken_.store(true, std::memory_order_release);
  broken_error_ = error;
  auto fail = [&](std::deque<std::shared_ptr<Request>>& requests) {
    for (const std::shared_ptr<Request>& request : requests) {
      if (!request->error) request->error = error;
      complete_locked(*request);
    }
    requests.clear();
  };
  fail(in_flight_);
  fail(pending_);
  in_flight_count_.store(0, std::memory_order_relaxed);
  if (notification_waker_) std::exchange(notification_waker_, spindle::detail::Waker{}).wake();
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
  if (!broken_.load(std::memory_order_relaxed) && (script_running_ || cancel_running_ || !pending_.empty() ||
                                                   (request->is_script && !in_flight_.empty()))) {
    pending_.push_back(request);
    return;
  }
  if (!broken_.load(std::memory_order_relaxed)) send_locked(*request);
  if (broken_.load(std::memory_order_relaxed)) {  // before, or because sending failed
    request->error = broken_error_;
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
    if (PQexitPipelineMode(connection_) != 1 || PQsendQuery(connection_, request.script.c_str()) != 1) {
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
  const Statement& statement = request.statement;
  cache_key(key, statement);
  static const std::string kUnnamed;
  const std::string* name = &kUnnamed;
  auto cached = statements_.find(key);
  if (cached != statements_.end()) {
    name = &cached->second;
    request.phase = Request::Phase::query;
  } else {
    // Past kMaxPreparedStatements (an application building SQL text on the fly), statements go unnamed:
    // parsed each time, holding no memory on the server.
    if (statements_.size() < kMaxPreparedStatements) {
      request.created_statement = key;
      name = &statements_.emplace(key, "spindle_" + std::to_string(next_statement_++)).first->second;
    }
    if (PQsendPrepare(connection_, name->c_str(), statement.sql().c_str(), static_cast<int>(statement.size()),
                      statement.types().data()) != 1) {
      fail_all_locked(connection_error_locked("could not send a query"));
      return;
    }
    request.phase = Request::Phase::prepare;
  }
  statement.wire(values, lengths, formats);
  if (PQsendQueryPrepared(connection_, name->c_str(), static_cast<int>(statement.size()), values.data(),
                          lengths.data(), formats.data(), 1) != 1 ||
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
  } else if (flushed == 1 && !flushing_) {
    // The socket is full: a task waits until it takes more, while calls keep queueing in libpq's buffer.
    flushing_ = true;
    spawn(flush_loop(shared_from_this()), {.name = "postgres flush"}).detach();
  }
}

void Session::send_pending_locked() {
  bool sent = false;
  while (!pending_.empty() && !script_running_ && !cancel_running_ && !broken_.load(std::memory_order_relaxed)) {
    std::shared_ptr<Request> request = pending_.front();
    if (request->is_script && !in_flight_.empty()) break;  // runs once the pipeline is empty
    pending_.pop_front();
    send_locked(*request);
    if (broken_.load(std::memory_order_relaxed)) {
      request->error = broken_error_;
      complete_locked(*request);
      return;
    }
    in_flight_.push_back(std::move(request));
    in_flight_count_.fetch_add(1, std::memory_order_relaxed);
    sent = true;
  }
  if (sent) after_send_locked();
}

void Session::process_input_locked() {
  if (PQconsumeInput(connection_) != 1) {
    fail_all_locked(connection_error_locked("the connection was lost"));
    return;
  }
  auto pop_front = [&] {
    std::shared_ptr<Request> request = std::move(in_flight_.front());
    in_flight_.pop_front();
    in_flight_count_.fetch_sub(1, std::memory_order_relaxed);
    complete_locked(*request);
  };
  while (!in_flight_.empty() && PQisBusy(connection_) == 0) {
    PGresult* raw = PQgetResult(connection_);
    ResultPtr result{raw};
    Request& request = *in_flight_.front();
    const ExecStatusType status = raw != nullptr ? PQresultStatus(raw) : PGRES_EMPTY_QUERY;
    switch (request.phase) {
      case Request::Phase::prepare:
        if (raw == nullptr) {
          request.phase = Request::Phase::query;
        } else if (status != PGRES_COMMAND_OK && !request.error) {
          request.error = result_error(raw);
          if (!request.created_statement.empty()) statements_.erase(request.created_statement);
        }
        break;
      case Request::Phase::query:
        if (raw == nullptr) {
          if (request.sync_after) request.phase = Request::Phase::sync;
          else pop_front();
        } else if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
          if (!request.error) request.result = std::move(result);
        } else if (status == PGRES_PIPELINE_ABORTED) {
          if (!request.error) request.error = aborted_error();
        } else if (!request.error) {
          request.error = result_error(raw);
        }
        break;
      case Request::Phase::sync:
        if (status == PGRES_PIPELINE_SYNC) pop_front();
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
          request.error = result_error(raw);
        }
        break;
      case Request::Phase::queued:
      case Request::Phase::done:
        break;
    }
  }
  if (in_flight_.empty() && !pending_.empty()) send_pending_locked();

  bool notified = false;
  while (PGnotify* note = PQnotifies(connection_)) {
    notifications_.push_back(Notification{note->relname, note->extra, note->be_pid});
    PQfreemem(note);
    notified = true;
  }
  if (notified && notification_waker_) std::exchange(notification_waker_, spindle::detail::Waker{}).wake();
}

namespace {
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

Task<void> Session::read_loop(std::shared_ptr<Session> self) {
  for (;;) {
    std::optional<RegistrationRef> registration;
    {
      std::lock_guard lock(self->mutex_);
      if (self->broken_.load(std::memory_order_relaxed)) co_return;
      registration.emplace(self->registration_);
    }
    IoResult<void> ready = co_await ReadReady{*registration->registration};
    registration.reset();
    std::lock_guard lock(self->mutex_);
    if (self->broken_.load(std::memory_order_relaxed)) co_return;
    if (!ready) {
      self->fail_all_locked(db::Error{db::Error::Kind::connection, "the connection's socket failed: " + ready.error().message(), {}, {}});
      co_return;
    }
    self->process_input_locked();
  }
}

Task<void> Session::flush_loop(std::shared_ptr<Session> self) {
  for (;;) {
    std::optional<RegistrationRef> registration;
    {
      std::lock_guard lock(self->mutex_);
      if (self->broken_.load(std::memory_order_relaxed)) {
        self->flushing_ = false;
        co_return;
      }
      registration.emplace(self->registration_);
    }
    IoResult<void> ready = co_await WriteReady{*registration->registration};
    registration.reset();
    std::lock_guard lock(self->mutex_);
    if (!ready || self->broken_.load(std::memory_order_relaxed)) {
      self->flushing_ = false;
      co_return;
    }
    // libpq: while a flush is blocked, read too, so a server blocked on writing to us is not deadlocked.
    // And process what was read: the reader task watches the socket, not libpq's buffer.
    self->process_input_locked();
    if (self->broken_.load(std::memory_order_relaxed)) {
      self->flushing_ = false;
      co_return;
    }
    const int flushed = PQflush(self->connection_);
    if (flushed < 0) {
      self->flushing_ = false;
      self->fail_all_locked(self->connection_error_locked("could not send"));
      co_return;
    }
    if (flushed == 0) {
      self->flushing_ = false;
      co_return;
    }
  }
}

void Session::abandon_locked(Request& request) {
  request.abandoned = true;
  request.waker = spindle::detail::Waker{};
  for (auto it = pending_.begin(); it != pending_.end(); ++it)
    if (it->get() == &request) {
      pending_.erase(it);
      return;
    }
  // Cancel only what is certainly this call's: the query at the front of the pipeline, on a connection
  // nobody else is using. Calls made meanwhile wait until the cancel has been delivered, so it cannot hit
  // them instead.
  if (!exclusive_.load(std::memory_order_relaxed) || cancel_running_ || in_flight_.empty() ||
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

class Session::Completion {
 public:
  Completion(std::shared_ptr<Session> session, std::shared_ptr<Request> request) noexcept
      : session_(std::move(session)), request_(std::move(request)) {}
  Completion(Completion&& other) noexcept = default;
  Completion& operator=(Completion&&) = delete;
  ~Completion() {
    if (!request_ || request_->done.load(std::memory_order_acquire)) return;
    std::lock_guard lock(session_->mutex_);
    if (!request_->done.load(std::memory_order_relaxed)) session_->abandon_locked(*request_);
  }
  bool await_ready() const noexcept { return request_->done.load(std::memory_order_acquire); }
  bool await_suspend(std::coroutine_handle<> h) {
    spindle::detail::Waker waker = spindle::detail::make_waker(h);
    std::lock_guard lock(session_->mutex_);
    if (request_->done.load(std::memory_order_relaxed)) return false;
    request_->waker = std::move(waker);
    return true;
  }
  void await_resume() const noexcept {}

 private:
  std::shared_ptr<Session> session_;
  std::shared_ptr<Request> request_;
};

Task<Result<QueryResult, db::Error>> Session::run(std::shared_ptr<Session> self, Statement statement) {
  if (statement.error()) co_return Err{*statement.error()};
  auto request = std::make_shared<Request>();
  request->statement = std::move(statement);
  self->submit(request);
  Completion completion{std::move(self), request};
  co_await completion;
  if (request->error) co_return Err{std::move(*request->error)};
  co_return QueryResult{std::move(request->result)};
}

Task<Result<void, db::Error>> Session::run_script(std::shared_ptr<Session> self, std::string script) {
  auto request = std::make_shared<Request>();
  request->script = std::move(script);
  request->is_script = true;
  self->submit(request);
  Completion completion{std::move(self), request};
  co_await completion;
  if (request->error) co_return Err{std::move(*request->error)};
  co_return Result<void, db::Error>{};
}

Task<Result<BatchResults, db::Error>> Session::run_batch(std::shared_ptr<Session> self, Batch batch) {
  std::vector<std::shared_ptr<Request>> requests;
  requests.reserve(batch.statements_.size());
  for (Statement& statement : batch.statements_) {
    if (statement.error()) co_return Err{*statement.error()};
    auto request = std::make_shared<Request>();
    request->statement = std::move(statement);
    request->sync_after = false;
    requests.push_back(std::move(request));
  }
  if (requests.empty()) co_return BatchResults{{}};
  requests.back()->sync_after = true;
  self->submit(requests);
  // Results come in order: when the last has completed, so have the others.
  Completion completion{std::move(self), requests.back()};
  co_await completion;
  std::vector<QueryResult> results;
  results.reserve(requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    Request& request = *requests[i];
    if (request.error)
      co_return Err{db::Error{request.error->kind, "statement " + std::to_string(i + 1) + " of the batch: " + request.error->message,
                              request.error->sqlstate, request.error->constraint}};
    results.emplace_back(std::move(request.result));
  }
  co_return BatchResults{std::move(results)};
}

void Session::run_detached(std::string_view sql) {
  auto request = std::make_shared<Request>();
  request->statement = Statement::make(sql);
  submit(request);
}

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
    co_await Wait{*self};
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
    if (std::string* existing = value_of(key)) *existing = std::move(value);
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
  // pool, and pass the address (host stays, for messages and TLS).
  if (!params.host.empty() && params.host.front() != '/' && !params.has_hostaddr &&
      params.host.find(',') == std::string::npos && !is_ip_literal(params.host)) {
    std::uint16_t port = 5432;
    if (!params.port.empty()) port = static_cast<std::uint16_t>(std::stoi(params.port));
    IoResult<std::vector<SocketAddr>> addresses = co_await resolve(params.host, port);
    if (!addresses || addresses->empty())
      co_return Err{db::Error{db::Error::Kind::connection,
                              "could not resolve \"" + params.host + "\": " +
                                  (addresses ? std::string{"no address"} : addresses.error().message()),
                              {},
                              {}}};
    params.set("hostaddr", ip_of(addresses->front()));
  }
  params.set("client_encoding", "UTF8");
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
  if (PQstatus(connection.get()) == CONNECTION_BAD) co_return Err{connection_error(connection.get(), "could not connect")};

  SocketWatch watch;
  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
  for (;;) {
    if (polling == PGRES_POLLING_OK) break;
    if (polling == PGRES_POLLING_FAILED) co_return Err{connection_error(connection.get(), "could not connect")};
    // The socket can change between polls (libpq tries the next address, or again without TLS).
    const int fd = PQsocket(connection.get());
    if (fd < 0) co_return Err{connection_error(connection.get(), "could not connect")};
    if (fd != watch.fd()) watch = SocketWatch{fd};
    IoResult<void> ready;
    if (polling == PGRES_POLLING_READING) ready = co_await ReadReady{*watch.registration()};
    else ready = co_await WriteReady{*watch.registration()};
    if (!ready) co_return Err{db::Error{db::Error::Kind::connection, "could not connect: " + ready.error().message(), {}, {}}};
    polling = PQconnectPoll(connection.get());
  }
  watch.reset();
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
  // sends, so it cannot see the half-done work.
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
  Result<detail::QueryResult, db::Error> started = co_await std::move(starting);
  if (!started) co_return Err{std::move(started).error()};
  state->started = true;
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
  if (state->finished)
    co_return Err{db::Error{db::Error::Kind::query, "the transaction has already ended", {}, {}}};
  state->finished = true;
  if (state->depth > 0 && !commit) {
    Task<Result<detail::QueryResult, db::Error>> undoing =
        detail::Session::run(state->session, detail::Statement::make("ROLLBACK TO SAVEPOINT " + state->savepoint_name()));
    Result<detail::QueryResult, db::Error> undone = co_await std::move(undoing);
    if (!undone) co_return Err{std::move(undone).error()};
  }
  std::string sql;
  if (state->depth == 0) sql = commit ? "COMMIT" : "ROLLBACK";
  else sql = "RELEASE SAVEPOINT " + state->savepoint_name();
  Task<Result<detail::QueryResult, db::Error>> ending = detail::Session::run(state->session, detail::Statement::make(sql));
  Result<detail::QueryResult, db::Error> ended = co_await std::move(ending);
  if (!ended) co_return Err{std::move(ended).error()};
  // A COMMIT of a failed transaction answers ROLLBACK, without an error: that must not pass for success.
  if (commit && state->depth == 0 && ended->command_tag() == "ROLLBACK")
    co_return Err{db::Error{db::Error::Kind::query,
                            "the transaction was rolled back: a statement in it had failed", {}, {}}};
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
