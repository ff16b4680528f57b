// The PostgreSQL test harness itself (tests/support/postgres_server.hpp): a real server starts, serves,
// restarts on the same port with its data, stops, and leaves nothing behind. Checked through libpq's
// blocking API and /proc, not through Spindle: this is the ground the database tests stand on.

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres_server.hpp"

namespace {

using spindle::test::PostgresServer;
using Clock = std::chrono::steady_clock;

struct PqFinish {
  void operator()(PGconn* connection) const { PQfinish(connection); }
};
using Connection = std::unique_ptr<PGconn, PqFinish>;

struct PqClear {
  void operator()(PGresult* result) const { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, PqClear>;

// connect_timeout bounds a connection attempt that would otherwise wait on a server that never answers.
Connection pq_connect(const std::string& conninfo) {
  return Connection(PQconnectdb((conninfo + " connect_timeout=5").c_str()));
}

/// The single value of a one-row, one-column query, or the error text prefixed with "error: ".
std::string query_value(PGconn* connection, const char* sql) {
  Result result(PQexec(connection, sql));
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return std::string("error: ") + PQerrorMessage(connection);
  if (PQntuples(result.get()) != 1 || PQnfields(result.get()) != 1) return "error: not one value";
  return PQgetvalue(result.get(), 0, 0);
}

/// Pids of live (not zombie) processes whose command line contains `needle`.
std::vector<int> processes_mentioning(const std::string& needle) {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream cmdline_file(entry.path() / "cmdline", std::ios::binary);
    std::string cmdline((std::istreambuf_iterator<char>(cmdline_file)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) == std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') continue;
    found.push_back(std::stoi(name));
  }
  return found;
}

/// Live (not zombie) children of `parent`: the postmaster's backends and auxiliary processes. Their command
/// lines are rewritten ("postgres: checkpointer"), so they do not mention the data dir.
std::vector<int> children_of(int parent) {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat_file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) == 2 && ppid == parent && state != 'Z')
      found.push_back(std::stoi(name));
  }
  return found;
}

bool alive(int pid) {
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat_file) return false;
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] != 'Z';
}

int postmaster_pid(const PostgresServer& server) {
  std::ifstream pid_file(server.data_dir() + "/postmaster.pid");
  int pid = 0;
  pid_file >> pid;
  return pid;
}

TEST(PostgresServer, StartsAndServesOverTcpAndTheUnixSocket) {
  const auto began = Clock::now();
  auto server = PostgresServer::start();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began);
  std::cout << "[ timing   ] PostgresServer::start() took " << took.count() << " ms\n";
  RecordProperty("start_ms", static_cast<int>(took.count()));

  EXPECT_TRUE(server.running());
  EXPECT_GT(server.port(), 0);
  EXPECT_EQ(server.host(), "127.0.0.1");
  EXPECT_EQ(server.url(), "postgres://postgres@127.0.0.1:" + std::to_string(server.port()) + "/postgres");
  EXPECT_EQ(server.conninfo(),
            "host=127.0.0.1 port=" + std::to_string(server.port()) + " user=postgres dbname=postgres");

  auto tcp = pq_connect(server.conninfo());
  ASSERT_EQ(PQstatus(tcp.get()), CONNECTION_OK) << PQerrorMessage(tcp.get()) << server.log();
  EXPECT_NE(query_value(tcp.get(), "SELECT version()").find("PostgreSQL 15"), std::string::npos);
  EXPECT_EQ(query_value(tcp.get(), "SHOW fsync"), "off");
  EXPECT_EQ(query_value(tcp.get(), "SHOW max_connections"), "300");

  // libpq takes a URL too.
  auto by_url = Connection(PQconnectdb(server.url().c_str()));
  EXPECT_EQ(PQstatus(by_url.get()), CONNECTION_OK) << PQerrorMessage(by_url.get());

  // A host that starts with '/' is the Unix socket's directory.
  auto unix_socket =
      pq_connect("host=" + server.socket_dir() + " port=" + std::to_string(server.port()) + " user=postgres");
  ASSERT_EQ(PQstatus(unix_socket.get()), CONNECTION_OK) << PQerrorMessage(unix_socket.get());
  EXPECT_EQ(query_value(unix_socket.get(), "SELECT 1"), "1");

  EXPECT_NE(server.log().find("database system is ready to accept connections"), std::string::npos);
}

TEST(PostgresServer, PsqlSetsUpStateThatLibpqSees) {
  auto server = PostgresServer::start();
  EXPECT_EQ(server.psql("CREATE TABLE t(x int)"), "");
  server.psql("INSERT INTO t VALUES (1), (2), (3)");

  auto connection = pq_connect(server.conninfo());
  ASSERT_EQ(PQstatus(connection.get()), CONNECTION_OK) << PQerrorMessage(connection.get());
  EXPECT_EQ(query_value(connection.get(), "SELECT sum(x) FROM t"), "6");

  // And back: rows one a line, columns separated by '|', no headers, no final newline.
  Result insert(PQexec(connection.get(), "INSERT INTO t VALUES (4)"));
  ASSERT_EQ(PQresultStatus(insert.get()), PGRES_COMMAND_OK);
  EXPECT_EQ(server.psql("SELECT x, x * 10 FROM t ORDER BY x"), "1|10\n2|20\n3|30\n4|40");

  try {
    server.psql("SELEC 1");
    ADD_FAILURE() << "psql accepted bad SQL";
  } catch (const std::runtime_error& error) {
    EXPECT_NE(std::string(error.what()).find("syntax error"), std::string::npos) << error.what();
  }

  // The name is quoted: spaces and capitals are kept.
  server.create_database("Other db");
  auto other = pq_connect("host=127.0.0.1 port=" + std::to_string(server.port()) + " user=postgres dbname='Other db'");
  ASSERT_EQ(PQstatus(other.get()), CONNECTION_OK) << PQerrorMessage(other.get());
  EXPECT_EQ(query_value(other.get(), "SELECT current_database()"), "Other db");
  EXPECT_EQ(server.psql("SELECT current_database()", "Other db"), "Other db");
}

TEST(PostgresServer, RestartKeepsThePortAndTheDataAndBreaksConnections) {
  auto server = PostgresServer::start();
  const int port = server.port();
  server.psql("CREATE TABLE t(x int); INSERT INTO t VALUES (42)");
  auto old_connection = pq_connect(server.conninfo());
  ASSERT_EQ(PQstatus(old_connection.get()), CONNECTION_OK) << PQerrorMessage(old_connection.get());

  const auto began = Clock::now();
  server.restart();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - began);
  std::cout << "[ timing   ] PostgresServer::restart() took " << took.count() << " ms\n";
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);

  // The fast shutdown ended the old backend: the next query fails, and the connection is bad.
  EXPECT_EQ(query_value(old_connection.get(), "SELECT 1").rfind("error: ", 0), 0u);
  EXPECT_EQ(PQstatus(old_connection.get()), CONNECTION_BAD);

  auto new_connection = pq_connect(server.conninfo());
  ASSERT_EQ(PQstatus(new_connection.get()), CONNECTION_OK) << PQerrorMessage(new_connection.get()) << server.log();
  EXPECT_EQ(query_value(new_connection.get(), "SELECT x FROM t"), "42");
}

TEST(PostgresServer, StoppedServerRefusesConnectionsAtOnceAndStartsAgain) {
  auto server = PostgresServer::start();
  server.psql("CREATE TABLE kept(x int)");
  server.stop();
  EXPECT_FALSE(server.running());
  server.stop();  // stopping a stopped server does nothing

  const auto began = Clock::now();
  auto refused = pq_connect(server.conninfo());
  const auto took = Clock::now() - began;
  EXPECT_EQ(PQstatus(refused.get()), CONNECTION_BAD);
  EXPECT_LT(took, std::chrono::seconds(1));
  EXPECT_THROW(server.psql("SELECT 1"), std::runtime_error);

  server.start_again();
  EXPECT_THROW(server.start_again(), std::logic_error);
  EXPECT_EQ(server.psql("SELECT count(*) FROM kept"), "0");
}

TEST(PostgresServer, TwoServersRunSideBySide) {
  auto first = PostgresServer::start();
  auto second = PostgresServer::start();
  EXPECT_NE(first.port(), second.port());
  EXPECT_NE(first.socket_dir(), second.socket_dir());
  first.psql("CREATE TABLE only_in_first(x int)");
  EXPECT_EQ(first.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'"), "1");
  EXPECT_EQ(second.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_first'"), "0");
}

TEST(PostgresServer, MovedServerIsOwnedByItsNewObject) {
  auto original = PostgresServer::start();
  const std::string dir = original.socket_dir();
  PostgresServer moved = std::move(original);
  EXPECT_EQ(moved.socket_dir(), dir);
  EXPECT_EQ(moved.psql("SELECT 1"), "1");
  { PostgresServer sink = std::move(original); }  // destroying a moved-from object touches nothing
  EXPECT_EQ(moved.psql("SELECT 2"), "2");
}

TEST(PostgresServer, DestructorStopsTheServerAndRemovesTheDir) {
  std::string dir, data_dir;
  int postmaster = 0;
  std::vector<int> postmaster_children;
  Connection connection;  // outlives the server: the destructor must end a busy backend too
  {
    auto server = PostgresServer::start();
    dir = server.socket_dir();
    data_dir = server.data_dir();
    postmaster = postmaster_pid(server);
    connection = pq_connect(server.conninfo());
    ASSERT_EQ(PQstatus(connection.get()), CONNECTION_OK);
    ASSERT_EQ(PQsendQuery(connection.get(), "SELECT pg_sleep(60)"), 1);
    postmaster_children = children_of(postmaster);
    ASSERT_TRUE(std::filesystem::exists(dir));
    ASSERT_GT(postmaster, 0);
    EXPECT_TRUE(alive(postmaster));
    EXPECT_GE(postmaster_children.size(), 4u);  // checkpointer, bgwriter, walwriter, ..., the backend
    EXPECT_EQ(processes_mentioning(data_dir), std::vector<int>{postmaster});
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_TRUE(processes_mentioning(data_dir).empty());
  EXPECT_TRUE(processes_mentioning(dir).empty());  // the watchdog has exited too
  EXPECT_FALSE(alive(postmaster));
  for (int child : postmaster_children) EXPECT_FALSE(alive(child)) << "postmaster child " << child;
}

// A test process that dies without unwinding (SIGKILL, abort, a timeout) leaves the cleanup to the
// watchdog: the server stops and the dir goes, shortly after.
TEST(PostgresServer, WatchdogCleansUpAfterTheTestProcessIsKilled) {
  int report[2];
  ASSERT_EQ(::pipe(report), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(report[0]);
    try {
      auto server = PostgresServer::start();
      const std::string line = server.socket_dir() + " " + std::to_string(postmaster_pid(server)) + "\n";
      if (::write(report[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) ::_exit(2);
      ::kill(::getpid(), SIGKILL);  // no destructor runs
    } catch (...) {
    }
    ::_exit(1);
  }
  ::close(report[1]);
  std::string line;
  char chunk[256];
  ssize_t n;
  while ((n = ::read(report[0], chunk, sizeof chunk)) > 0) line.append(chunk, static_cast<std::size_t>(n));
  ::close(report[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child status " << status;
  const auto space = line.find(' ');
  ASSERT_NE(space, std::string::npos) << "child reported: " << line;
  const std::string dir = line.substr(0, space);
  const int postmaster = std::stoi(line.substr(space + 1));
  ASSERT_GT(postmaster, 0);

  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while ((std::filesystem::exists(dir) || alive(postmaster)) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(std::filesystem::exists(dir));
  EXPECT_FALSE(alive(postmaster));
  EXPECT_TRUE(processes_mentioning(dir).empty());
}

}  // namespace
