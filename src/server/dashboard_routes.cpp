// The web dashboard: the files of web/, embedded in the binary (web_assets.h), served
// at / with a strict Content-Security-Policy, plus one small API call the page needs.
// The assets hold no data and no secret, so they are served without a token; every
// number the page shows comes from the token-protected /api/v1 calls.
#include "core/agent_api.h"
#include "core/deployment_state.h"
#include "server/control_plane.h"
#include "server/web_assets.h"

namespace ferry {

namespace {

// Scripts and styles only from the server itself (no inline code, no eval), data only
// from its API, no framing, no plugins, forms post nowhere else.
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

std::string etag_of(const WebAsset& a) {
  return "\"" + std::string(a.sha256.substr(0, 32)) + "\"";
}

// Whether an If-None-Match header ("a", W/"b", *) names `etag`.
bool etag_matches(std::string_view header, const std::string& etag) {
  if (header.size() > 4096) return false;
  size_t i = 0;
  while (i < header.size()) {
    size_t j = header.find(',', i);
    if (j == std::string_view::npos) j = header.size();
    std::string_view t = header.substr(i, j - i);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t.starts_with("W/")) t.remove_prefix(2);  // weak comparison is right for GET
    if (t == "*" || t == etag) return true;
    i = j + 1;
  }
  return false;
}

void add_security_headers(HttpResponse& r) {
  r.headers.push_back({"Content-Security-Policy", kContentSecurityPolicy});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"X-Frame-Options", "DENY"});
  // The event stream's URL carries the token: never send it on as a Referer.
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
  r.headers.push_back({"Cross-Origin-Opener-Policy", "same-origin"});
}

HttpResponse serve_asset(const WebAsset& a, const HttpRequest& req) {
  const std::string etag = etag_of(a);
  HttpResponse r;
  if (etag_matches(req.header("if-none-match"), etag)) {
    r.status = 304;
  } else {
    r.body = std::string(a.data);
  }
  r.content_type = std::string(a.content_type);
  r.headers.push_back({"ETag", etag});
  // File names carry no content hash (there is no build step), so the browser must
  // revalidate each time; the ETag makes that a 304 without a body.
  r.headers.push_back({"Cache-Control", "no-cache"});
  add_security_headers(r);
  return r;
}

}  // namespace

void add_dashboard_routes(HttpServer& http, ControlPlane&) {
  for (const WebAsset& asset : web_assets()) {
    const WebAsset* a = &asset;  // points into a static table
    http.route("GET", std::string(a->path), [a](HttpRequest& req) { return serve_asset(*a, req); });
    if (a->path == "/index.html")
      http.route("GET", "/", [a](HttpRequest& req) { return serve_asset(*a, req); });
  }

  // What the page needs to turn router counters into percentiles: the latency
  // histogram's bucket bounds (the agent reports counts only); and which deployment
  // states are final (core/deployment_state.h), so the page never keeps its own list.
  http.route("GET", "/api/v1/dashboard", [](HttpRequest& req) {
    if (auto denied = require(req, Role::kViewer)) return *denied;
    Json final_states = Json::array();
    for (auto s : final_deployment_states()) final_states.push_back(std::string(to_string(s)));
    return HttpResponse::json(
        Json{{"latency_buckets_ms", latency_buckets_ms()}, {"final_states", final_states}});
  });
}

}  // namespace ferry
