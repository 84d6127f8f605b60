// Test secrets are built at run time from pieces, so that this repository holds no
// token-shaped string a scanner (ours or anyone's) would report.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

namespace ferry::scan::testing {

inline constexpr std::string_view kUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
inline constexpr std::string_view kLower = "abcdefghijklmnopqrstuvwxyz";
inline constexpr std::string_view kDigits = "0123456789";
inline const std::string kAlnum = std::string(kUpper) + std::string(kLower) + std::string(kDigits);
inline const std::string kB32 = std::string(kUpper) + "234567";
inline const std::string kB64 = kAlnum + "+/";
inline const std::string kB64Url = kAlnum + "-_";
inline constexpr std::string_view kHex = "0123456789abcdef";

// `n` pseudo-random characters of `alphabet`; the same seed gives the same string.
inline std::string rnd(std::string_view alphabet, size_t n, unsigned seed = 7) {
  std::mt19937 gen(seed * 7919u + static_cast<unsigned>(n));
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[pick(gen)];
  return s;
}

// A fresh temporary directory, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-scan-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  // Writes `content` to the relative path `rel`, creating folders.
  std::string write(const std::string& rel, std::string_view content) const {
    auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace ferry::scan::testing
