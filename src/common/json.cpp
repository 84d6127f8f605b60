#include "common/json.h"

#include <vector>

namespace ferry {

std::string dump_json(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

namespace {

// The key path ("a.b") of the value being parsed, kept from the parser's key events so
// an error can name the field it happened in.
std::string key_path(const std::vector<std::string>& path) {
  std::string out;
  for (const auto& k : path) {
    if (k.empty()) continue;
    out += (out.empty() ? "" : ".") + k.substr(0, 64);
  }
  return out;
}

}  // namespace

Result<Json> parse_json(std::string_view text, std::string_view what) {
  // The library's exception texts ("[json.exception.out_of_range.406] ...") never reach a
  // caller: errors are phrased here, with the byte offset and the field where known.
  std::vector<std::string> path;
  auto track = [&path](int depth, Json::parse_event_t event, Json& parsed) {
    if (event == Json::parse_event_t::key && depth > 0) {
      path.resize(static_cast<size_t>(depth));
      path[static_cast<size_t>(depth) - 1] = parsed.is_string() ? parsed.get<std::string>() : "";
    } else if (event == Json::parse_event_t::object_end && depth >= 0) {
      path.resize(static_cast<size_t>(depth));
    }
    return true;
  };
  try {
    return Json::parse(text, track);
  } catch (const Json::parse_error& e) {
    const std::string field = key_path(path);
    return invalid_argument(std::string(what) + " is not valid JSON at byte " +
                            std::to_string(e.byte) +
                            (field.empty() ? "" : " (in field '" + field + "')"));
  } catch (const Json::out_of_range&) {
    const std::string field = key_path(path);
    return invalid_argument(std::string(what) + " has a number out of range" +
                            (field.empty() ? "" : " in field '" + field + "'") +
                            "; numbers must fit a 64-bit integer or a double");
  } catch (const Json::exception&) {
    return invalid_argument(std::string(what) + " is not valid JSON");
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
