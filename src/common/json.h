// JSON is nlohmann::json everywhere; this header fixes the alias and small helpers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"

namespace ferry {

using Json = nlohmann::json;

// Parses `text`; an error names the byte offset. Depth and size are bounded by the caller.
Result<Json> parse_json(std::string_view text, std::string_view what = "request body");

// Serialises `j`; bytes that are not valid UTF-8 (a hook's output cut mid-character, a
// raw byte in a request path) become U+FFFD instead of throwing.
std::string dump_json(const Json& j, int indent = -1);

// {"error": {"code": "not_found", "message": "..."}}
Json status_to_json(const Status& s);
Status status_from_json(const Json& j);

}  // namespace ferry
