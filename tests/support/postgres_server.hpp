#pragma once
// Test support: a real, throwaway PostgreSQL 15 server for the database tests and benchmarks.
//
//   auto server = spindle::test::PostgresServer::start();   // initdb + pg_ctl start: 0.7-1.4 s
//   server.psql("CREATE TABLE t(x int)");                    // set up state without the code under test
//   connect(server.conninfo());                               // "host=127.0.0.1 port=P user=postgres ..."
//   server.restart();                                         // same port, same data
//   // destructor: immediate stop, temp dir removed
//
// Each server lives in its own temp dir (/tmp/spindle-pg.XXXXXX): the cluster in data/, the server log
// in log, the Unix socket next to them. The cluster is tuned for tests, not for durability (fsync,
// synchronous_commit and full_page_writes off) and trusts every local connection (no passwords).
//
// PostgreSQL refuses to run as root, and tests run as root here (CI, containers): as root, initdb and
// pg_ctl run as the `postgres` user through runuser, on a temp dir chowned to that user; otherwise they run
// as the current user. psql always runs as the current user: it connects over TCP, where trust needs no
// matching OS user.
//
// Child processes are started with fork + execv (never a shell command line built from strings), with
// absolute paths, stdin on /dev/null, fds above 2 closed (the postmaster outlives pg_ctl, and must not
// keep a test's pipes or sockets open), and an empty signal mask (the runtime may block signals it
// handles through signalfd; a masked SIGINT would make a child deaf to it).
//
// Crash cleanup is best-effort. The normal path (destructor, even during stack unwinding) stops the
// server and removes the dir. For a test process that dies without unwinding (SIGKILL, abort, a ctest
// timeout), each server has a watchdog: a `sh` in its own session that holds one end of a socketpair.
// The destructor tells it "done"; if instead the socket reaches EOF because the test process died, the
// watchdog stops the server (-m immediate) and removes the dir. It cannot help when the watchdog dies too
// (a kill of the whole session or cgroup, a machine reset): then a postmaster and a /tmp/spindle-pg.*
// dir stay behind. `pgrep -af spindle-pg` finds them; scripts/postgres-server stop DIR removes one.
//
// Not thread-safe: one thread owns a PostgresServer (any thread may connect to it).

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spindle::test {

namespace postgres_detail {

/// Where initdb, pg_ctl, postgres and psql live: Debian's PostgreSQL 15, or $SPINDLE_PG_BINDIR.
inline std::string bin_dir() {
  const char* configured = std::getenv("SPINDLE_PG_BINDIR");
  return configured != nullptr && *configured != '\0' ? configured : "/usr/lib/postgresql/15/bin";
}

/// runuser's absolute path (execv does no PATH search, and execvp is not async-signal-safe after fork).
inline std::string runuser_path() {
  for (const char* candidate : {"/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"})
    if (::access(candidate, X_OK) == 0) return candidate;
  throw std::runtime_error("PostgresServer: running as root needs runuser (util-linux), which was not found");
}

/// In a forked child, before execv: only async-signal-safe calls from here on (the parent may have
/// threads, and one of them may have held the malloc lock at fork time).
inline void prepare_child(int in_fd, int out_fd, int err_fd) {
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);  // an ignored SIGPIPE survives exec; the tools expect the default
  ::dup2(in_fd, 0);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  if (::close_range(3, ~0U, 0) != 0)
    for (int fd = 3; fd < 4096; ++fd) ::close(fd);
}

struct ProcessResult {
  int status = -1;  // the exit code, 128 + signal number, or -1 when it was killed for taking too long
  std::string out;  // stdout
  std::string err;  // stderr
  std::string both() const { return out + err; }
};

inline std::vector<char*> c_argv(std::vector<std::string>& argv) {
  std::vector<char*> pointers;
  for (auto& arg : argv) pointers.push_back(arg.data());
  pointers.push_back(nullptr);
  return pointers;
}

/// Runs argv[0] (an absolute path) in `cwd` and collects its output; kills it after `limit`.
inline ProcessResult run(std::vector<std::string> argv, const std::string& cwd,
                         std::chrono::milliseconds limit = std::chrono::seconds(120)) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    throw std::runtime_error("PostgresServer: pipe: " + std::string(std::strerror(errno)));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error("PostgresServer: pipe: " + std::string(std::strerror(errno)));
  }
  const int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<char*> args = c_argv(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    prepare_child(dev_null, out[1], err[1]);
    // The tools must not inherit an unreadable cwd (root's home, say): runuser keeps it, and initdb and
    // postgres complain, or fail, when they cannot stat it.
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    static const char message[] = "PostgresServer: execv failed\n";
    [[maybe_unused]] auto ignored = ::write(2, message, sizeof message - 1);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  ::close(dev_null);
  if (pid < 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw std::runtime_error("PostgresServer: fork: " + std::string(std::strerror(errno)));
  }

  ProcessResult result;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_pipes = 2;
  while (open_pipes > 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(fds[i].fd, chunk, sizeof chunk);
      if (n > 0) {
        sinks[i]->append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;  // poll ignores negative fds
        --open_pipes;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    result.status = -1;
    result.err += "\n[PostgresServer: killed after " + std::to_string(limit.count()) + " ms]";
  } else {
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return result;
}

/// A TCP port on 127.0.0.1 that nothing is bound to right now, chosen below the kernel's ephemeral range.
/// Not port 0's pick: that comes from the ephemeral range, where clients' outgoing connections take
/// their local ports. While a server restarts, its port is free, and a client retrying a connection to
/// it can be given that very port and connect to itself (TCP simultaneous open); then the restarted
/// server cannot bind. Below the range, only another server binding explicitly can take it.
inline int pick_port() {
  int ephemeral_low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_low;
  std::random_device seed;
  std::mt19937 random(seed());
  const int low = 10000;
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 0;  // 0: let the kernel choose, when the range leaves no room below it
    if (ephemeral_low - 1 > low) port = std::uniform_int_distribution<int>(low, ephemeral_low - 1)(random);
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("PostgresServer: socket: " + std::string(std::strerror(errno)));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    socklen_t length = sizeof address;
    // No SO_REUSEADDR: a port with TIME_WAIT leftovers is refused too, which is what we want.
    const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
                       ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
    ::close(fd);
    if (bound) return ntohs(address.sin_port);
  }
  throw std::runtime_error("PostgresServer: found no free TCP port on 127.0.0.1");
}

inline std::string read_file(const std::string& path, std::streamoff from = 0) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return {};
  file.seekg(from);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

// The watchdog's script. $1: the temp dir, $2: the bin dir, $3: runuser's path, or "" when not root.
// A line on stdin means the owner cleaned up; EOF means the owner died without doing so.
inline constexpr const char* watchdog_script = R"sh(
if read -r _; then exit 0; fi
if [ -n "$3" ]; then
  "$3" -u postgres -- "$2/pg_ctl" -D "$1/data" -m immediate -w -t 10 stop
else
  "$2/pg_ctl" -D "$1/data" -m immediate -w -t 10 stop
fi
rm -rf -- "$1"
)sh";

}  // namespace postgres_detail

class PostgresServer {
 public:
  /// Creates a cluster in a new temp dir and starts it on a free port of 127.0.0.1. Throws
  /// std::runtime_error with initdb's output or the server log when that fails (nothing is left behind).
  static PostgresServer start() {
    PostgresServer server;
    server.create_dir();
    server.start_watchdog();
    server.init_cluster();
    // A port free when checked may be taken before postgres binds it (another test starting a server at
    // the same moment): then try another.
    for (int attempt = 1;; ++attempt) {
      server.port_ = postgres_detail::pick_port();
      const std::string failure = server.try_start();
      if (failure.empty()) break;
      if (attempt >= 5 || failure.find("could not bind") == std::string::npos) throw std::runtime_error(failure);
    }
    return server;
  }

  PostgresServer(PostgresServer&& other) noexcept { take(other); }
  PostgresServer& operator=(PostgresServer&& other) noexcept {
    if (this != &other) {
      clean_up();
      take(other);
    }
    return *this;
  }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;
  ~PostgresServer() { clean_up(); }

  int port() const noexcept { return port_; }
  std::string host() const { return "127.0.0.1"; }
  /// The temp dir; also the Unix socket's dir (socket file .s.PGSQL.<port>).
  const std::string& socket_dir() const noexcept { return dir_; }
  std::string data_dir() const { return dir_ + "/data"; }
  std::string url() const { return "postgres://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres"; }
  std::string conninfo() const {
    return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  }
  bool running() const noexcept { return running_; }

  /// Fast shutdown (clients are disconnected, no recovery at the next start); waits until it is down.
  /// Does nothing when stopped. A server that died on its own counts as stopped.
  void stop() {
    if (!running_) return;
    auto result = pg_ctl({"-m", "fast", "-w", "-t", "60", "stop"});
    if (result.status != 0) {
      // pg_ctl status exits 3 when no server runs (say, the test killed it): nothing left to stop.
      if (pg_ctl({"status"}).status == 3) {
        running_ = false;
        return;
      }
      throw std::runtime_error("PostgresServer: pg_ctl stop failed:\n" + result.both() + "\nlog:\n" + log());
    }
    running_ = false;
  }

  /// Starts the stopped server again on the same port with the same data. Throws std::logic_error when it
  /// is running, std::runtime_error when it does not start (for example when something took the port).
  void start_again() {
    if (running_) throw std::logic_error("PostgresServer::start_again: the server is running");
    if (const std::string failure = try_start(); !failure.empty()) throw std::runtime_error(failure);
  }

  /// stop() then start_again(): every connection breaks; the port and the data stay.
  void restart() {
    stop();
    start_again();
  }

  /// The server log since the first start (appended across restarts), for failure messages.
  std::string log() const { return postgres_detail::read_file(dir_ + "/log"); }

  /// CREATE DATABASE "name" (quoted as an identifier: the name is taken as is, case included).
  void create_database(std::string_view name) const { psql("CREATE DATABASE " + quote_identifier(name)); }

  /// Runs `sql` with psql (unaligned, tuples only: rows one a line, columns separated by '|') and returns
  /// its stdout without the final newline. Throws std::runtime_error with psql's stderr on any error.
  /// Several statements in one string run as one simple query (one transaction, unless they contain
  /// BEGIN/COMMIT or statements like CREATE DATABASE that refuse a transaction block).
  std::string psql(std::string_view sql, std::string_view database = "postgres") const {
    auto result = postgres_detail::run(
        {postgres_detail::bin_dir() + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p",
         std::to_string(port_), "-U", "postgres", "-d", std::string(database), "-c", std::string(sql)},
        dir_);
    if (result.status != 0)
      throw std::runtime_error("PostgresServer::psql failed (exit " + std::to_string(result.status) +
                               ") for: " + std::string(sql) + "\n" + result.err);
    while (!result.out.empty() && result.out.back() == '\n') result.out.pop_back();
    return std::move(result.out);
  }

 private:
  PostgresServer() = default;

  static std::string quote_identifier(std::string_view name) {
    std::string quoted = "\"";
    for (char c : name) {
      if (c == '"') quoted += '"';
      quoted += c;
    }
    return quoted + '"';
  }

  void create_dir() {
    char pattern[] = "/tmp/spindle-pg.XXXXXX";  // mkdtemp's letters need no quoting in pg_ctl's -o
    if (::mkdtemp(pattern) == nullptr)
      throw std::runtime_error("PostgresServer: mkdtemp: " + std::string(std::strerror(errno)));
    dir_ = pattern;
    owner_pid_ = ::getpid();
    // The mark scripts/postgres-server stop looks for before it removes a dir: with it, that script also
    // cleans up after a harness whose watchdog could not.
    std::ofstream(dir_ + "/.spindle-postgres-server").put('\n');
    if (::geteuid() == 0) {
      runuser_ = postgres_detail::runuser_path();
      const passwd* user = ::getpwnam("postgres");
      if (user == nullptr) throw std::runtime_error("PostgresServer: running as root needs a `postgres` user");
      // mkdtemp made it 0700 and root's: postgres must own the dir to create data/, log and its socket.
      if (::chown(dir_.c_str(), user->pw_uid, user->pw_gid) != 0)
        throw std::runtime_error("PostgresServer: chown " + dir_ + ": " + std::strerror(errno));
    }
  }

  void start_watchdog() {
    int ends[2];
    // A socketpair rather than a pipe: writing "done" to a watchdog that already died must not raise
    // SIGPIPE in the test (send with MSG_NOSIGNAL).
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
      throw std::runtime_error("PostgresServer: socketpair: " + std::string(std::strerror(errno)));
    const int dev_null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    std::vector<std::string> argv = {
        "/bin/sh", "-c", postgres_detail::watchdog_script, "spindle-pg-watchdog", dir_, postgres_detail::bin_dir(),
        runuser_};
    std::vector<char*> args = postgres_detail::c_argv(argv);
    const pid_t pid = ::fork();
    if (pid == 0) {
      // Its own session: the Ctrl-C or the SIGTERM sent to the test's process group must not reach it.
      ::setsid();
      postgres_detail::prepare_child(ends[1], dev_null, dev_null);
      if (::chdir("/") != 0) ::_exit(126);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(ends[1]);
    ::close(dev_null);
    if (pid < 0) {
      ::close(ends[0]);
      throw std::runtime_error("PostgresServer: fork: " + std::string(std::strerror(errno)));
    }
    watchdog_pid_ = pid;
    watchdog_fd_ = ends[0];
  }

  /// argv for a server tool: run as `postgres` when we are root.
  std::vector<std::string> as_server_user(std::vector<std::string> argv) const {
    if (runuser_.empty()) return argv;
    std::vector<std::string> wrapped = {runuser_, "-u", "postgres", "--"};
    wrapped.insert(wrapped.end(), argv.begin(), argv.end());
    return wrapped;
  }

  postgres_detail::ProcessResult pg_ctl(std::vector<std::string> arguments) const {
    std::vector<std::string> argv = {postgres_detail::bin_dir() + "/pg_ctl", "-D", data_dir()};
    argv.insert(argv.end(), arguments.begin(), arguments.end());
    return postgres_detail::run(as_server_user(std::move(argv)), dir_);
  }

  void init_cluster() {
    auto result =
        postgres_detail::run(as_server_user({postgres_detail::bin_dir() + "/initdb", "-D", data_dir(), "-A", "trust",
                                             "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"}),
                             dir_);
    if (result.status != 0)
      throw std::runtime_error("PostgresServer: initdb failed (exit " + std::to_string(result.status) + "):\n" +
                               result.both());
  }

  /// Starts the server on port_ and waits until it accepts connections. Returns "" on success, otherwise a
  /// message with pg_ctl's output and what the attempt added to the log.
  std::string try_start() {
    const std::string log_path = dir_ + "/log";
    std::error_code ignored;
    const auto log_before =
        std::filesystem::exists(log_path, ignored) ? std::filesystem::file_size(log_path, ignored) : 0;
    const std::string options = "-p " + std::to_string(port_) + " -c listen_addresses=127.0.0.1 -k " + dir_ +
                                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                                " -c max_connections=300 -c shared_buffers=64MB";
    auto result = pg_ctl({"-w", "-t", "30", "-l", log_path, "-o", options, "start"});
    if (result.status == 0) {
      running_ = true;
      return {};
    }
    return "PostgresServer: pg_ctl start on port " + std::to_string(port_) + " failed (exit " +
           std::to_string(result.status) + "):\n" + result.both() + "\nlog:\n" +
           postgres_detail::read_file(log_path, static_cast<std::streamoff>(log_before));
  }

  /// Kills the postmaster named in postmaster.pid, for when pg_ctl could not stop it.
  void kill_postmaster() const noexcept {
    std::ifstream pid_file(data_dir() + "/postmaster.pid");
    long pid = 0;
    if (pid_file >> pid && pid > 1) ::kill(static_cast<pid_t>(pid), SIGKILL);
  }

  /// The destructor's work: never throws. When something fails here the watchdog is not dismissed, so it
  /// tries the same cleanup once more after the socket closes.
  void clean_up() noexcept {
    if (dir_.empty()) return;
    // A forked child (a death test) shares the object but not the server: only the creator cleans up.
    if (::getpid() != owner_pid_) return;
    bool clean = true;
    try {
      // postmaster.pid, not running_: a start that timed out may have left a postmaster behind.
      if (running_ || std::filesystem::exists(data_dir() + "/postmaster.pid")) {
        // Immediate: no shutdown checkpoint, the data is thrown away anyway.
        if (pg_ctl({"-m", "immediate", "-w", "-t", "30", "stop"}).status != 0 && pg_ctl({"status"}).status != 3) {
          kill_postmaster();
          clean = false;
        }
        running_ = false;
      }
    } catch (...) {
      clean = false;
    }
    std::error_code error;
    std::filesystem::remove_all(dir_, error);
    if (error) clean = false;
    if (watchdog_fd_ >= 0) {
      if (clean) ::send(watchdog_fd_, "done\n", 5, MSG_NOSIGNAL);
      ::close(watchdog_fd_);  // EOF without "done": the watchdog cleans up
      watchdog_fd_ = -1;
    }
    if (watchdog_pid_ > 0 && clean) {
      // It exits as soon as it reads the line; do not hang a test if it does not.
      bool reaped = false;
      for (int i = 0; i < 500 && !reaped; ++i) {
        reaped = ::waitpid(watchdog_pid_, nullptr, WNOHANG) != 0;  // its pid, or -1 (already reaped)
        if (!reaped) ::usleep(10'000);
      }
      if (!reaped) {
        ::kill(watchdog_pid_, SIGKILL);
        ::waitpid(watchdog_pid_, nullptr, 0);
      }
    }
    // When not clean, the watchdog is left to finish on its own; it stays this process's child (a zombie
    // once done) until the process exits: harmless.
    watchdog_pid_ = -1;
    dir_.clear();
  }

  void take(PostgresServer& other) noexcept {
    dir_ = std::exchange(other.dir_, {});
    runuser_ = std::exchange(other.runuser_, {});
    port_ = std::exchange(other.port_, 0);
    running_ = std::exchange(other.running_, false);
    owner_pid_ = std::exchange(other.owner_pid_, -1);
    watchdog_pid_ = std::exchange(other.watchdog_pid_, -1);
    watchdog_fd_ = std::exchange(other.watchdog_fd_, -1);
  }

  std::string dir_;      // the temp dir; empty in a moved-from object
  std::string runuser_;  // runuser's path when root, else empty
  int port_ = 0;
  bool running_ = false;
  pid_t owner_pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
};

}  // namespace spindle::test
