// Static files with ServeDir: ETag and Last-Modified (304s), Range requests, content types, index.html
// for directories, and no way out of the directory.
//
//   static-files --listen 127.0.0.1:8080 [--dir PATH]    (default: the public/ folder next to the binary)
//   curl -i localhost:8080/                 -> public/index.html
//   curl -i localhost:8080/assets/app.css   -> with ETag; send it back in If-None-Match for a 304
#include <spindle/http.hpp>

#include <filesystem>

#include "server_main.hpp"

using namespace spindle;
using namespace spindle::http;

int main(int argc, char** argv) {
  std::filesystem::path dir = std::filesystem::canonical("/proc/self/exe").parent_path() / "public";
  const examples::ServerArgs args =
      examples::parse_server_args(argc, argv, "Static files example", [&dir](CLI::App& app) {
        app.add_option("--dir", dir, "the folder to serve (default: public/ next to the binary)");
      });
  if (!std::filesystem::is_directory(dir)) {
    std::fprintf(stderr, "--dir: %s is not a directory\n", dir.c_str());
    return 2;
  }
  Server server{Router<>{}
                    .route("/healthz", get([] { return std::string{"ok"}; }))
                    .fallback(ServeDir{dir, {.cache_control = "public, max-age=60"}})
                    .layer(middleware::access_log())};
  return examples::run_server(args, [&server](TcpListener listener, CancellationToken stop) {
    return server.serve(std::move(listener), std::move(stop));
  });
}
