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
  // The example's own flag, then the shared ones (--listen, --workers): CLI11 is strict, so --dir is
  // taken out of argv before.
  std::filesystem::path dir = std::filesystem::canonical("/proc/self/exe").parent_path() / "public";
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    if (std::string_view{argv[i]} == "--dir" && i + 1 < argc) {
      dir = argv[++i];
      continue;
    }
    rest.push_back(argv[i]);
  }
  const examples::ServerArgs args = examples::parse_server_args(static_cast<int>(rest.size()), rest.data(),
                                                                "Static files example (--dir PATH: what to serve)");
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
