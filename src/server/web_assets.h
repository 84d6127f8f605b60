// The dashboard's static files (web/), compiled into the binary by cmake/EmbedWeb.cmake:
// `ferry server` serves them from memory and reads no file at run time.
#pragma once

#include <span>
#include <string_view>

namespace ferry {

struct WebAsset {
  std::string_view path;  // URL path, e.g. "/index.html", "/js/chart.js"
  std::string_view
      content_type;         // from the file's extension, e.g. "text/javascript; charset=utf-8"
  std::string_view data;    // the file's bytes
  std::string_view sha256;  // hex SHA-256 of `data` (the ETag's source)
};

// Every embedded file, sorted by path.
std::span<const WebAsset> web_assets();

// The file at `path` ("/app.js"), or nullptr.
const WebAsset* find_web_asset(std::string_view path);

}  // namespace ferry
