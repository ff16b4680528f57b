#pragma once
// ServeDir: serves the files under a directory, after tower-http's ServeDir: content types, conditional
// requests (ETag, Last-Modified), single byte ranges, index.html for directories, and file I/O on the
// blocking pool so that a slow disk never stalls the runtime's threads.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>

#include "spindle/http/request.hpp"
#include "spindle/http/response.hpp"
#include "spindle/runtime/task.hpp"

namespace spindle::http {

/// How a ServeDir answers.
struct ServeDirOptions {
  /// A directory answers with its index.html ("/docs/" serves docs/index.html), and "/docs" is redirected
  /// (308) to "/docs/" so that the page's relative links resolve inside the directory. Off: directories
  /// are 404.
  bool index_html = true;
  /// The Cache-Control of every file served ("public, max-age=3600"); empty for none.
  std::string cache_control{};  // braced: designated initializers that skip it draw no -Wmissing-field-initializers
  /// Files (and ranges) up to this size are read in one piece and sent with a Content-Length; larger ones
  /// are streamed in pieces of this size, so a download holds a few pieces in memory, not the file.
  std::size_t chunk_size = 64 * 1024;
};

/// A handler that serves the files under `root`, for GET and HEAD.
///
/// Under a catch-all route it serves the path the catch-all captured; anywhere else (a fallback) the
/// whole request path. A path that would leave the root (`..`, an encoded slash or backslash, NUL, an
/// absolute path, a symbolic link pointing outside) is answered 404, like a file that does not exist, so
/// that nothing outside the root can be read or even probed.
///
///   auto app = Router<>{}
///                  .route("/static/{*path}", get(ServeDir{"public"}))   // /static/css/site.css
///                  .fallback(ServeDir{"site", {.cache_control = "public, max-age=3600"}});
///
/// Files are sent with Content-Type (from the extension), ETag, Last-Modified and Accept-Ranges; a
/// matching If-None-Match or If-Modified-Since gets 304, and `Range: bytes=...` a 206.
class ServeDir {
 public:
  /// `root` is made absolute now, so a later change of the working directory does not move it; it need
  /// not exist yet (requests get 404 until it does).
  explicit ServeDir(std::filesystem::path root, ServeDirOptions options = {});

  Task<Response> operator()(Request request) const;

 private:
  struct Config;
  // A static coroutine, not the member operator(): a member coroutine would keep `this`, and the task may
  // outlive the ServeDir that started it (a copy in a router that has since been replaced).
  static Task<Response> serve(std::shared_ptr<const Config> config, Request request);
  // Shared and immutable: the router copies its handlers; copies share one configuration.
  std::shared_ptr<const Config> config_;
};

}  // namespace spindle::http
