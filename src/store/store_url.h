// The file of a SQLite store URL ("sqlite:PATH" or "sqlite://PATH"), for code that works on
// the file itself (backups, the server's lock, `ferry store copy`). Empty for any other
// scheme, or when the URL names no file.
#pragma once

#include <string>

namespace ferry {

inline std::string sqlite_file_of(const std::string& url) {
  if (url.starts_with("sqlite://")) return url.substr(9);
  if (url.starts_with("sqlite:")) return url.substr(7);
  return "";
}

}  // namespace ferry
