#include "common/json.h"

namespace ferry {

std::string dump_json(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Result<Json> parse_json(std::string_view text, std::string_view what) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    return invalid_argument(std::string(what) + " is not valid JSON at byte " +
                            std::to_string(e.byte) + ": " + e.what());
  }
}

Json status_to_json(const Status& s) {
  return Json{{"error", {{"code", code_name(s.code())}, {"message", s.message()}}}};
}

Status status_from_json(const Json& j) {
  if (!j.is_object() || !j.contains("error") || !j["error"].is_object())
    return internal_error("malformed error response");
  const auto& e = j["error"];
  return Status(code_from_name(e.value("code", "internal")), e.value("message", ""));
}

}  // namespace ferry
