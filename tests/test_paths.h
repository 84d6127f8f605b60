// Where a test finds the source tree and the build tree, found at run time: the test
// binary lives in BUILD/tests/MODULE/, the first parent folder with a CMakeCache.txt is
// the build tree, and that cache names the source tree (ferry_SOURCE_DIR). No path is
// compiled into a test object, so the objects of two checkouts are the same and ccache
// serves a fresh clone from the cache of another one (scripts/test.sh).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ferry::testing {

inline const std::string& binary_dir() {
  static const std::string dir = [] {
    std::error_code ec;
    auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
    for (p = p.parent_path(); !ec && !p.empty() && p != p.root_path(); p = p.parent_path())
      if (std::filesystem::exists(p / "CMakeCache.txt")) return p.string();
    throw std::runtime_error("test binary is not inside a CMake build tree");
  }();
  return dir;
}

inline const std::string& source_dir() {
  static const std::string dir = [] {
    std::ifstream cache(binary_dir() + "/CMakeCache.txt");
    const std::string key = "ferry_SOURCE_DIR:STATIC=";
    for (std::string line; std::getline(cache, line);)
      if (line.rfind(key, 0) == 0) return line.substr(key.size());
    throw std::runtime_error("CMakeCache.txt of " + binary_dir() + " names no ferry_SOURCE_DIR");
  }();
  return dir;
}

// The ferry binary under test: FERRY_BIN (set by ctest) or the one of this build.
inline std::string ferry_binary() {
  const char* b = std::getenv("FERRY_BIN");
  return b ? b : binary_dir() + "/src/cli/ferry";
}

// The demo app of this build.
inline std::string demo_app_binary() {
  return binary_dir() + "/examples/demo-app/ferry-demo-app";
}

}  // namespace ferry::testing
