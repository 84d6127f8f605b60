// `ferry pin-token APP RELEASE --env E --ttl 1h`: mints a signed, expiring value for the
// router's pin header. It is computed from the agent's router key (made by the agent in
// its data dir), so it runs on the agent's host and needs read access to that file; the
// server and its API are not involved.
#include <sys/stat.h>

#include <chrono>
#include <iostream>

#include "cli/client.h"
#include "cli/commands.h"
#include "config/values.h"
#include "core/agent_api.h"
#include "router/trust.h"

namespace ferry::cli {

namespace {

constexpr int64_t kMaxTtlMs = 7LL * 24 * 3600 * 1000;

}  // namespace

void register_pin_token_commands(CLI::App& app, GlobalOptions&) {
  struct Args {
    std::string app, release, env = "production", ttl = "1h", data_dir = ".ferry/agent";
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "pin-token",
      "mint a signed, expiring value that pins requests to a release (router pinning)");
  c->add_option("app", a->app, "app name")->required();
  c->add_option("release", a->release, "release version to pin to")->required();
  c->add_option("--env", a->env, "environment")->capture_default_str();
  c->add_option("--ttl", a->ttl, "lifetime, e.g. 30m, 1h (at most 7d)")->capture_default_str();
  c->add_option("--agent-data-dir", a->data_dir, "the agent's data dir (holds router.key)")
      ->capture_default_str();
  c->callback([a] {
    auto ttl = config::parse_duration(a->ttl);
    if (auto* why = std::get_if<std::string>(&ttl)) fail("--ttl: " + *why);
    int64_t ms = std::get<int64_t>(ttl);
    if (ms < 1000 || ms > kMaxTtlMs)
      fail("--ttl: " + a->ttl + " is out of range: allowed from 1s to 7d");
    if (a->release.empty() || a->release.size() > 128 ||
        a->release.find_first_of(" \t\r\n,;") != std::string::npos)
      fail("release '" + a->release + "' is not a release version");
    std::string path = a->data_dir + "/router.key";
    struct stat st {};
    if (stat(path.c_str(), &st) != 0)
      fail("no router key at " + path +
           ": the agent makes it when it starts the app's router; run this on the agent's host "
           "or pass --agent-data-dir");
    auto key = routing::load_router_key(path);
    if (!key.ok()) fail(key.status().message());
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    int64_t expires = now + ms / 1000;
    std::cout << routing::make_pin_token(*key, agent_app_name(a->app, a->env), a->release, expires)
              << "\n";
  });
}

}  // namespace ferry::cli
