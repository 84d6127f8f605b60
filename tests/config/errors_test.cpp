// One test per class of error in ferry.yaml: each names file:line:column, the field path,
// the bad value and what is allowed.
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "core/agent_api.h"

namespace ferry {
namespace {

using testing::errors_of;
using testing::find_error;
using testing::kMinimal;

std::string with_app(const std::string& extra) {
  return testing::app_with(extra);
}

TEST(ConfigErrors, MinimalIsValid) {
  auto errs = errors_of(kMinimal);
  EXPECT_TRUE(errs.empty()) << testing::dump(errs);
}

TEST(ConfigErrors, SyntaxErrorHasLineAndColumn) {
  auto errs = errors_of("version: 1\napps:\n  web: [1, 2\n  x: y\n");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("YAML syntax error"), std::string::npos);
  EXPECT_GT(errs[0].line, 0);
  EXPECT_GT(errs[0].column, 0);
}

TEST(ConfigErrors, UnknownKeySuggestsTheClosest) {
  EXPECT_CONFIG_ERROR(with_app("    instanses: 2\n"), "apps.web.instanses",
                      "did you mean \"instances\"", 11);
  EXPECT_CONFIG_ERROR("version: 1\nenviroments: {}\n", "enviroments",
                      "did you mean \"environments\"", 2);
}

TEST(ConfigErrors, DuplicateKey) {
  EXPECT_CONFIG_ERROR(with_app("    port: 8081\n"), "apps.web.port", "duplicate key", 11);
}

TEST(ConfigErrors, WrongType) {
  EXPECT_CONFIG_ERROR(with_app("    instances: many\n"), "apps.web.instances",
                      "expected an integer from 1 to 100, got \"many\"", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: [1]\n"), "apps.web.checks", "expected a map", 11);
  EXPECT_CONFIG_ERROR(with_app("    listen: [a]\n"), "apps.web.listen", "expected a string", 11);
}

TEST(ConfigErrors, OutOfRange) {
  std::string y = kMinimal;
  y.replace(y.find("port: 8080"), 10, "port: 70000");
  EXPECT_CONFIG_ERROR(y, "apps.web.port", "\"70000\" is out of range: allowed from 1 to 65535", 8);
  EXPECT_CONFIG_ERROR(with_app("    hooks:\n      pre_deploy:\n        - name: b\n"
                               "          command: [x]\n          retries: 4\n"),
                      "apps.web.hooks.pre_deploy[0].retries", "allowed from 0 to 3", 15);
}

TEST(ConfigErrors, HookExitCodes) {
  auto errs =
      errors_of(with_app("    hooks:\n      pre_deploy:\n        - name: b\n"
                         "          command: [x]\n"
                         "          transient_exit_codes: [0, 75, 256]\n"));
  EXPECT_NE(find_error(errs, "apps.web.hooks.pre_deploy[0].transient_exit_codes[0]", "1 to 255"),
            nullptr)
      << testing::dump(errs);
  EXPECT_NE(find_error(errs, "apps.web.hooks.pre_deploy[0].transient_exit_codes[2]", "1 to 255"),
            nullptr);
  EXPECT_CONFIG_ERROR(with_app("    hooks: {pre_deploy: [{name: b, command: x, "
                               "transient_exit_codes: {a: 1}}]}\n"),
                      "apps.web.hooks.pre_deploy[0].transient_exit_codes", "expected a list", 11);
}

TEST(ConfigErrors, BadDuration) {
  EXPECT_CONFIG_ERROR(with_app("    progress_deadline: 5 minutes\n"), "apps.web.progress_deadline",
                      "is not a duration", 11);
  EXPECT_CONFIG_ERROR(with_app("    progress_deadline: 30\n"), "apps.web.progress_deadline",
                      "with a unit", 11);
  EXPECT_CONFIG_ERROR(with_app("    progress_deadline: 3h\n"), "apps.web.progress_deadline",
                      "out of range: allowed 1s to 2h", 11);
}

TEST(ConfigErrors, BadTimezone) {
  std::string y = std::string(kMinimal) + "  # trailing\n";
  y.replace(y.find("requires: [staging]"), 19,
            "requires: [staging]\n    windows: [{days: Mon-Fri, start: \"09:00\", end: \"17:00\", "
            "timezone: Europe/Atlantis}]");
  EXPECT_CONFIG_ERROR(y, "environments.production.windows[0].timezone",
                      "\"Europe/Atlantis\" is not a known time zone", 6);
  y.replace(y.find("Europe/Atlantis"), 15, "../../etc/passwd");
  EXPECT_CONFIG_ERROR(y, "environments.production.windows[0].timezone", "not a known time zone", 6);
}

TEST(ConfigErrors, BadWindow) {
  auto window = [](const std::string& w) {
    std::string y = kMinimal;
    y.replace(y.find("requires: [staging]"), 19, "requires: [staging]\n    windows:\n      - " + w);
    return y;
  };
  EXPECT_CONFIG_ERROR(window("{days: Mon-Fry}"), "environments.production.windows[0].days",
                      "\"Mon-Fry\" is not a day or day range", 7);
  EXPECT_CONFIG_ERROR(window("{start: \"25:00\"}"), "environments.production.windows[0].start",
                      "is not a time of day", 7);
  EXPECT_CONFIG_ERROR(window("{start: \"17:00\", end: \"09:00\"}"),
                      "environments.production.windows[0].end", "is not after the start", 7);
  EXPECT_CONFIG_ERROR(window("{days: [Mon, Funday]}"), "environments.production.windows[0].days",
                      "\"Funday\"", 7);
}

TEST(ConfigErrors, BadFreeze) {
  std::string y = kMinimal;
  y.replace(y.find("requires: [staging]"), 19,
            "requires: [staging]\n    freezes:\n      - {from: 2026-12-26, to: 2026-12-24}\n"
            "      - {from: 2026-02-30, to: 2026-03-01}");
  EXPECT_CONFIG_ERROR(y, "environments.production.freezes[0].to", "before it starts", 7);
  EXPECT_CONFIG_ERROR(y, "environments.production.freezes[1].from", "not a calendar date", 8);
}

TEST(ConfigErrors, MissingRequired) {
  EXPECT_CONFIG_ERROR("version: 1\nenvironments: {a: {}}\napps:\n  web:\n    run: {command: x}\n",
                      "apps.web", "\"port\" is required", 5);
  EXPECT_CONFIG_ERROR("environments: {a: {}}\napps: {web: {port: 1, run: {command: x}}}\n", "",
                      "\"version\" is required", 1);
  EXPECT_CONFIG_ERROR("version: 1\napps: {web: {port: 1, run: {command: x}}}\n", "",
                      "\"environments\" is required", 1);
  EXPECT_CONFIG_ERROR(with_app("    hooks: {pre_deploy: [{name: b}]}\n"),
                      "apps.web.hooks.pre_deploy[0]", "\"command\" is required", 11);
  auto empty = errors_of("");
  ASSERT_EQ(empty.size(), 1u);
  EXPECT_NE(empty[0].message.find("empty"), std::string::npos);
}

TEST(ConfigErrors, DuplicatePort) {
  std::string y = with_app("  api:\n    port: 8080\n    run: {command: ./api}\n");
  EXPECT_CONFIG_ERROR(y, "apps.api.port", "port 8080 on 127.0.0.1 is already used by app \"web\"",
                      12);
  // A per-environment override that collides is reported at the override.
  y = with_app(
      "  api:\n    port: 9090\n    run: {command: ./api}\n"
      "    environments: {production: {port: 8080}}\n");
  EXPECT_CONFIG_ERROR(y, "apps.api.environments.production.port", "already used by app \"web\"",
                      14);
  // Different listen addresses do not collide; a wildcard collides with all.
  y = with_app("  api:\n    port: 8080\n    listen: 127.0.0.2\n    run: {command: ./api}\n");
  EXPECT_TRUE(errors_of(y).empty()) << testing::dump(errors_of(y));
  y = with_app("  api:\n    port: 8080\n    listen: 0.0.0.0\n    run: {command: ./api}\n");
  EXPECT_CONFIG_ERROR(y, "apps.api.port", "already used", 12);
}

TEST(ConfigErrors, RequiresCycle) {
  std::string y =
      "version: 1\nenvironments:\n  a: {requires: c}\n  b: {requires: [a]}\n  c: {requires: [b]}\n"
      "apps: {web: {port: 1, run: {command: x}}}\n";
  auto errs = errors_of(y);
  bool found = false;
  for (const auto& e : errs)
    found = found || e.message.find("cycle (a → c → b → a)") != std::string::npos;
  EXPECT_TRUE(found) << testing::dump(errs);
  EXPECT_CONFIG_ERROR(
      "version: 1\nenvironments:\n  a: {requires: a}\napps: {web: {port: 1, run: {command: x}}}\n",
      "environments.a.requires", "requires itself", 3);
}

TEST(ConfigErrors, RequiresFollowsFileOrder) {
  EXPECT_CONFIG_ERROR(
      "version: 1\nenvironments:\n  dev: {requires: [prod]}\n  prod: {}\n"
      "apps: {web: {port: 1, run: {command: x}}}\n",
      "environments.dev.requires[0]", "\"prod\" comes after \"dev\" in the file", 3);
}

TEST(ConfigErrors, ServerPortIsNotAnAppPort) {
  std::string y = kMinimal;
  y.replace(y.find("port: 8080"), 10, "port: 7070");
  EXPECT_CONFIG_ERROR(y, "apps.web.port", "the ferry server's own port", 8);
  y = "version: 1\nserver: {listen: \"127.0.0.1:9000\"}\n" + y.substr(11);
  EXPECT_TRUE(errors_of(y).empty()) << testing::dump(errors_of(y));
}

TEST(ConfigErrors, UnknownEnvironmentReference) {
  std::string y = kMinimal;
  y.replace(y.find("[staging]"), 9, "[stagin]");
  EXPECT_CONFIG_ERROR(y, "environments.production.requires[0]",
                      "\"stagin\" is not an environment (did you mean \"staging\"?)", 5);
  EXPECT_CONFIG_ERROR(with_app("    environments:\n      prod: {instances: 2}\n"),
                      "apps.web.environments.prod", "\"prod\" is not an environment", 12);
}

TEST(ConfigErrors, UnknownAgent) {
  std::string y = kMinimal;
  y.replace(y.find("staging: {}"), 11, "staging: {agents: [box1]}");
  EXPECT_CONFIG_ERROR(y, "environments.staging.agents[0]", "\"box1\" is not an agent", 3);
  y = "version: 1\nagents:\n  box-1: {address: 10.0.0.5:7071, tls: true}\n" + y.substr(11);
  EXPECT_CONFIG_ERROR(y, "environments.staging.agents[0]", "did you mean \"box-1\"", 5);
  EXPECT_CONFIG_ERROR("version: 1\nagents:\n  a: {address: nowhere}\n", "agents.a.address",
                      "is not an address", 3);
  EXPECT_CONFIG_ERROR("version: 1\nagents:\n  a: {address: \"::1\"}\n", "agents.a.address",
                      "is not an address", 3);
  EXPECT_CONFIG_ERROR("version: 1\nagents:\n  a: {address: \"h:0\"}\n", "agents.a.address",
                      "is not an address", 3);
  auto ok = errors_of("version: 1\nagents:\n  a: {address: \"[::1]:7071\"}\n");
  EXPECT_EQ(find_error(ok, "agents.a.address", ""), nullptr) << testing::dump(ok);
}

TEST(ConfigErrors, LocalAgentPortRangeAndLogs) {
  // The instance port range must stay outside the kernel's ephemeral range (where probes
  // take their source ports) and away from app ports.
  const std::string top = std::string(kMinimal) + "agent:\n";
  EXPECT_CONFIG_ERROR(top + "  instance_ports: 40000-40100\n", "agent.instance_ports",
                      "overlaps the kernel's ephemeral port range", 12);
  EXPECT_CONFIG_ERROR(top + "  instance_ports: 9000-8000\n", "agent.instance_ports", "FIRST-LAST",
                      12);
  EXPECT_CONFIG_ERROR(top + "  instance_ports: 8000-8100\n", "agent.instance_ports",
                      "contains port 8080 of app \"web\"", 12);
  EXPECT_CONFIG_ERROR(top + "  logs: {keep: 0}\n", "agent.logs.keep", "", 12);
  EXPECT_CONFIG_ERROR(top + "  logs: {max_size: 10XB}\n", "agent.logs.max_size", "is not a size",
                      12);
  EXPECT_CONFIG_ERROR(top + "  logz: {}\n", "agent.logz", "did you mean \"logs\"", 12);
  auto ok = check_config(
      top + "  instance_ports: 21000-21999\n  logs: {keep: 3, max_size: 512KB}\n", "ferry.yaml");
  ASSERT_TRUE(ok.errors.empty()) << testing::dump(ok.errors);
  ASSERT_TRUE(ok.config.has_value());
  EXPECT_EQ(ok.config->local_agent.instance_ports, "21000-21999");
  EXPECT_EQ(ok.config->local_agent.log_keep, 3);
  EXPECT_EQ(ok.config->local_agent.log_max_bytes, 512 * 1024);
}

// Leader election settings need a store several servers share: on SQLite (the default,
// or written) one server owns the data dir, and validate says so instead of ignoring them.
TEST(ConfigErrors, LeaseAndAdvertiseOnlyWithPostgres) {
  const std::string top = std::string(kMinimal) + "server:\n";
  EXPECT_CONFIG_ERROR(top + "  lease: 3s\n", "server.lease", "PostgreSQL store", 12);
  EXPECT_CONFIG_ERROR(top + "  store: sqlite:/var/lib/ferry/ferry.db\n  advertise: 10.0.0.5:7000\n",
                      "server.advertise", "PostgreSQL store", 13);
  EXPECT_CONFIG_ERROR(top + "  store: postgres://ferry@db/ferry\n  lease: 500ms\n", "server.lease",
                      "", 13);
  auto pg = check_config(
      top + "  store: postgres://ferry@db/ferry\n  lease: 5s\n  advertise: 10.0.0.5:7000\n",
      "ferry.yaml");
  ASSERT_TRUE(pg.errors.empty()) << testing::dump(pg.errors);
  EXPECT_EQ(pg.config->server.lease_ms, 5000);
  EXPECT_EQ(pg.config->server.advertise, "10.0.0.5:7000");
}

TEST(ConfigErrors, ScheduledBackups) {
  const std::string top = std::string(kMinimal) + "server:\n";
  EXPECT_CONFIG_ERROR(top + "  backups: {every: 1m}\n", "server.backups.every", "", 12);
  EXPECT_CONFIG_ERROR(top + "  backups: {every: 30d}\n", "server.backups.every", "", 12);
  EXPECT_CONFIG_ERROR(top + "  backups: {keep: 3}\n", "server.backups", "needs `every`", 12);
  EXPECT_CONFIG_ERROR(top + "  backups: {every: 6h, keep: 0}\n", "server.backups.keep", "", 12);
  EXPECT_CONFIG_ERROR(top + "  backups: {every: 6h, kept: 3}\n", "server.backups.kept", "", 12);
  // PostgreSQL stores are backed up too (a snapshot copied into the backup's SQLite file).
  auto pg = check_config(top + "  store: postgres://ferry@db/ferry\n  backups: {every: 6h}\n",
                         "ferry.yaml");
  EXPECT_TRUE(pg.errors.empty()) << testing::dump(pg.errors);
  auto ok = check_config(top +
                             "  backups: {every: 6h, keep: 7, dir: /var/backups/ferry, drill: "
                             "false}\n",
                         "ferry.yaml");
  ASSERT_TRUE(ok.errors.empty()) << testing::dump(ok.errors);
  ASSERT_TRUE(ok.config.has_value());
  EXPECT_EQ(ok.config->server.backups.every_ms, 6 * 3'600'000);
  EXPECT_EQ(ok.config->server.backups.keep, 7);
  EXPECT_EQ(ok.config->server.backups.dir, "/var/backups/ferry");
  EXPECT_FALSE(ok.config->server.backups.drill);
}

TEST(ConfigErrors, CanaryWeights) {
  auto canary = [](const std::string& steps) {
    return with_app("    strategy:\n      canary:\n        steps: " + steps + "\n");
  };
  EXPECT_CONFIG_ERROR(canary("[{weight: 50}, {weight: 20}, {weight: 100}]"),
                      "apps.web.strategy.canary.steps[1].weight",
                      "20 is lower than the step before", 13);
  EXPECT_CONFIG_ERROR(canary("[{weight: 10}, {weight: 150}]"),
                      "apps.web.strategy.canary.steps[1].weight", "allowed from 0 to 100", 13);
  EXPECT_CONFIG_ERROR(canary("[{weight: 10}, {pause: 1m}]"),
                      "apps.web.strategy.canary.steps[0].weight", "must end with {weight: 100}",
                      13);
  EXPECT_CONFIG_ERROR(canary("[{weight: 10, pause: 1m}, {weight: 100}]"),
                      "apps.web.strategy.canary.steps[0]", "exactly one of", 13);
  EXPECT_CONFIG_ERROR(canary("[{weight: 10}, {pause: later}, {weight: 100}]"),
                      "apps.web.strategy.canary.steps[1].pause", "until_promote", 13);
  EXPECT_CONFIG_ERROR(canary("[]"), "apps.web.strategy.canary.steps", "at least one step", 13);
}

TEST(ConfigErrors, StrategyHasOneKind) {
  EXPECT_CONFIG_ERROR(with_app("    strategy: {rolling: {}, canary: {}}\n"), "apps.web.strategy",
                      "exactly one of", 11);
  EXPECT_CONFIG_ERROR(with_app("    strategy: canery\n"), "apps.web.strategy",
                      "did you mean \"canary\"", 11);
}

TEST(ConfigErrors, AnalysisValues) {
  EXPECT_CONFIG_ERROR(with_app("    analysis: {max_error_rate: 150%}\n"),
                      "apps.web.analysis.max_error_rate", "out of range", 11);
  EXPECT_CONFIG_ERROR(with_app("    analysis: {max_error_rate: 5}\n"),
                      "apps.web.analysis.max_error_rate", "out of range", 11);
  EXPECT_CONFIG_ERROR(with_app("    analysis: {latency: {p98: 1s}}\n"),
                      "apps.web.analysis.latency.p98", "unknown key", 11);
  EXPECT_CONFIG_ERROR(with_app("    analysis: {mann_whitney: {confidence: 1.5}}\n"),
                      "apps.web.analysis.mann_whitney.confidence", "out of range", 11);
  EXPECT_CONFIG_ERROR(with_app("    analysis:\n      prometheus:\n        - {name: q, url: "
                               "ftp://x, query: up}\n"),
                      "apps.web.analysis.prometheus[0].url", "is not a URL", 13);
  EXPECT_CONFIG_ERROR(with_app("    analysis:\n      prometheus:\n        - {name: q, url: "
                               "http://127.0.0.1:9090, query: up}\n"),
                      "apps.web.analysis.prometheus[0]", "needs \"max\" or \"min\"", 13);
}

TEST(ConfigErrors, ProbeNeedsOneKind) {
  EXPECT_CONFIG_ERROR(with_app("    checks: {readiness: {interval: 1s}}\n"),
                      "apps.web.checks.readiness", "needs one of", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: {readiness: {http: {path: /h}, tcp: {}}}\n"),
                      "apps.web.checks.readiness", "exactly one", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: {readiness: {http: healthz}}\n"),
                      "apps.web.checks.readiness.http", "must start with '/'", 11);
}

TEST(ConfigErrors, RunNeedsCommandOrImage) {
  std::string y = kMinimal;
  y.replace(y.find("command: [\"./server\", \"--port\", \"${PORT}\"]"), 41, "cwd: /srv");
  EXPECT_CONFIG_ERROR(y, "apps.web.run",
                      "\"command\" (the program and its arguments) or \"image\" (a container "
                      "image) is required",
                      10);
  EXPECT_CONFIG_ERROR(with_app("    hooks: {pre_deploy: [{name: b, command: \"sh -c 'x\"}]}\n"),
                      "apps.web.hooks.pre_deploy[0].command", "unterminated", 11);
}

TEST(ConfigErrors, EnvValuesAreNeverShown) {
  auto errs =
      errors_of(with_app("    environments:\n      production:\n        env:\n"
                         "          TOKEN: [s3cr3t-value]\n"));
  const auto* e =
      find_error(errs, "apps.web.environments.production.env.TOKEN", "expected a string");
  ASSERT_NE(e, nullptr) << testing::dump(errs);
  EXPECT_EQ(e->to_string().find("s3cr3t"), std::string::npos);
  errs = errors_of(
      "version: 1\nnotifications:\n  - {name: n, type: slack, url: "
      "hooks.slack.com/services/T0/B0/s3cr3t}\n");
  e = find_error(errs, "notifications[0].url", "is not a URL");
  ASSERT_NE(e, nullptr) << testing::dump(errs);
  EXPECT_EQ(e->to_string().find("s3cr3t"), std::string::npos);
}

TEST(ConfigErrors, MessagesAreBoundedAndPrintable) {
  std::string key(5000, 'k');
  auto errs = errors_of("version: 1\n? " + key + "\n: 1\n\"bell\\a\": 2\n");
  ASSERT_GE(errs.size(), 2u) << testing::dump(errs);
  for (const auto& e : errs) {
    EXPECT_LE(e.field.size(), 210u);
    EXPECT_LE(e.message.size(), 1010u);
    for (char c : e.to_string())
      EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << e.to_string();
  }
}

TEST(ConfigErrors, ServerSection) {
  std::string rest = std::string(kMinimal).substr(11);
  auto errs = errors_of(
      "version: 1\nserver:\n  listen: 127.0.0.1\n  store: "
      "mysql://root:hunter2@db/ferry\n  start_local_agent: maybe\n" +
      rest);
  EXPECT_NE(find_error(errs, "server.listen", "is not an address: use host:port"), nullptr)
      << testing::dump(errs);
  const auto* store = find_error(errs, "server.store", "is not a store");
  ASSERT_NE(store, nullptr) << testing::dump(errs);
  EXPECT_EQ(store->to_string().find("hunter2"), std::string::npos);
  EXPECT_NE(find_error(errs, "server.start_local_agent", "expected true or false"), nullptr);
  EXPECT_EQ(errs.size(), 3u) << testing::dump(errs);
}

TEST(ConfigErrors, Notifications) {
  std::string rest = std::string(kMinimal).substr(11);
  auto errs = errors_of(
      "version: 1\nnotifications:\n  - {name: a, type: pagerduty}\n"
      "  - {name: b, type: slack}\n  - {name: a, type: webhook, url_env: U}\n"
      "  - {name: c, type: email, url_env: U}\n"
      "  - {name: d, type: webhook, url_env: U, events: [rolled_back, deploy.failed]}\n" +
      rest);
  EXPECT_NE(find_error(errs, "notifications[0]", "needs \"routing_key_env\""), nullptr)
      << testing::dump(errs);
  EXPECT_NE(find_error(errs, "notifications[1]", "needs \"url\" or \"url_env\""), nullptr);
  EXPECT_NE(find_error(errs, "notifications[2].name", "used twice"), nullptr);
  EXPECT_NE(find_error(errs, "notifications[3].type",
                       "allowed: \"slack\", \"pagerduty\" or "
                       "\"webhook\""),
            nullptr);
  EXPECT_NE(find_error(errs, "notifications[4].events", "event 'deploy.failed' is not one of"),
            nullptr)
      << testing::dump(errs);
}

TEST(ConfigErrors, InvalidNames) {
  EXPECT_CONFIG_ERROR(with_app("  Web_App!: {port: 9, run: {command: x}}\n"), "apps",
                      "is not a valid name", 11);
}

TEST(ConfigErrors, AllErrorsAreCollectedUpToACap) {
  std::string y = "version: 1\nenvironments: {a: {}}\napps:\n";
  for (int i = 0; i < 3; ++i)
    y += "  app" + std::to_string(i) + ": {port: 0, run: {command: x}, instances: -1}\n";
  auto errs = errors_of(y);
  EXPECT_EQ(errs.size(), 6u) << testing::dump(errs);
  y = "version: 1\nenvironments: {a: {}}\napps:\n";
  for (int i = 0; i < 80; ++i)
    y += "  app" + std::to_string(i) + ": {port: 0, run: {command: x}}\n";
  errs = errors_of(y);
  ASSERT_EQ(errs.size(), kMaxErrors + 1);
  EXPECT_NE(errs.back().message.find("30 more error(s)"), std::string::npos);
  // Errors come sorted by position.
  for (size_t i = 1; i + 1 < errs.size(); ++i) EXPECT_LE(errs[i - 1].line, errs[i].line);
}

TEST(ConfigErrors, Limits) {
  std::string big(kMaxConfigBytes + 1, '#');
  auto errs = errors_of(big);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].message.find("at most 1048576"), std::string::npos);
  std::string y = "version: 1\nenvironments: {a: {}}\napps:\n";
  for (int i = 0; i < 201; ++i)
    y += "  app" + std::to_string(i) + ": {port: " + std::to_string(1000 + i) +
         ", run: {command: x}}\n";
  EXPECT_CONFIG_ERROR(y, "apps", "at most 200 are allowed", 4);
  std::string steps = "[";
  for (int i = 0; i < 101; ++i) steps += "{weight: 100},";
  steps += "]";
  EXPECT_CONFIG_ERROR(with_app("    strategy: {canary: {steps: " + steps + "}}\n"),
                      "apps.web.strategy.canary.steps", "at most 100", 11);
}

TEST(ConfigErrors, AliasBombIsBounded) {
  std::string y = "version: 1\na: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    y += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) y += std::string(i ? ", " : "") + "*" + prev;
    y += "]\n";
    prev = c;
  }
  auto errs = errors_of(y);  // must return promptly with errors, not walk 10^10 nodes
  EXPECT_FALSE(errs.empty());
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

// Issue 13: run.user (syntax only; existence is the agent's check), allow_loader_env
// (only loader variables), an environment's scan gate, and the server's scan and audit
// key settings.
TEST(ConfigErrors, SecuritySettings) {
  using testing::errors_of;
  using testing::kMinimal;
  const auto app = [](const std::string& extra) { return std::string(kMinimal) + extra; };
  EXPECT_CONFIG_ERROR(app("      user: \"Bad User\"\n"), "apps.web.run.user", "is not a user name",
                      11);
  EXPECT_CONFIG_ERROR(app("      user: ../etc\n"), "apps.web.run.user", "is not a user name", 11);
  EXPECT_CONFIG_ERROR(app("      allow_loader_env: [WORKERS]\n"), "apps.web.run.allow_loader_env",
                      "is not a loader variable", 11);
  auto ok = errors_of(
      app("      user: ferry-app\n      allow_loader_env: [LD_LIBRARY_PATH, NODE_OPTIONS]\n"));
  EXPECT_TRUE(ok.empty()) << testing::dump(ok);
  std::string y = kMinimal;
  y.replace(y.find("  staging: {}"), 13, "  staging:\n    scan: sometimes");
  EXPECT_CONFIG_ERROR(y, "environments.staging.scan", "allowed: \"required\" or \"optional\"", 4);
  y = kMinimal;
  y.replace(y.find("  staging: {}"), 13, "  staging:\n    scan: optional");
  EXPECT_TRUE(errors_of(y).empty());
  auto server = errors_of(std::string(kMinimal) +
                          "server:\n  scan_ignore_file: /etc/ferry/gate.ignore\n"
                          "  audit_key_file: /etc/ferry/audit.key\n");
  EXPECT_TRUE(server.empty()) << testing::dump(server);
}

TEST(ConfigErrors, SteadyIntervalIsADurationNotBelowInterval) {
  auto ok = check_config(
      with_app("    checks: {readiness: {http: /h, interval: 200ms, steady_interval: 2s}}\n"),
      "ferry.yaml");
  ASSERT_TRUE(ok.config) << testing::dump(ok.errors);
  EXPECT_EQ(ok.config->apps.at(0).checks.readiness.interval_ms, 200);
  EXPECT_EQ(ok.config->apps.at(0).checks.readiness.steady_interval_ms, 2000);
  // Not given: 5 s (kDefaultSteadyIntervalMs), or the interval when that is longer.
  auto plain = check_config(with_app("    checks: {readiness: {http: /h}}\n"), "ferry.yaml");
  ASSERT_TRUE(plain.config) << testing::dump(plain.errors);
  EXPECT_EQ(plain.config->apps.at(0).checks.readiness.interval_ms, 1000);
  EXPECT_EQ(plain.config->apps.at(0).checks.readiness.steady_interval_ms, 5000);
  auto slow = check_config(with_app("    checks: {liveness: {tcp: {}, interval: 10s}}\n"),
                           "ferry.yaml");
  ASSERT_TRUE(slow.config) << testing::dump(slow.errors);
  EXPECT_EQ(slow.config->apps.at(0).checks.liveness.steady_interval_ms, 10000);
  // One pace throughout: steady_interval equal to interval.
  auto even = check_config(
      with_app("    checks: {readiness: {http: /h, interval: 200ms, steady_interval: 200ms}}\n"),
      "ferry.yaml");
  ASSERT_TRUE(even.config) << testing::dump(even.errors);
  EXPECT_EQ(even.config->apps.at(0).checks.readiness.steady_interval_ms, 200);
  // No probe: nothing to space.
  auto none = check_config(with_app(""), "ferry.yaml");
  ASSERT_TRUE(none.config) << testing::dump(none.errors);
  EXPECT_EQ(none.config->apps.at(0).checks.readiness.steady_interval_ms, 0);
  EXPECT_CONFIG_ERROR(
      with_app("    checks: {readiness: {http: /h, interval: 2s, steady_interval: 1s}}\n"),
      "apps.web.checks.readiness.steady_interval", "shorter than interval 2000ms", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: {liveness: {tcp: {}, steady_interval: 50ms}}\n"),
                      "apps.web.checks.liveness.steady_interval", "100ms", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: {readiness: {http: /h, steady_interval: 2h}}\n"),
                      "apps.web.checks.readiness.steady_interval", "1h", 11);
  EXPECT_CONFIG_ERROR(with_app("    checks: {readiness: {http: /h, steady_interval: often}}\n"),
                      "apps.web.checks.readiness.steady_interval", "", 11);
  // What reaches the agent keeps it, the default too (an agent reads a state without the
  // key as one pace throughout).
  Json j = ok.config->apps.at(0).checks.readiness;
  EXPECT_EQ(j.get<ProbeSpec>().steady_interval_ms, 2000);
  Json dflt = plain.config->apps.at(0).checks.readiness;
  EXPECT_EQ(dflt.value("steady_interval_ms", 0), 5000) << dflt.dump();
  Json bare = Json::parse(R"({"kind": "http", "path": "/h"})");
  EXPECT_EQ(bare.get<ProbeSpec>().steady_interval_ms, 0);
}

}  // namespace
}  // namespace ferry
