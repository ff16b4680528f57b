// ServeDir: static files through the router, in process (TestClient) and over a real socket.

#include "spindle/http/serve_dir.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "spindle/http.hpp"
#include "spindle/spindle.hpp"
#include "support/co_assert.hpp"
#include "support/http_harness.hpp"

using namespace spindle;
using namespace spindle::http;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSecret = "TOP-SECRET-7f3a91";
constexpr std::string_view kDigits = "0123456789";
// Sun, 06 Nov 1994 08:49:37 GMT, RFC 9110's example date.
constexpr std::int64_t kOldDate = 784111777;

void write_file(const fs::path& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

std::string pseudo_random_bytes(std::size_t size) {
  std::mt19937_64 generator{20240607};
  std::string bytes(size, '\0');
  for (auto& byte : bytes) byte = static_cast<char>(generator() & 0xff);
  return bytes;
}

/// The files every test serves, created once in a fresh temporary directory:
///   <base>/secret.txt                    outside the root: must never be served
///   <base>/public/...                    the root
///   <base>/public_link -> public         a root reached through a link
struct Tree {
  fs::path base, root, secret;
  std::string big;  // 1 MiB of pseudo-random bytes, public/big.bin
};
Tree tree;

fs::path make_temporary_directory() {
  std::string pattern = (fs::temp_directory_path() / "spindle-serve-dir-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return fs::path{pattern};
}

Router<> app(const fs::path& root, ServeDirOptions options = {}) {
  return Router<>{}.route("/static/{*path}", get(ServeDir{root, options})).fallback(ServeDir{root, options});
}

HeaderMap field(std::string_view name, std::string_view value) {
  HeaderMap headers;
  headers.set(name, value);
  return headers;
}

/// A body's bytes, a stream's chunks concatenated; the largest chunk seen goes to `largest_chunk`.
Task<std::string> collect(Body& body, std::size_t* largest_chunk = nullptr) {
  if (!body.is_stream()) co_return std::string{body.bytes()};
  std::string all;
  for (;;) {
    std::optional<std::string> chunk = co_await body.next_chunk();
    if (!chunk) break;
    if (largest_chunk != nullptr) *largest_chunk = std::max(*largest_chunk, chunk->size());
    all += *chunk;
  }
  co_return all;
}

std::size_t open_descriptors() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator{"/proc/self/fd"}, fs::directory_iterator{}));
}

template <class F, class... Args>
void run(F body, Args... args) {
  Runtime runtime;
  runtime.block_on(body(std::move(args)...));
}

class ServeDirTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tree.base = make_temporary_directory();
    tree.root = tree.base / "public";
    tree.secret = tree.base / "secret.txt";
    write_file(tree.secret, kSecret);
    fs::create_directories(tree.root / "docs");
    fs::create_directories(tree.root / "empty");
    write_file(tree.root / "index.html", "<h1>home</h1>");
    write_file(tree.root / "docs" / "index.html", "<h1>docs</h1>");
    write_file(tree.root / "style.css", "body { color: red }");
    write_file(tree.root / "digits.txt", kDigits);
    write_file(tree.root / "with space.txt", "spaced");
    write_file(tree.root / "dated.txt", "old news");
    write_file(tree.root / "empty.txt", "");
    for (const char* name :
         {"app.js", "mod.mjs", "data.json",   "notes.txt", "pic.svg",      "pic.png",     "a.jpg",     "a.jpeg",
          "a.gif",  "a.webp",  "favicon.ico", "m.wasm",    "d.pdf",        "f.xml",       "font.woff", "font.woff2",
          "v.mp4",  "v.webm",  "app.js.map",  "PAGE.HTML", "blob.unknown", "no_extension"})
      write_file(tree.root / name, name);
    tree.big = pseudo_random_bytes(1 << 20);
    write_file(tree.root / "big.bin", tree.big);
    write_file(tree.root / "ten_thousand.bin", pseudo_random_bytes(10'000));
    fs::create_symlink("../secret.txt", tree.root / "link_out");
    fs::create_symlink(tree.secret, tree.root / "absolute_link_out");
    fs::create_directory_symlink("..", tree.root / "dir_out");
    fs::create_symlink("style.css", tree.root / "link_in");
    fs::create_directory_symlink("public", tree.base / "public_link");
    const timespec times[2] = {{kOldDate, 0}, {kOldDate, 0}};
    if (::utimensat(AT_FDCWD, (tree.root / "dated.txt").c_str(), times, 0) != 0)
      throw std::runtime_error("utimensat failed");
  }
  static void TearDownTestSuite() { fs::remove_all(tree.base); }
};

}  // namespace

TEST_F(ServeDirTest, ServesFilesWithTheirContentTypes) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    const std::pair<std::string_view, std::string_view> expected[] = {
        {"style.css", "text/css; charset=utf-8"},
        {"index.html", "text/html; charset=utf-8"},
        {"PAGE.HTML", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json"},
        {"notes.txt", "text/plain; charset=utf-8"},
        {"pic.svg", "image/svg+xml"},
        {"pic.png", "image/png"},
        {"a.jpg", "image/jpeg"},
        {"a.jpeg", "image/jpeg"},
        {"a.gif", "image/gif"},
        {"a.webp", "image/webp"},
        {"favicon.ico", "image/x-icon"},
        {"m.wasm", "application/wasm"},
        {"d.pdf", "application/pdf"},
        {"f.xml", "text/xml; charset=utf-8"},
        {"font.woff", "font/woff"},
        {"font.woff2", "font/woff2"},
        {"v.mp4", "video/mp4"},
        {"v.webm", "video/webm"},
        {"app.js.map", "application/json"},
        {"blob.unknown", "application/octet-stream"},
        {"no_extension", "application/octet-stream"},
    };
    for (const auto& [name, type] : expected) {
      const std::string target = "/static/" + std::string{name};
      Response response = co_await client.get(target);
      EXPECT_EQ(response.status, Status::ok) << name;
      EXPECT_EQ(response.headers.get("content-type"), type) << name;
      EXPECT_EQ(response.headers.get("x-content-type-options"), "nosniff") << name;
      EXPECT_EQ(response.headers.get("accept-ranges"), "bytes") << name;
      if (name != "style.css" && name != "index.html") {
        EXPECT_EQ(response.body.bytes(), name);
      }
    }
    Response css = co_await client.get("/static/style.css");
    EXPECT_EQ(css.body.bytes(), "body { color: red }");
    EXPECT_FALSE(css.headers.contains("cache-control"));
    Response spaced = co_await client.get("/static/with%20space.txt");
    EXPECT_EQ(spaced.status, Status::ok);
    EXPECT_EQ(spaced.body.bytes(), "spaced");
    Response empty = co_await client.get("/static/empty.txt");
    EXPECT_EQ(empty.status, Status::ok);
    EXPECT_EQ(empty.body.bytes(), "");
    // Outside a catch-all route (the fallback), the whole path names the file.
    Response by_fallback = co_await client.get("/docs/index.html");
    EXPECT_EQ(by_fallback.body.bytes(), "<h1>docs</h1>");
  });
}

TEST_F(ServeDirTest, DirectoriesServeTheirIndexAfterARedirectToTheSlash) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response docs = co_await client.get("/static/docs/");
    EXPECT_EQ(docs.status, Status::ok);
    EXPECT_EQ(docs.body.bytes(), "<h1>docs</h1>");
    EXPECT_EQ(docs.headers.get("content-type"), "text/html; charset=utf-8");
    Response home = co_await client.get("/");
    EXPECT_EQ(home.body.bytes(), "<h1>home</h1>");

    Response redirect = co_await client.get("/static/docs");
    EXPECT_EQ(redirect.status, Status::permanent_redirect);
    EXPECT_EQ(redirect.headers.get("location"), "/static/docs/");
    Response with_query = co_await client.get("/static/docs?page=2&q=a%20b");
    EXPECT_EQ(with_query.status, Status::permanent_redirect);
    EXPECT_EQ(with_query.headers.get("location"), "/static/docs/?page=2&q=a%20b");
    Response by_fallback = co_await client.get("/docs?x=1");
    EXPECT_EQ(by_fallback.headers.get("location"), "/docs/?x=1");

    Response no_index = co_await client.get("/static/empty/");
    EXPECT_EQ(no_index.status, Status::not_found);
    Response file_as_directory = co_await client.get("/static/style.css/");
    EXPECT_EQ(file_as_directory.status, Status::not_found);
  });
}

TEST_F(ServeDirTest, WithoutIndexHtmlDirectoriesAreNotFound) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root, {.index_html = false})};
    Response docs = co_await client.get("/static/docs/");
    EXPECT_EQ(docs.status, Status::not_found);
    Response no_redirect = co_await client.get("/static/docs");
    EXPECT_EQ(no_redirect.status, Status::not_found);
    Response file = co_await client.get("/static/docs/index.html");
    EXPECT_EQ(file.status, Status::ok);
  });
}

TEST_F(ServeDirTest, MissingFilesAreNotFoundInJson) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response missing = co_await client.get("/static/nope.txt");
    EXPECT_EQ(missing.status, Status::not_found);
    EXPECT_EQ(missing.headers.get("content-type"), "application/json");
    EXPECT_EQ(missing.body.bytes(), R"({"error":"not found"})");
    Response missing_dir = co_await client.get("/static/nope/deeper.txt");
    EXPECT_EQ(missing_dir.status, Status::not_found);
    Response through_file = co_await client.get("/static/style.css/x");
    EXPECT_EQ(through_file.status, Status::not_found);
    // A root that does not exist (yet) is not an error either.
    TestClient nowhere{app(tree.base / "not-there")};
    Response nothing = co_await nowhere.get("/static/style.css");
    EXPECT_EQ(nothing.status, Status::not_found);
  });
}

TEST_F(ServeDirTest, BadEscapesAreBadRequests) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response bad = co_await client.get("/static/%zz.txt");
    EXPECT_EQ(bad.status, Status::bad_request);
    Response not_utf8 = co_await client.get("/static/%ff.txt");
    EXPECT_EQ(not_utf8.status, Status::bad_request);
  });
}

TEST_F(ServeDirTest, NothingOutsideTheRootIsServed) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    // Every one of these reaches outside the root if a check is missing. The secret is two levels up from
    // docs/ and one from the root.
    const std::string secret_path = tree.secret.string();  // absolute: "/tmp/spindle-serve-dir-.../secret.txt"
    const std::vector<std::string> attempts = {
        "/static/../secret.txt",
        "/static/docs/../../secret.txt",
        "/static/./../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/.%2e/secret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/..%2Fsecret.txt",
        "/static/docs/..%2F..%2Fsecret.txt",
        "/static/..%5csecret.txt",
        "/static/..%5Csecret.txt",
        "/static/docs%5c..%5c..%5csecret.txt",
        "/static/%2e%2e%5csecret.txt",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/%2F%2Fetc%2Fpasswd",
        "/static/" + secret_path,
        "/static/" + percent_encode(secret_path),
        "/static/%00../secret.txt",
        "/static/style.css%00.png",
        "/static/%252e%252e/secret.txt",  // double encoding: a file literally named "%2e%2e"
        "/static/link_out",
        "/static/absolute_link_out",
        "/static/dir_out/secret.txt",
        "/static/dir_out/public/../secret.txt",
        "/static/./style.css",
        "/static/docs//index.html",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "//etc/passwd",
        "/%2Fetc/passwd",
        "//" + secret_path,
        "/link_out",
        "/dir_out/secret.txt",
    };
    for (const std::string& target : attempts) {
      Response response = co_await client.get(target);
      EXPECT_EQ(response.status, Status::not_found) << target;
      std::string body = co_await collect(response.body);
      EXPECT_EQ(body.find(kSecret), std::string::npos) << target;
    }
    // A link that stays inside the root is followed.
    Response inside = co_await client.get("/static/link_in");
    EXPECT_EQ(inside.status, Status::ok);
    EXPECT_EQ(inside.body.bytes(), "body { color: red }");
  });
}

TEST_F(ServeDirTest, ARootReachedThroughALinkServesItsFiles) {
  run([]() -> Task<void> {
    TestClient client{app(tree.base / "public_link")};
    Response css = co_await client.get("/static/style.css");
    EXPECT_EQ(css.status, Status::ok);
    EXPECT_EQ(css.body.bytes(), "body { color: red }");
    Response escape = co_await client.get("/static/link_out");
    EXPECT_EQ(escape.status, Status::not_found);
  });
}

TEST_F(ServeDirTest, ETagAndIfNoneMatchGive304) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root, {.cache_control = "public, max-age=3600"})};
    Response first = co_await client.get("/static/style.css");
    const std::string etag{first.headers.get("etag").value_or("")};
    CO_ASSERT(etag.size() > 2 && etag.front() == '"' && etag.back() == '"');
    EXPECT_EQ(first.headers.get("cache-control"), "public, max-age=3600");

    // Named, not a braced list in the for: temporaries that live across awaits are what GCC 12 has
    // miscompiled (docs/architecture.md), so the tests keep them in named locals.
    const std::vector<std::string> conditions = {etag, "\"other\", " + etag, "W/" + etag, "*"};
    for (const std::string& condition : conditions) {
      Response cached = co_await client.send(Method::get, "/static/style.css", field("if-none-match", condition));
      EXPECT_EQ(cached.status, Status::not_modified) << condition;
      EXPECT_TRUE(cached.body.is_empty()) << condition;
      EXPECT_EQ(cached.headers.get("etag"), etag) << condition;
      EXPECT_EQ(cached.headers.get("cache-control"), "public, max-age=3600") << condition;
    }
    Response head = co_await client.send(Method::head, "/static/style.css", field("if-none-match", etag));
    EXPECT_EQ(head.status, Status::not_modified);

    Response changed = co_await client.send(Method::get, "/static/style.css", field("if-none-match", "\"other\""));
    EXPECT_EQ(changed.status, Status::ok);
    EXPECT_EQ(changed.body.bytes(), "body { color: red }");
    // If-None-Match decides alone: a matching If-Modified-Since does not make a mismatch a 304.
    HeaderMap both = field("if-none-match", "\"other\"");
    both.set("if-modified-since", "Fri, 31 Dec 9999 23:59:59 GMT");
    Response decided = co_await client.send(Method::get, "/static/style.css", std::move(both));
    EXPECT_EQ(decided.status, Status::ok);
    // Another file's tag does not match.
    Response digits = co_await client.get("/static/digits.txt");
    EXPECT_NE(digits.headers.get("etag"), etag);
  });
}

TEST_F(ServeDirTest, IfModifiedSinceGives304InEveryDateFormat) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response first = co_await client.get("/static/dated.txt");
    EXPECT_EQ(first.headers.get("last-modified"), "Sun, 06 Nov 1994 08:49:37 GMT");
    const std::vector<std::string> same_or_later = {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                                                    "Sun Nov  6 08:49:37 1994", "Mon, 07 Nov 1994 00:00:00 GMT"};
    for (const std::string& date : same_or_later) {
      Response cached = co_await client.send(Method::get, "/static/dated.txt", field("if-modified-since", date));
      EXPECT_EQ(cached.status, Status::not_modified) << date;
      EXPECT_TRUE(cached.body.is_empty()) << date;
      EXPECT_EQ(cached.headers.get("last-modified"), "Sun, 06 Nov 1994 08:49:37 GMT") << date;
    }
    const std::vector<std::string> earlier_or_invalid = {
        "Sun, 06 Nov 1994 08:49:36 GMT", "yesterday", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT"};
    for (const std::string& date : earlier_or_invalid) {
      Response fresh = co_await client.send(Method::get, "/static/dated.txt", field("if-modified-since", date));
      EXPECT_EQ(fresh.status, Status::ok) << date;
      EXPECT_EQ(fresh.body.bytes(), "old news") << date;
    }
  });
}

TEST_F(ServeDirTest, IfMatchAndIfUnmodifiedSinceGive412) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response first = co_await client.get("/static/dated.txt");
    const std::string etag{first.headers.get("etag").value_or("")};
    Response matching = co_await client.send(Method::get, "/static/dated.txt", field("if-match", etag));
    EXPECT_EQ(matching.status, Status::ok);
    Response other = co_await client.send(Method::get, "/static/dated.txt", field("if-match", "\"other\""));
    EXPECT_EQ(code(other.status), 412);
    // If-Match compares strongly: a weak tag never matches.
    Response weak = co_await client.send(Method::get, "/static/dated.txt", field("if-match", "W/" + etag));
    EXPECT_EQ(code(weak.status), 412);
    Response unmodified = co_await client.send(Method::get, "/static/dated.txt",
                                               field("if-unmodified-since", "Sun, 06 Nov 1994 08:49:37 GMT"));
    EXPECT_EQ(unmodified.status, Status::ok);
    Response modified = co_await client.send(Method::get, "/static/dated.txt",
                                             field("if-unmodified-since", "Sat, 05 Nov 1994 00:00:00 GMT"));
    EXPECT_EQ(code(modified.status), 412);
  });
}

TEST_F(ServeDirTest, SingleRangesGive206) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    struct Case {
      const char* range;
      std::string_view body;
      const char* content_range;
    };
    const Case cases[] = {
        {"bytes=2-5", "2345", "bytes 2-5/10"},  {"bytes=7-", "789", "bytes 7-9/10"},
        {"bytes=-3", "789", "bytes 7-9/10"},    {"bytes=5-100", "56789", "bytes 5-9/10"},
        {"bytes=-20", kDigits, "bytes 0-9/10"}, {"bytes=0-0", "0", "bytes 0-0/10"},
        {"bytes=9-9", "9", "bytes 9-9/10"},     {"Bytes=1-2", "12", "bytes 1-2/10"},
        {"bytes= 3-4 ,", "34", "bytes 3-4/10"}, {"bytes=0-99999999999999999999999", kDigits, "bytes 0-9/10"},
    };
    for (const Case& c : cases) {
      Response partial = co_await client.send(Method::get, "/static/digits.txt", field("range", c.range));
      EXPECT_EQ(code(partial.status), 206) << c.range;
      EXPECT_EQ(partial.body.bytes(), c.body) << c.range;
      EXPECT_EQ(partial.headers.get("content-range"), c.content_range) << c.range;
      EXPECT_EQ(partial.headers.get("content-type"), "text/plain; charset=utf-8") << c.range;
      EXPECT_TRUE(partial.headers.contains("etag")) << c.range;
    }
  });
}

TEST_F(ServeDirTest, UnsatisfiableRangesGive416) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    const std::vector<std::string> ranges = {"bytes=10-", "bytes=10-20", "bytes=-0", "bytes=99999999999999999999-"};
    for (const std::string& range : ranges) {
      Response refused = co_await client.send(Method::get, "/static/digits.txt", field("range", range));
      EXPECT_EQ(code(refused.status), 416) << range;
      EXPECT_EQ(refused.headers.get("content-range"), "bytes */10") << range;
    }
    Response empty = co_await client.send(Method::get, "/static/empty.txt", field("range", "bytes=0-"));
    EXPECT_EQ(code(empty.status), 416);
    EXPECT_EQ(empty.headers.get("content-range"), "bytes */0");
  });
}

TEST_F(ServeDirTest, MalformedAndMultipleRangesGetTheWholeFile) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    const std::vector<std::string> ranges = {"bytes=0-1,4-5", "bytes=-2, 3-4", "bytes=5-2", "bytes=abc",
                                             "items=0-1",     "bytes=",        "bytes",     "bytes=1-2-3",
                                             "bytes=--1",     "bytes=+1-2"};
    for (const std::string& range : ranges) {
      Response whole = co_await client.send(Method::get, "/static/digits.txt", field("range", range));
      EXPECT_EQ(whole.status, Status::ok) << range;
      EXPECT_EQ(whole.body.bytes(), kDigits) << range;
      EXPECT_FALSE(whole.headers.contains("content-range")) << range;
    }
  });
}

TEST_F(ServeDirTest, IfRangeServesTheRangeOnlyForTheCurrentVersion) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response first = co_await client.get("/static/dated.txt");
    const std::string etag{first.headers.get("etag").value_or("")};
    const auto ranged = [](TestClient& c, std::string if_range) -> Task<Response> {
      HeaderMap headers = field("range", "bytes=0-2");
      headers.set("if-range", if_range);
      Task<Response> sending = c.send(Method::get, "/static/dated.txt", std::move(headers));
      Response response = co_await std::move(sending);
      co_return response;
    };
    Response current = co_await ranged(client, etag);
    EXPECT_EQ(code(current.status), 206);
    EXPECT_EQ(current.body.bytes(), "old");
    Response by_date = co_await ranged(client, "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(code(by_date.status), 206);
    Response stale = co_await ranged(client, "\"stale\"");
    EXPECT_EQ(stale.status, Status::ok);
    EXPECT_EQ(stale.body.bytes(), "old news");
    Response weak = co_await ranged(client, "W/" + etag);
    EXPECT_EQ(weak.status, Status::ok);
    Response other_date = co_await ranged(client, "Sun, 06 Nov 1994 08:49:38 GMT");
    EXPECT_EQ(other_date.status, Status::ok);
  });
}

TEST_F(ServeDirTest, LargeFilesAreStreamedInChunks) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response response = co_await client.get("/static/big.bin");
    EXPECT_EQ(response.status, Status::ok);
    EXPECT_EQ(response.headers.get("content-type"), "application/octet-stream");
    CO_ASSERT(response.body.is_stream());
    std::size_t largest = 0;
    std::string body = co_await collect(response.body, &largest);
    EXPECT_EQ(body.size(), tree.big.size());
    EXPECT_TRUE(body == tree.big);
    EXPECT_EQ(largest, 64u * 1024);

    // A range larger than a chunk is streamed too; a small one is read in one piece.
    Response ranged = co_await client.send(Method::get, "/static/big.bin", field("range", "bytes=100000-899999"));
    EXPECT_EQ(code(ranged.status), 206);
    EXPECT_EQ(ranged.headers.get("content-range"), "bytes 100000-899999/1048576");
    EXPECT_TRUE(ranged.body.is_stream());
    std::string part = co_await collect(ranged.body);
    EXPECT_TRUE(part == tree.big.substr(100000, 800000));
    Response small_range = co_await client.send(Method::get, "/static/big.bin", field("range", "bytes=-100"));
    EXPECT_EQ(code(small_range.status), 206);
    EXPECT_FALSE(small_range.body.is_stream());
    EXPECT_TRUE(small_range.body.bytes() == tree.big.substr(tree.big.size() - 100));
  });
}

TEST_F(ServeDirTest, ChunkSizeDecidesWhatIsStreamed) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root, {.chunk_size = 1000})};
    Response response = co_await client.get("/static/ten_thousand.bin");
    CO_ASSERT(response.body.is_stream());
    std::size_t largest = 0;
    std::string body = co_await collect(response.body, &largest);
    EXPECT_EQ(body.size(), 10'000u);
    EXPECT_EQ(largest, 1000u);
    Response ranged = co_await client.send(Method::get, "/static/ten_thousand.bin", field("range", "bytes=1500-7499"));
    EXPECT_EQ(ranged.headers.get("content-range"), "bytes 1500-7499/10000");
    std::string part = co_await collect(ranged.body);
    EXPECT_TRUE(part == body.substr(1500, 6000));
    Response small = co_await client.get("/static/digits.txt");
    EXPECT_FALSE(small.body.is_stream());
  });
}

TEST_F(ServeDirTest, AClientThatLeavesStopsTheStream) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root, {.chunk_size = 1000})};
    const std::size_t before = open_descriptors();
    {
      Response response = co_await client.get("/static/big.bin");  // 1049 chunks of 1000 bytes
      CO_ASSERT(response.body.is_stream());
      std::optional<std::string> first = co_await response.body.next_chunk();
      EXPECT_TRUE(first && *first == tree.big.substr(0, 1000));
      EXPECT_EQ(open_descriptors(), before + 1);  // the file, held by the producer
    }
    // The body is gone: the producer's next send fails, it ends and the file is closed.
    for (int i = 0; i < 200 && open_descriptors() != before; ++i) co_await sleep(std::chrono::milliseconds(10));
    EXPECT_EQ(open_descriptors(), before);
  });
}

TEST_F(ServeDirTest, HeadAnswersLikeGet) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    Response get = co_await client.get("/static/style.css");
    Response head = co_await client.send(Method::head, "/static/style.css");
    EXPECT_EQ(head.status, Status::ok);
    EXPECT_EQ(head.headers.get("etag"), get.headers.get("etag"));
    EXPECT_EQ(head.headers.get("content-type"), "text/css; charset=utf-8");
    EXPECT_EQ(head.headers.get("last-modified"), get.headers.get("last-modified"));
    // The server drops a HEAD's body; its size is the Content-Length it sends.
    EXPECT_EQ(head.body.size(), get.body.size());
    // A HEAD describes the whole file, whatever the Range.
    Response ranged = co_await client.send(Method::head, "/static/digits.txt", field("range", "bytes=0-1"));
    EXPECT_EQ(ranged.status, Status::ok);
    EXPECT_FALSE(ranged.headers.contains("content-range"));
    // A large file is not read for a HEAD: its stream ends at once.
    Response big = co_await client.send(Method::head, "/static/big.bin");
    EXPECT_EQ(big.status, Status::ok);
    EXPECT_TRUE(big.headers.contains("etag"));
    std::string nothing = co_await collect(big.body);
    EXPECT_EQ(nothing, "");
    Response redirect = co_await client.send(Method::head, "/static/docs");
    EXPECT_EQ(redirect.status, Status::permanent_redirect);
  });
}

TEST_F(ServeDirTest, OtherMethodsGet405) {
  run([]() -> Task<void> {
    TestClient client{app(tree.root)};
    const std::vector<Method> methods = {Method::post, Method::put, Method::del, Method::patch, Method::options};
    for (Method method : methods) {
      // The fallback reaches ServeDir with any method; the /static route is the router's get().
      Response direct = co_await client.send(method, "/style.css");
      EXPECT_EQ(direct.status, Status::method_not_allowed);
      EXPECT_EQ(direct.headers.get("allow"), "GET, HEAD");
      Response routed = co_await client.send(method, "/static/style.css");
      EXPECT_EQ(routed.status, Status::method_not_allowed);
      EXPECT_EQ(routed.headers.get("allow"), "GET, HEAD");
    }
  });
}

TEST_F(ServeDirTest, RefusesOptionsItCannotSend) {
  EXPECT_THROW(ServeDir(tree.root, {.chunk_size = 0}), std::invalid_argument);
  EXPECT_THROW(ServeDir(tree.root, {.cache_control = "public\r\nx-evil: 1"}), std::invalid_argument);
}

TEST_F(ServeDirTest, OverARealSocket) {
  spindle_test::TestServer server{app(tree.root)};
  spindle_test::RawConnection connection{server.port()};

  connection.send("GET /static/big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
  std::optional<spindle_test::RawResponse> big = connection.read_response();
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 200);
  EXPECT_TRUE(big->chunked);  // streams are always chunked: no Content-Length
  EXPECT_EQ(big->body.size(), tree.big.size());
  EXPECT_TRUE(big->body == tree.big);

  connection.send("GET /static/style.css HTTP/1.1\r\nHost: test\r\n\r\n");
  std::optional<spindle_test::RawResponse> css = connection.read_response();
  ASSERT_TRUE(css);
  EXPECT_EQ(css->header("content-length"), "19");
  EXPECT_EQ(css->body, "body { color: red }");

  connection.send("HEAD /static/style.css HTTP/1.1\r\nHost: test\r\n\r\n");
  std::optional<spindle_test::RawResponse> head = connection.read_response(true);
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("content-length"), "19");
  EXPECT_EQ(head->header("etag"), css->header("etag"));
  EXPECT_EQ(head->body, "");

  connection.send("GET /static/big.bin HTTP/1.1\r\nHost: test\r\nRange: bytes=-300000\r\n\r\n");
  std::optional<spindle_test::RawResponse> tail = connection.read_response();
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->status, 206);
  EXPECT_EQ(tail->header("content-range"), "bytes 748576-1048575/1048576");
  EXPECT_TRUE(tail->body == tree.big.substr(748576));

  connection.send("GET /static/../secret.txt HTTP/1.1\r\nHost: test\r\n\r\n");
  std::optional<spindle_test::RawResponse> escape = connection.read_response();
  ASSERT_TRUE(escape);
  EXPECT_EQ(escape->status, 404);
  EXPECT_EQ(escape->body.find(kSecret), std::string::npos);

  // A client that leaves in the middle of a download does not disturb the next one.
  {
    spindle_test::RawConnection leaving{server.port()};
    leaving.send("GET /static/big.bin HTTP/1.1\r\nHost: test\r\n\r\n");
  }
  connection.send("GET /static/digits.txt HTTP/1.1\r\nHost: test\r\n\r\n");
  std::optional<spindle_test::RawResponse> digits = connection.read_response();
  ASSERT_TRUE(digits);
  EXPECT_EQ(digits->body, kDigits);
}

TEST_F(ServeDirTest, NestServiceStripsItsPrefix) {
  run([]() -> Task<void> {
    TestClient client{Router<>{}.nest_service("/static", ServeDir{tree.root})};
    Response css = co_await client.get("/static/style.css");
    EXPECT_EQ(css.body.bytes(), "body { color: red }");
    Response index = co_await client.get("/static/");
    EXPECT_EQ(index.body.bytes(), "<h1>home</h1>");
    Response docs = co_await client.get("/static/docs/");
    EXPECT_EQ(docs.body.bytes(), "<h1>docs</h1>");
    Response bare = co_await client.get("/static?v=2");
    EXPECT_EQ(bare.status, Status::permanent_redirect);
    EXPECT_EQ(bare.headers.get("location"), "/static/?v=2");
    Response outside = co_await client.get("/static/../secret.txt");
    EXPECT_EQ(outside.status, Status::not_found);
    EXPECT_EQ(outside.body.bytes().find(kSecret), std::string_view::npos);
  });
}
