#pragma once
// Test support: run an example server as a real child process, read what it prints, signal it, reap it.
// Plain blocking POSIX on purpose: the tests judge the server from outside, not through Spindle itself.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spindle_test {

/// How a child starts, beyond its command line.
struct ChildOptions {
  /// Variables to set (name, value); a value of nullopt removes the variable.
  std::vector<std::pair<std::string, std::optional<std::string>>> environment;
  /// Where it runs; empty: the test's own working directory.
  std::string working_directory;
};

class ChildProcess {
 public:
  explicit ChildProcess(std::vector<std::string> argv, const ChildOptions& options = {}) {
    // Everything the child needs is built before fork: after it, only async-signal-safe calls.
    std::vector<std::string> environment = environment_with(options.environment);
    std::vector<char*> envp;
    for (auto& entry : environment) envp.push_back(entry.data());
    envp.push_back(nullptr);
    int out[2], err[2];
    if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      if (!options.working_directory.empty() && ::chdir(options.working_directory.c_str()) != 0) ::_exit(126);
      ::execvpe(args[0], args.data(), envp.data());
      ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    stdout_ = out[0];
    stderr_ = err[0];
    ::fcntl(stderr_, F_SETFL, O_NONBLOCK);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(stdout_);
    ::close(stderr_);
  }

  pid_t pid() const { return pid_; }

  /// The next line of stdout, or nullopt if none comes within `limit`.
  std::optional<std::string> read_line(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (auto newline = buffered_.find('\n'); newline != std::string::npos) {
        std::string line = buffered_.substr(0, newline);
        buffered_.erase(0, newline + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{stdout_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[512];
      const ssize_t n = ::read(stdout_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffered_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Everything written to stderr so far.
  std::string drain_stderr() {
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(stderr_, chunk, sizeof chunk)) > 0) err_text_.append(chunk, static_cast<std::size_t>(n));
    return err_text_;
  }

  void signal(int signo) { ::kill(pid_, signo); }

  /// The exit status (or 128 + signal), or nullopt if it has not exited within `limit`.
  std::optional<int> wait(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      ::usleep(5000);
    }
    return std::nullopt;
  }

  /// User + system CPU time the process has used, in clock ticks (from /proc/PID/stat).
  long cpu_ticks() const;

 private:
  static std::vector<std::string> environment_with(
      const std::vector<std::pair<std::string, std::optional<std::string>>>& changes) {
    std::vector<std::string> result;
    for (char** entry = environ; *entry != nullptr; ++entry) {
      const std::string_view text{*entry};
      const std::string_view name = text.substr(0, text.find('='));
      bool changed = false;
      for (const auto& change : changes) changed = changed || change.first == name;
      if (!changed) result.emplace_back(text);
    }
    for (const auto& [name, value] : changes)
      if (value) result.push_back(name + "=" + *value);
    return result;
  }

  pid_t pid_ = -1;
  int stdout_ = -1;
  int stderr_ = -1;
  bool exited_ = false;
  std::string buffered_;
  std::string err_text_;
};

inline long ChildProcess::cpu_ticks() const {
  const std::string path = "/proc/" + std::to_string(pid_) + "/stat";
  FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return -1;
  char text[1024] = {};
  const std::size_t n = std::fread(text, 1, sizeof text - 1, file);
  std::fclose(file);
  std::string stat(text, n);
  // Fields after the command name (which may contain spaces) start after the last ')'.
  std::size_t pos = stat.rfind(')');
  if (pos == std::string::npos) return -1;
  std::vector<std::string> fields;
  std::size_t start = pos + 2;
  while (start < stat.size()) {
    std::size_t end = stat.find(' ', start);
    if (end == std::string::npos) end = stat.size();
    fields.push_back(stat.substr(start, end - start));
    start = end + 1;
  }
  // utime and stime are fields 14 and 15 of the stat line; fields[0] here is field 3.
  if (fields.size() < 13) return -1;
  return std::stol(fields[11]) + std::stol(fields[12]);
}

}  // namespace spindle_test
