// Structured logging: one JSON object per line on stderr (or a file), with the fields
// time, level, msg and any context given (request_id, app, env, release, deployment_id,
// latency_ms). Every line goes through the Masker so secrets never reach a log.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/json.h"
#include "common/mask.h"

namespace spdlog {
class logger;
}

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

Result<LogLevel> parse_log_level(std::string_view s);

class Logger {
 public:
  // `path` empty: stderr. `json` false: a human line "time level msg k=v ...".
  Logger(std::string name, LogLevel level, std::string path = {}, bool json = true);
  ~Logger();

  void log(LogLevel level, std::string_view msg, const Json& fields = Json::object());
  void debug(std::string_view msg, const Json& f = Json::object()) { log(LogLevel::kDebug, msg, f); }
  void info(std::string_view msg, const Json& f = Json::object()) { log(LogLevel::kInfo, msg, f); }
  void warn(std::string_view msg, const Json& f = Json::object()) { log(LogLevel::kWarn, msg, f); }
  void error(std::string_view msg, const Json& f = Json::object()) { log(LogLevel::kError, msg, f); }

  void set_level(LogLevel level) { level_ = level; }
  bool enabled(LogLevel level) const { return level >= level_; }
  std::shared_ptr<Masker> masker() const { return masker_; }
  void set_masker(std::shared_ptr<Masker> m) { masker_ = std::move(m); }

 private:
  LogLevel level_;
  bool json_;
  std::shared_ptr<Masker> masker_;
  std::shared_ptr<spdlog::logger> sink_;
};

}  // namespace ferry
