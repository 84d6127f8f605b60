#include "common/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"

namespace ferry {

Result<LogLevel> parse_log_level(std::string_view s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return invalid_argument("log level '" + std::string(s) +
                          "' is not one of debug, info, warn, error");
}

static std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

Logger::Logger(std::string name, LogLevel level, std::string path, bool json)
    : level_(level), json_(json), masker_(std::make_shared<Masker>()) {
  if (path.empty()) {
    sink_ = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    sink_ = std::make_shared<spdlog::logger>(
        name, std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
  }
  sink_->set_pattern("%v");
  sink_->flush_on(spdlog::level::info);
}

Logger::~Logger() { sink_->flush(); }

void Logger::log(LogLevel level, std::string_view msg, const Json& fields) {
  if (!enabled(level)) return;
  std::string line;
  const std::string time = format_rfc3339(std::chrono::system_clock::now());
  if (json_) {
    Json j = {{"time", time}, {"level", level_name(level)}, {"msg", msg}};
    if (fields.is_object())
      for (auto it = fields.begin(); it != fields.end(); ++it) j[it.key()] = it.value();
    line = j.dump(-1, ' ', false, Json::error_handler_t::replace);
  } else {
    line = time + " " + std::string(level_name(level)) + " " + std::string(msg);
    if (fields.is_object())
      for (auto it = fields.begin(); it != fields.end(); ++it)
        line += " " + it.key() + "=" +
                (it->is_string() ? it->get<std::string>() : dump_json(*it));
  }
  sink_->info(masker_->mask(line));
}

}  // namespace ferry
