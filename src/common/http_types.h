// Plain request/response values shared by the HTTP server, client and handlers, so that
// handlers are testable without sockets.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace ferry {

struct HttpRequest {
  std::string method;  // "GET"
  std::string target;  // "/api/v1/apps?x=1"
  std::string path;    // "/api/v1/apps"
  std::map<std::string, std::string> query;
  std::map<std::string, std::string> params;   // from the route pattern: {app}
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string remote_addr;
  std::string request_id;  // X-Request-Id, or one made up by the server
  // Set by middleware for handlers (e.g. the authenticated principal).
  std::map<std::string, std::string> attrs;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
  std::optional<std::string> query_value(const std::string& name) const {
    auto it = query.find(name);
    if (it == query.end()) return std::nullopt;
    return it->second;
  }
};

// Writes the chunks of a streaming response (SSE); false once the client has gone.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string_view chunk) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the body is streamed: headers go out at once and this runs on the
  // connection's thread until it returns or the client disconnects.
  std::function<void(StreamWriter&)> stream;

  static HttpResponse json(const Json& j, int status = 200) {
    HttpResponse r;
    r.status = status;
    r.body = dump_json(j);
    return r;
  }
  static HttpResponse error(const Status& s) { return json(status_to_json(s), http_status(s.code())); }
  static HttpResponse text(std::string body, std::string type = "text/plain; charset=utf-8",
                           int status = 200) {
    HttpResponse r;
    r.status = status;
    r.content_type = std::move(type);
    r.body = std::move(body);
    return r;
  }
};

// Splits "a=1&b=x%20y" into a map, decoding %XX and '+'.
std::map<std::string, std::string> parse_query(std::string_view query);
std::string url_decode(std::string_view s);
std::string url_encode(std::string_view s);

}  // namespace ferry
