// An in-process ControlPlane on a loopback port with a temporary SQLite store and no
// agents (gates, auth, releases, secrets and the audit chain need none).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/http_client.h"
#include "server/control_plane.h"

namespace ferry::testing {

class ServerFixture : public ::testing::Test {
 protected:
  // Environments YAML (indented two spaces under `environments:`).
  void start(const std::string& envs_yaml) {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-server-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    if (before_start_) before_start_();
    std::ofstream(dir_ / "ferry.yaml")
        << "version: 1\nserver:\n  listen: 127.0.0.1:7999\n  store: sqlite:"
        << (dir_ / "ferry.db").string() << "\n  data_dir: " << (dir_ / "data").string()
        << "\n  start_local_agent: false\n"
        << server_extra_ << "environments:\n"
        << envs_yaml << "apps:\n  web:\n    port: 18999\n    run:\n      command: [\"/bin/true\"]\n"
        << app_run_extra_ << "    strategy: immediate\n";
    ServerOptions o;
    o.config_path = (dir_ / "ferry.yaml").string();
    o.local_agent = false;
    o.listen = "127.0.0.1:0";
    o.log_file = (dir_ / "server.log").string();
    if (tweak_options_) tweak_options_(o);
    auto cp = ControlPlane::create(o);
    ASSERT_TRUE(cp.ok()) << cp.status().message();
    cp_ = std::move(*cp);
    Status started = cp_->start();
    ASSERT_TRUE(started.ok()) << started.message();
    auto t = cp_->auth().create("root", Role::kAdmin, {}, "test", 1);
    ASSERT_TRUE(t.ok());
    admin_ = t->token;
  }
  void TearDown() override {
    if (cp_) cp_->stop();
    cp_.reset();
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }
  std::string token(const std::string& name, Role role, std::vector<std::string> envs = {}) {
    auto t = cp_->auth().create(name, role, std::move(envs), "test", 1);
    EXPECT_TRUE(t.ok());
    return t.ok() ? t->token : "";
  }
  Result<HttpResponse> call(const std::string& tok, const std::string& method,
                            const std::string& target, const Json& body = nullptr) {
    // Generous: a release's scan or a store write may take seconds on a loaded CI machine
    // with the sanitizers on; a hung server still fails the test.
    HttpClient c(Endpoint{"127.0.0.1", cp_->port()}, HttpClientOptions{.timeout_ms = 60'000});
    if (!tok.empty()) c.set_header("Authorization", "Bearer " + tok);
    return c.request(method, target, body.is_null() ? "" : body.dump());
  }
  Json ok_json(const std::string& tok, const std::string& method, const std::string& target,
               const Json& body = nullptr) {
    auto r = call(tok, method, target, body);
    EXPECT_TRUE(r.ok()) << method << " " << target << ": " << r.status().message();
    if (!r.ok()) return {};
    EXPECT_LT(r->status, 300) << method << " " << target << ": " << r->body;
    return parse_json(r->body).ok() ? *parse_json(r->body) : Json();
  }
  // A release whose source scanned clean (the scan gate holds in most environments).
  void release(const std::string& v) {
    const auto src = dir_ / "clean-src";
    std::filesystem::create_directories(src);
    std::ofstream(src / "main.py") << "print('hello')\n";
    ok_json(admin_, "POST", "/api/v1/releases",
            Json{{"app", "web"}, {"version", v}, {"source", src.string()}});
  }
  // A release recorded without a source: scan status not_scanned.
  void unscanned_release(const std::string& v) {
    ok_json(admin_, "POST", "/api/v1/releases", Json{{"app", "web"}, {"version", v}});
  }
  Json wait_state(const std::string& id, const std::function<bool(const Json&)>& pred) {
    Json d;
    for (int i = 0; i < 100; ++i) {
      d = ok_json(admin_, "GET", "/api/v1/deployments/" + id);
      if (pred(d)) return d;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "deployment never reached the expected state: " << d.dump(2);
    return d;
  }
  std::string read_all_logs() {
    std::string all;
    for (auto& p : std::filesystem::recursive_directory_iterator(dir_)) {
      if (!p.is_regular_file() || p.path().extension() == ".db" || p.path().extension() == ".key")
        continue;
      std::ifstream f(p.path());
      all += std::string((std::istreambuf_iterator<char>(f)), {});
    }
    return all;
  }

  std::string server_extra_;            // more lines under `server:` (indented two spaces)
  std::string app_run_extra_;           // more lines under apps.web.run (indented six spaces)
  std::function<void()> before_start_;  // after dir_ is made, before the server
  std::function<void(ServerOptions&)> tweak_options_;
  std::filesystem::path dir_;
  std::unique_ptr<ControlPlane> cp_;
  std::string admin_;
};

}  // namespace ferry::testing
