#pragma once
// The page's files (web/), embedded in the binary at build time by embed_web.cmake: the service serves
// them the same from any working directory, and an install is one file.

#include <span>
#include <string_view>

namespace users {

struct WebAsset {
  std::string_view path;          ///< "/" for index.html, "/app.js", ...
  std::string_view content_type;  ///< from the file's extension
  std::string_view body;
};

/// Every file of web/, in name order.
std::span<const WebAsset> web_assets() noexcept;

}  // namespace users
