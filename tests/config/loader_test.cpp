// What a valid ferry.yaml becomes: the example file, defaults, and each accepted form.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "config_test_util.h"
#include "test_paths.h"

namespace ferry {
namespace {

Config parse_ok(const std::string& yaml) {
  auto r = check_config(yaml, "ferry.yaml");
  EXPECT_TRUE(r.config.has_value()) << testing::dump(r.errors);
  return r.config ? *r.config : Config{};
}

TEST(ConfigLoader, ExampleFileLoads) {
  auto r = load_config(testing::source_dir() + "/examples/ferry.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  const Config& c = *r;
  ASSERT_EQ(c.environments.size(), 3u);
  EXPECT_EQ(c.environments[0].name, "dev");  // file order is promotion order
  EXPECT_EQ(c.environments[1].name, "staging");
  EXPECT_EQ(c.environments[2].name, "production");
  const EnvironmentSpec* prod = c.environment("production");
  ASSERT_NE(prod, nullptr);
  EXPECT_EQ(prod->requires_envs, std::vector<std::string>{"staging"});
  EXPECT_EQ(prod->approvals, 1);
  ASSERT_EQ(prod->windows.size(), 1u);
  EXPECT_EQ(prod->windows[0].days, (std::vector<int>{1, 2, 3, 4, 5}));
  EXPECT_EQ(prod->windows[0].start_minute, 9 * 60);
  EXPECT_EQ(prod->windows[0].end_minute, 17 * 60);
  EXPECT_EQ(prod->windows[0].timezone, "America/Los_Angeles");
  const AppSpec* web = c.app("web");
  ASSERT_NE(web, nullptr);
  EXPECT_EQ(web->port, 8080);
  EXPECT_EQ(web->run.command.at(0), "${FERRY_EXAMPLES_BIN}/ferry-demo-app");
  EXPECT_EQ(web->strategy.kind, StrategySpec::Kind::kCanary);
  ASSERT_FALSE(web->strategy.steps.empty());
  EXPECT_EQ(web->strategy.steps.back().weight, 100);
  EXPECT_DOUBLE_EQ(web->analysis.max_error_rate, 0.02);
  ASSERT_EQ(web->hooks.pre_deploy.size(), 1u);
  EXPECT_EQ(web->hooks.pre_deploy[0].name, "backup");
  EXPECT_EQ(c.app_for_env(*web, "production").instances, 3);
}

TEST(ConfigLoader, DocumentedExamplesAreValid) {
  auto r = load_config(testing::source_dir() + "/tests/config/data/reference.yaml");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->apps.size(), 5u);
  EXPECT_EQ(r->notifications.size(), 3u);
  EXPECT_EQ(r->app("web")->strategy.steps.size(), 7u);
}

TEST(ConfigLoader, Defaults) {
  Config c = parse_ok(testing::kMinimal);
  EXPECT_EQ(c.path, "ferry.yaml");
  EXPECT_EQ(c.server.listen, "127.0.0.1:7070");
  EXPECT_TRUE(c.server.start_local_agent);
  const AppSpec& a = c.apps.at(0);
  EXPECT_EQ(a.listen, "127.0.0.1");
  EXPECT_EQ(a.instances, 1);
  EXPECT_EQ(a.strategy.kind, StrategySpec::Kind::kRolling);
  EXPECT_EQ(a.strategy.batch_size, 1);
  EXPECT_EQ(a.checks.readiness.kind, ProbeSpec::Kind::kNone);
  EXPECT_EQ(a.run.stop_grace_ms, 10'000);
  EXPECT_EQ(a.progress_deadline_ms, 60'000);
  EXPECT_EQ(a.rollback_policy, "rollback");
  EXPECT_DOUBLE_EQ(a.analysis.max_error_rate, 0.05);
  EXPECT_TRUE(a.analysis.mann_whitney);
  const EnvironmentSpec& s = c.environments.at(0);
  EXPECT_EQ(s.approvals, 0);
  EXPECT_EQ(s.approval_ttl_ms, 24 * 3600'000);
  EXPECT_TRUE(s.windows.empty());
}

TEST(ConfigLoader, AcceptedForms) {
  Config c = parse_ok(R"Y(version: 1
agents:
  box-1: {address: "10.0.0.5:7071", token_file: /etc/ferry/box1.token, tls: true}
environments:
  prod:
    agents: box-1
    approval_ttl: 1h30m
    windows:
      - {days: [Sat, Sun], start: "10:00", end: "12:00"}
      - {days: "Fri-Mon"}
    freezes:
      - {from: "2026-12-24T18:00", to: 2026-12-26, reason: holidays}
apps:
  web:
    port: 8080
    run:
      command: ./server --port "${PORT}" --name 'a b'
      stop_grace: 1.5s
    checks:
      readiness: {http: /healthz, interval: 500ms}
      liveness: {tcp: {}, failure_threshold: 5}
    strategy: {blue_green: {keep_old_for: 5m, auto_promote: false}}
    analysis:
      max_error_rate: "5%"
      latency: {p99: 500ms, p99_ratio: 1.5, p50: 20ms}
      mann_whitney: false
      prometheus:
        - {name: errors, url: "http://127.0.0.1:9090", query: "sum(rate(x[1m]))", max: 0.1}
    hooks:
      post_deploy:
        - {name: smoke, command: "curl -f http://127.0.0.1:8080/", transient_exit_codes: [75, 7]}
  worker:
    port: 8081
    run: {command: ["./worker", "--port", "${PORT}"]}
    strategy: {canary: {steps: [{weight: 0}, {pause: until_promote}, {analysis: default}, {weight: 100}]}}
    environments:
      prod: {port: 9081, instances: 0, env: {MODE: prod}}
)Y");
  EXPECT_EQ(c.agents.at(0).address, "10.0.0.5:7071");
  const EnvironmentSpec& e = c.environments.at(0);
  EXPECT_EQ(e.agents, std::vector<std::string>{"box-1"});
  EXPECT_EQ(e.approval_ttl_ms, 90 * 60'000);
  EXPECT_EQ(e.windows.at(0).days, (std::vector<int>{0, 6}));
  EXPECT_EQ(e.windows.at(1).days, (std::vector<int>{0, 1, 5, 6}));
  EXPECT_EQ(e.windows.at(1).start_minute, 0);
  EXPECT_EQ(e.windows.at(1).end_minute, 24 * 60);
  EXPECT_EQ(e.freezes.at(0).from, "2026-12-24T18:00");
  const AppSpec& web = c.apps.at(0);
  EXPECT_EQ(web.run.command,
            (std::vector<std::string>{"./server", "--port", "${PORT}", "--name", "a b"}));
  EXPECT_EQ(web.run.stop_grace_ms, 1500);
  EXPECT_EQ(web.checks.readiness.kind, ProbeSpec::Kind::kHttp);
  EXPECT_EQ(web.checks.readiness.path, "/healthz");
  EXPECT_EQ(web.checks.readiness.interval_ms, 500);
  EXPECT_EQ(web.checks.liveness.kind, ProbeSpec::Kind::kTcp);
  EXPECT_EQ(web.checks.liveness.failure_threshold, 5);
  EXPECT_EQ(web.strategy.kind, StrategySpec::Kind::kBlueGreen);
  EXPECT_EQ(web.strategy.keep_old_ms, 5 * 60'000);
  EXPECT_FALSE(web.strategy.auto_promote);
  EXPECT_DOUBLE_EQ(web.analysis.max_error_rate, 0.05);
  ASSERT_EQ(web.analysis.latency.size(), 2u);  // p50, then p99 (absolute and ratio merged)
  EXPECT_EQ(web.analysis.latency[0].metric, "p50");
  EXPECT_EQ(web.analysis.latency[1].metric, "p99");
  EXPECT_DOUBLE_EQ(web.analysis.latency[1].max_ms, 500);
  EXPECT_DOUBLE_EQ(web.analysis.latency[1].max_ratio, 1.5);
  EXPECT_FALSE(web.analysis.mann_whitney);
  ASSERT_EQ(web.analysis.prometheus.size(), 1u);
  EXPECT_EQ(web.analysis.prometheus[0].max, 0.1);
  EXPECT_FALSE(web.analysis.prometheus[0].min.has_value());
  EXPECT_EQ(web.hooks.post_deploy.at(0).transient_exit_codes, (std::vector<int>{75, 7}));
  const AppSpec& worker = c.apps.at(1);
  EXPECT_EQ(worker.run.command, (std::vector<std::string>{"./worker", "--port", "${PORT}"}));
  ASSERT_EQ(worker.strategy.steps.size(), 4u);
  EXPECT_TRUE(worker.strategy.steps[1].until_promote);
  EXPECT_EQ(worker.strategy.steps[2].kind, CanaryStep::Kind::kAnalysis);
  EXPECT_EQ(worker.strategy.steps[2].analysis_ms, 0);
  AppSpec w = c.app_for_env(worker, "prod");
  EXPECT_EQ(w.port, 9081);
  EXPECT_EQ(w.instances, 0);
  EXPECT_EQ(w.run.env.at("MODE"), "prod");
}

TEST(ConfigLoader, AnchorsInExtensionKeys) {
  Config c = parse_ok(R"(version: 1
x-run: &run {command: ./server, stop_grace: 3s}
environments: {prod: {}}
apps:
  a: {port: 1, run: *run}
  b: {port: 2, run: *run}
)");
  ASSERT_EQ(c.apps.size(), 2u);
  EXPECT_EQ(c.apps[1].run.stop_grace_ms, 3000);
  EXPECT_EQ(c.apps[1].run.command, std::vector<std::string>{"./server"});
}

TEST(ConfigLoader, ParseConfigStatusListsEveryError) {
  auto r = parse_config("version: 1\nbogus: 1\nalso_bogus: 2\n", "x.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("x.yaml:2:1: bogus: unknown key"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("\nx.yaml:3:1: also_bogus"), std::string::npos);
}

TEST(ConfigLoader, MissingFile) {
  auto r = load_config("/nonexistent/ferry.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
}

// Runs `ferry validate` and returns its exit code and output.
std::pair<int, std::string> validate(const std::string& args) {
  std::string out;
  FILE* p = popen((testing::ferry_binary() + " validate " + args + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

TEST(ValidateCommand, ExitCodesAndOutput) {
  auto [code, out] = validate(testing::source_dir() + "/examples/ferry.yaml");
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "ok: 1 apps, 3 environments\n");

  std::string bad = ::testing::TempDir() + "/ferry_bad.yaml";
  std::ofstream(bad) << "version: 1\nenvironments: {a: {}}\napps:\n  web: {port: 0, "
                        "run: {command: x}, instanses: 2}\n";
  std::tie(code, out) = validate(bad);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find(bad + ":4:15: apps.web.port: \"0\" is out of range"), std::string::npos)
      << out;
  EXPECT_NE(out.find(bad + ":4:37: apps.web.instanses: unknown key"), std::string::npos) << out;

  std::tie(code, out) = validate("/nonexistent/ferry.yaml");
  EXPECT_EQ(code, 2) << out;
  std::tie(code, out) = validate(::testing::TempDir());  // a directory
  EXPECT_EQ(code, 2) << out;

  std::ofstream(bad) << std::string(kMaxConfigBytes + 10, '#');
  std::tie(code, out) = validate(bad);
  EXPECT_EQ(code, 1) << out;
  EXPECT_EQ(out, bad + ": the file is larger than 1048576 bytes, the limit\n");
  std::remove(bad.c_str());
}

}  // namespace
}  // namespace ferry
