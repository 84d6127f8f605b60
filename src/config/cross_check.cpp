// Checks that span sections: names that refer to other sections, requirement cycles, ports.
#include <cstdlib>
#include <functional>
#include <set>

#include "config/parsers.h"
#include "config/values.h"
#include "core/placement.h"

namespace ferry::config {
namespace {

std::vector<std::string_view> env_names(const Config& c) {
  std::vector<std::string_view> v;
  for (const auto& e : c.environments) v.push_back(e.name);
  return v;
}

// The list item (or the scalar) of `f` whose value is `value`, to point an error at it.
Field item_named(const Field& f, const std::string& value) {
  if (f.is_list()) {
    size_t i = 0;
    for (const auto& n : f.node()) {
      if (n.IsScalar() && n.Scalar() == value) {
        YAML::Mark m = n.Mark().is_null() ? f.mark() : n.Mark();
        return Field(f.ctx(), n, f.path() + "[" + std::to_string(i) + "]", m);
      }
      ++i;
    }
  }
  return f;
}

void check_requires(const Field& envs, const Config& c) {
  auto names = env_names(c);
  for (const auto& e : c.environments) {
    Field req = envs.child(e.name).child("requires");
    for (const auto& r : e.requires_envs) {
      Field at = item_named(req, r);
      if (r == e.name) {
        at.error("\"" + r + "\" requires itself");
      } else if (!c.environment(r)) {
        at.error("\"" + r + "\" is not an environment" + suggest(r, names) +
                 "; environments: " + join_quoted(names));
      } else if (c.environment(r) > &e) {
        // The file order is the promotion order: a release reaches earlier ones first.
        at.error("\"" + r + "\" comes after \"" + e.name +
                 "\" in the file; environments are listed in promotion order, so one may only "
                 "require environments above it (move \"" +
                 r + "\" up)");
      }
    }
  }
  // Cycles: depth-first search, reported once at the environment where the cycle closes.
  std::map<std::string, int> state;  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::function<void(const EnvironmentSpec&)> visit = [&](const EnvironmentSpec& e) {
    state[e.name] = 1;
    path.push_back(e.name);
    for (const auto& r : e.requires_envs) {
      const EnvironmentSpec* next = c.environment(r);
      if (!next || r == e.name) continue;
      if (state[r] == 1) {
        std::string cycle;
        bool on = false;
        for (const auto& p : path) {
          on = on || p == r;
          if (on) cycle += p + " → ";
        }
        cycle += r;
        item_named(envs.child(e.name).child("requires"), r)
            .error("requirements form a cycle (" + cycle +
                   "): no release could ever reach these environments");
      } else if (state[r] == 0) {
        visit(*next);
      }
    }
    path.pop_back();
    state[e.name] = 2;
  };
  for (const auto& e : c.environments)
    if (state[e.name] == 0) visit(e);
}

void check_agents(const Field& envs, const Config& c) {
  std::vector<std::string_view> names;
  for (const auto& a : c.agents) names.push_back(a.name);
  for (const auto& e : c.environments)
    for (const auto& a : e.agents)
      if (!c.agent(a))
        item_named(envs.child(e.name).child("agents"), a)
            .error("\"" + a + "\" is not an agent" + suggest(a, names) +
                   (names.empty() ? std::string("; no agents are declared under \"agents:\"")
                                  : "; agents: " + join_quoted(names)));
  // `continue` after an agent is lost needs that many others answering; more than the
  // environment has could never be met (the local agent alone counts as one).
  for (const auto& e : c.environments) {
    const int have = e.agents.empty() ? 1 : static_cast<int>(e.agents.size());
    Field f = envs.child(e.name).child("min_available");
    if (f.present() && e.min_available > have)
      f.error("min_available " + std::to_string(e.min_available) + " is more than the " +
              std::to_string(have) + " agent(s) of environment \"" + e.name + "\"");
  }
}

void check_app_envs(const Field& apps, const Config& c) {
  auto names = env_names(c);
  for (const auto& app : c.apps) {
    Field envs = apps.child(app.name).child("environments");
    if (!envs.is_map()) continue;
    for (auto it = envs.node().begin(); it != envs.node().end(); ++it) {
      std::string n = it->first.IsScalar() ? it->first.Scalar() : "";
      if (!n.empty() && !c.environment(n))
        envs.ctx().error(it->first.Mark(), envs.path() + "." + n,
                         "\"" + n + "\" is not an environment" + suggest(n, names) +
                             "; environments: " + join_quoted(names));
    }
  }
}

bool overlaps(const std::string& a, const std::string& b) {
  auto wild = [](const std::string& s) { return s == "0.0.0.0" || s == "::"; };
  return a == b || wild(a) || wild(b);
}

// Two apps cannot listen on the same address and port in the same environment, and an app
// cannot take the server's own port.
void check_ports(const Field& apps, const Config& c) {
  size_t colon = c.server.listen.rfind(':');
  std::string server_host = c.server.listen.substr(0, colon);
  if (server_host.size() > 2 && server_host.front() == '[')
    server_host = server_host.substr(1, server_host.size() - 2);
  if (server_host == "localhost") server_host = "127.0.0.1";
  int server_port = std::atoi(c.server.listen.substr(colon + 1).c_str());
  for (const auto& app : c.apps)
    if (app.port == server_port && overlaps(app.listen, server_host))
      apps.child(app.name).child("port").error("port " + std::to_string(app.port) +
                                               " is the ferry server's own port (server.listen " +
                                               c.server.listen + "); choose another");
  std::vector<std::string> envs;
  for (const auto& e : c.environments) envs.push_back(e.name);
  if (envs.empty()) envs.push_back("");
  for (const auto& env : envs) {
    struct Use {
      std::string app, listen;
      uint16_t port;
    };
    std::vector<Use> used;
    for (const auto& app : c.apps) {
      if (app.port == 0) continue;
      AppSpec eff = c.app_for_env(app, env);
      for (const auto& u : used) {
        if (u.port != eff.port || !overlaps(u.listen, eff.listen)) continue;
        bool overridden = app.environments.count(env) && app.environments.at(env).port;
        Field at = overridden ? apps.child(app.name).child("environments").child(env).child("port")
                              : apps.child(app.name).child("port");
        at.error("port " + std::to_string(eff.port) + " on " + eff.listen +
                 " is already used by app \"" + u.app + "\"" +
                 (env.empty() ? "" : " in environment \"" + env + "\"") +
                 "; each app needs its own port");
        break;
      }
      used.push_back({app.name, eff.listen, eff.port});
      if (eff.router.tls.http_port != 0) {
        for (const auto& u : used) {
          if (u.port != eff.router.tls.http_port || !overlaps(u.listen, eff.listen)) continue;
          apps.child(app.name)
              .child("tls")
              .child("http_port")
              .error("port " + std::to_string(u.port) + " on " + eff.listen +
                     " is already used by app \"" + u.app + "\"; each app needs its own ports");
          break;
        }
        used.push_back({app.name, eff.listen, eff.router.tls.http_port});
      }
      // A public CA validates HTTP-01 from the internet: a router on loopback only never
      // answers it.
      const AcmeSpec& acme = eff.router.tls.acme;
      if (acme.enabled() && acme.directory.find(".api.letsencrypt.org/") != std::string::npos &&
          (eff.listen == "::1" || eff.listen.starts_with("127.")))
        apps.child(app.name).child("tls").child("acme").error(
            "listen " + eff.listen + (env.empty() ? "" : " (environment \"" + env + "\")") +
            " is loopback only: Let's Encrypt cannot reach port 80 there to validate " +
            acme.hosts.front() + "; listen on a public address (e.g. 0.0.0.0)");
    }
  }
}

// Placement (core/placement.h): the same function the engine uses, so an environment whose
// instances cannot be placed is refused here rather than at deploy time.
void check_placement(const Field& root, const Config& c) {
  Field envs = root.child("environments");
  for (const auto& e : c.environments) {
    std::vector<PlacementAgent> agents;
    for (const auto& name : e.agents)
      if (const AgentSpec* a = c.agent(name)) agents.push_back({a->name, a->labels});
    if (e.agents.empty()) agents.push_back({"local", {}});
    if (agents.size() != std::max<size_t>(e.agents.size(), 1)) continue;  // reported above
    const PlacementRules rules{.max_per_agent = e.max_per_agent, .spread_by = e.spread_by};
    if (auto labels = place_instances(0, agents, rules); !labels.ok()) {
      envs.child(e.name)
          .child("spread_by")
          .error(e.agents.empty() ? "spread_by " + e.spread_by +
                                        " needs the environment's agents (with that label) under "
                                        "\"agents:\"; the local agent has no labels"
                                  : labels.status().message());
      continue;
    }
    for (const auto& app : c.apps) {
      const AppSpec eff = c.app_for_env(app, e.name);
      // A canary starts at least one instance even with instances 0 (core/plan.cpp).
      auto placed = place_instances(std::max(1, eff.instances), agents, rules);
      if (!placed.ok()) {
        const bool overridden =
            app.environments.count(e.name) && app.environments.at(e.name).instances.has_value();
        Field at = overridden ? root.child("apps")
                                    .child(app.name)
                                    .child("environments")
                                    .child(e.name)
                                    .child("instances")
                              : root.child("apps").child(app.name).child("instances");
        at.error("app \"" + app.name + "\" in environment \"" + e.name +
                 "\": " + placed.status().message());
      }
      // One host's address cannot be every host's: each agent needs its own.
      if (e.agents.size() < 2 || !app.listen_set || app.listen == "0.0.0.0" || app.listen == "::" ||
          app.listen == "::1" || app.listen.starts_with("127."))
        continue;
      std::string without;
      for (const auto& name : e.agents)
        if (const AgentSpec* a = c.agent(name); a && a->listen.empty())
          without += (without.empty() ? "\"" : ", \"") + name + "\"";
      if (!without.empty())
        root.child("apps").child(app.name).child("listen").error(
            "listen " + app.listen + " is one host's address, but environment \"" + e.name +
            "\" runs the app on " + std::to_string(e.agents.size()) +
            " agents; set agents.NAME.listen for each of " + without +
            ", or leave listen out (remote agents bind 0.0.0.0)");
    }
  }
}

}  // namespace

void cross_check(const Field& root, const Config& config) {
  check_requires(root.child("environments"), config);
  check_agents(root.child("environments"), config);
  check_app_envs(root.child("apps"), config);
  check_ports(root.child("apps"), config);
  check_placement(root, config);
}

}  // namespace ferry::config
