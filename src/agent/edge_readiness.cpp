#include "agent/edge_readiness.h"

#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace ferry {

EdgeReadiness::EdgeReadiness(std::string out_file) : file_(std::move(out_file)) {
  if (file_.empty()) return;
  std::ifstream f(file_);
  std::string line;
  if (f && std::getline(f, line)) out_.store(line == "out");
}

Status EdgeReadiness::set_out(bool out) {
  std::lock_guard lk(mu_);
  if (!file_.empty()) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (out) {
      const std::string tmp = file_ + ".tmp";
      {
        std::ofstream f(tmp, std::ios::trunc);
        f << "out\n";
        if (!f.flush()) return unavailable("cannot write " + tmp);
      }
      fs::rename(tmp, file_, ec);
    } else {
      fs::remove(file_, ec);
    }
    if (ec) return unavailable("cannot keep the out mark in " + file_ + ": " + ec.message());
  }
  out_.store(out);
  return Status::Ok();
}

int64_t EdgeReadiness::now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool EdgeReadiness::asked_within(std::chrono::milliseconds d) const {
  const int64_t last = last_asked_ns_.load();
  return last != 0 &&
         now_ns() - last <= std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace ferry
