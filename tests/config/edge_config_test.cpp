// apps.<name>.tls and apps.<name>.access_log: every setting read and carried to the agent,
// and validate refusing what the router could not do: unreadable files, a key that does
// not match its certificate, an expired certificate, a plain port that collides.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "config_test_util.h"
#include "core/agent_api.h"
#include "router/test_certs.h"

namespace ferry {
namespace {

using testing::kMinimal;
using testing_router::TestCa;

class EdgeConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry-edgecfg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ca_.emplace(dir_, "test");
    good_ = ca_->issue(dir_, "good", {"a.test"});
    other_ = ca_->issue(dir_, "other", {"b.test"});
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string with_app(const std::string& body) const { return std::string(kMinimal) + body; }
  std::string with_tls(const std::string& body) const { return with_app("    tls:\n" + body); }
  std::string dir_;
  std::optional<TestCa> ca_;
  std::pair<std::string, std::string> good_, other_;
};

TEST_F(EdgeConfig, OffByDefault) {
  auto c = check_config(kMinimal, "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  EXPECT_FALSE(c.config->apps[0].router.tls.enabled());
  EXPECT_TRUE(c.config->apps[0].router.access_log.path.empty());
}

TEST_F(EdgeConfig, EverySettingIsReadAndReachesTheAgentState) {
  auto c =
      check_config(with_tls("      certificates:\n"
                            "        - {cert: " +
                            good_.first + ", key: " + good_.second + "}\n" +
                            "        - {cert: " + other_.first + ", key: " + other_.second + "}\n" +
                            "      min_version: \"1.3\"\n"
                            "      client_ca: " +
                            ca_->pem + "\n" +
                            "      http_port: 8081\n"
                            "      redirect: true\n"
                            "      hsts: {max_age: 31536000, include_subdomains: true}\n"
                            "    access_log: {path: " +
                            dir_ + "/web.log, max_size: 10MB, keep: 3}\n"),
                   "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  const RouterSpec& r = c.config->apps[0].router;
  ASSERT_EQ(r.tls.certificates.size(), 2u);
  EXPECT_EQ(r.tls.certificates[1].key_file, other_.second);
  EXPECT_EQ(r.tls.min_version, "1.3");
  EXPECT_EQ(r.tls.client_ca_file, ca_->pem);
  EXPECT_EQ(r.tls.http_port, 8081);
  EXPECT_TRUE(r.tls.redirect);
  EXPECT_EQ(r.tls.hsts_max_age_s, 31536000);
  EXPECT_TRUE(r.tls.hsts_include_subdomains);
  EXPECT_EQ(r.access_log.path, dir_ + "/web.log");
  EXPECT_EQ(r.access_log.max_bytes, 10 << 20);
  EXPECT_EQ(r.access_log.keep, 3);
  AppDesiredState d;
  d.router = r;
  Json j;
  to_json(j, d);
  AppDesiredState back;
  from_json(j, back);
  EXPECT_EQ(back.router.tls, r.tls);
  EXPECT_EQ(back.router.access_log, r.access_log);
}

TEST_F(EdgeConfig, OneCertificateShorthand) {
  auto c = check_config(
      with_tls("      cert: " + good_.first + "\n      key: " + good_.second + "\n"), "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  ASSERT_EQ(c.config->apps[0].router.tls.certificates.size(), 1u);
  EXPECT_EQ(c.config->apps[0].router.tls.min_version, "1.2");
}

TEST_F(EdgeConfig, RefusesWhatTheRouterCouldNotLoad) {
  EXPECT_CONFIG_ERROR(
      with_tls("      cert: " + dir_ + "/missing.crt\n      key: " + good_.second + "\n"),
      "apps.web.tls.cert", "cannot read", 12);
  EXPECT_CONFIG_ERROR(with_tls("      cert: good.crt\n      key: " + good_.second + "\n"),
                      "apps.web.tls.cert", "not an absolute path", 12);
  EXPECT_CONFIG_ERROR(
      with_tls("      cert: " + good_.first + "\n      key: " + other_.second + "\n"),
      "apps.web.tls.key", "does not match", 13);
  // A key file that holds a certificate, a certificate file that holds garbage.
  EXPECT_CONFIG_ERROR(with_tls("      cert: " + good_.first + "\n      key: " + good_.first + "\n"),
                      "apps.web.tls.key", "no PEM private key", 13);
  std::string junk = dir_ + "/junk.crt";
  FILE* f = fopen(junk.c_str(), "w");
  fputs("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n", f);
  fclose(f);
  EXPECT_CONFIG_ERROR(with_tls("      cert: " + junk + "\n      key: " + good_.second + "\n"),
                      "apps.web.tls.cert", "holds no PEM certificate", 12);
  auto expired = ca_->issue(dir_, "expired", {"a.test"}, -7200, -3600);
  EXPECT_CONFIG_ERROR(
      with_tls("      cert: " + expired.first + "\n      key: " + expired.second + "\n"),
      "apps.web.tls.cert", "has expired", 12);
  auto future = ca_->issue(dir_, "future", {"a.test"}, 3600, 7200);
  EXPECT_CONFIG_ERROR(
      with_tls("      cert: " + future.first + "\n      key: " + future.second + "\n"),
      "apps.web.tls.cert", "not valid yet", 12);
  EXPECT_CONFIG_ERROR(with_tls("      cert: " + good_.first + "\n      key: " + good_.second +
                               "\n      client_ca: " + dir_ + "/nope.pem\n"),
                      "apps.web.tls.client_ca", "cannot read", 14);
}

TEST_F(EdgeConfig, BadSettingsNameTheField) {
  std::string pair = "      cert: " + good_.first + "\n      key: " + good_.second + "\n";
  EXPECT_CONFIG_ERROR(with_tls(pair + "      min_version: \"1.1\"\n"), "apps.web.tls.min_version",
                      "use 1.2 or 1.3", 14);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      redirect: true\n"), "apps.web.tls.redirect",
                      "needs http_port", 14);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      http_port: 8080\n"), "apps.web.tls.http_port",
                      "the app's TLS port", 14);
  EXPECT_CONFIG_ERROR(with_tls("      min_version: \"1.2\"\n"), "apps.web.tls",
                      "tls needs a certificate", 12);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      certificates: []\n"), "apps.web.tls",
                      "either cert and key", 12);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      hsts: {max_age: -1}\n"), "apps.web.tls.hsts.max_age",
                      "out of range", 14);
  EXPECT_CONFIG_ERROR(with_app("    access_log: {path: relative.log}\n"),
                      "apps.web.access_log.path", "not an absolute file path", 11);
  EXPECT_CONFIG_ERROR(with_app("    access_log: {path: /nonexistent-ferry-dir/a.log}\n"),
                      "apps.web.access_log.path", "cannot write in", 11);
  EXPECT_CONFIG_ERROR(with_app("    access_log: {path: " + dir_ + "/a.log, max_size: 1KB}\n"),
                      "apps.web.access_log.max_size", "4KB to 16GB", 11);
}

TEST_F(EdgeConfig, Http2IsOnByDefaultAndItsSettingsReachTheAgentState) {
  std::string pair = "      cert: " + good_.first + "\n      key: " + good_.second + "\n";
  auto c = check_config(with_tls(pair), "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  EXPECT_TRUE(c.config->apps[0].router.tls.http2);
  EXPECT_EQ(c.config->apps[0].router.tls.http2_max_streams, 100);
  for (std::string extra : {"      http2: false\n", "      http2_max_streams: 250\n"}) {
    auto k = check_config(with_tls(pair + extra), "ferry.yaml");
    ASSERT_TRUE(k.config) << testing::dump(k.errors);
    const TlsSpec& t = k.config->apps[0].router.tls;
    EXPECT_EQ(t.http2, extra.find("false") == std::string::npos);
    EXPECT_EQ(t.http2_max_streams, extra.find("250") != std::string::npos ? 250 : 100);
    AppDesiredState d;
    d.router = k.config->apps[0].router;
    Json j;
    to_json(j, d);
    AppDesiredState back;
    from_json(j, back);
    EXPECT_EQ(back.router.tls, t) << extra;
  }
  EXPECT_CONFIG_ERROR(with_tls(pair + "      http2_max_streams: 0\n"),
                      "apps.web.tls.http2_max_streams", "out of range", 14);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      http2_max_streams: 5000\n"),
                      "apps.web.tls.http2_max_streams", "out of range", 14);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      http2: false\n      http2_max_streams: 10\n"),
                      "apps.web.tls.http2_max_streams", "http2 is false", 15);
  EXPECT_CONFIG_ERROR(with_tls(pair + "      http2: maybe\n"), "apps.web.tls.http2", "", 14);
}

TEST_F(EdgeConfig, PlainPortCannotTakeAnotherAppsPort) {
  std::string yaml = with_tls("      cert: " + good_.first + "\n      key: " + good_.second +
                              "\n      http_port: 9090\n") +
                     "  api:\n    port: 9090\n    run:\n      command: [\"./api\"]\n";
  auto errs = testing::errors_of(yaml);
  bool found = false;
  for (const auto& e : errs)
    if (e.message.find("already used by app") != std::string::npos) found = true;
  EXPECT_TRUE(found) << testing::dump(errs);
}

// tls.acme: read, carried to the agent, and refused where it could never be validated.
TEST_F(EdgeConfig, AcmeIsReadAndReachesTheAgentState) {
  auto c = check_config(with_tls("      http_port: 8081\n"
                                 "      redirect: true\n"
                                 "      acme:\n"
                                 "        hosts: [Example.COM, www.example.com, example.com]\n"
                                 "        email: ops@example.com\n"
                                 "        directory: https://ca.internal:14000/dir\n"
                                 "        ca_bundle: " +
                                 ca_->pem + "\n"),
                        "ferry.yaml");
  ASSERT_TRUE(c.config) << testing::dump(c.errors);
  const TlsSpec& t = c.config->apps[0].router.tls;
  EXPECT_TRUE(t.enabled());
  EXPECT_TRUE(t.certificates.empty());
  EXPECT_EQ(t.acme.hosts, (std::vector<std::string>{"example.com", "www.example.com"}));
  EXPECT_EQ(t.acme.email, "ops@example.com");
  EXPECT_EQ(t.acme.directory, "https://ca.internal:14000/dir");
  EXPECT_EQ(t.acme.ca_bundle_file, ca_->pem);
  AppDesiredState d;
  d.router = c.config->apps[0].router;
  Json j;
  to_json(j, d);
  AppDesiredState back;
  from_json(j, back);
  EXPECT_EQ(back.router.tls, t);
  // The default directory is Let's Encrypt production (port 80 then required).
  auto le = check_config(with_app("    listen: 0.0.0.0\n    tls:\n      http_port: 80\n"
                                  "      acme: {hosts: [example.com]}\n"),
                         "ferry.yaml");
  ASSERT_TRUE(le.config) << testing::dump(le.errors);
  EXPECT_EQ(le.config->apps[0].router.tls.acme.directory,
            "https://acme-v02.api.letsencrypt.org/directory");
}

TEST_F(EdgeConfig, AcmeRefusesWhatCannotBeValidated) {
  auto has = [](const std::string& yaml, const std::string& field, const std::string& text) {
    auto errs = testing::errors_of(yaml);
    return testing::find_error(errs, field, text) != nullptr
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << testing::dump(errs);
  };
  const std::string dir = "        directory: https://ca.internal/dir\n";
  EXPECT_TRUE(has(with_tls("      acme:\n        hosts: [a.example.com]\n" + dir),
                  "apps.web.tls.acme", "set tls.http_port"));
  EXPECT_TRUE(has(with_tls("      http_port: 81\n      acme:\n        hosts: []\n" + dir),
                  "apps.web.tls.acme.hosts", "at least one host"));
  for (std::string bad : {"\"*.example.com\"", "localhost", "10.0.0.1", "a..b.com", "-a.com",
                          "a_b.example.com", "\"a.com/x\""})
    EXPECT_TRUE(
        has(with_tls("      http_port: 81\n      acme:\n        hosts: [" + bad + "]\n" + dir),
            "apps.web.tls.acme.hosts",
            bad.find('*') != std::string::npos ? "wildcard" : "not a DNS name"))
        << bad;
  EXPECT_TRUE(has(with_tls("      http_port: 81\n      acme:\n        hosts: [a.example.com]\n"
                           "        directory: http://ca.internal/dir\n"),
                  "apps.web.tls.acme.directory", "not an https:// URL"));
  EXPECT_TRUE(has(with_tls("      http_port: 81\n      acme:\n        hosts: [a.example.com]\n"
                           "        email: \"not an email\"\n" +
                           dir),
                  "apps.web.tls.acme.email", "not an email address"));
  EXPECT_TRUE(has(with_tls("      http_port: 81\n      acme:\n        hosts: [a.example.com]\n"
                           "        ca_bundle: " +
                           dir_ + "/none.pem\n" + dir),
                  "apps.web.tls.acme.ca_bundle", "cannot read"));
  EXPECT_TRUE(has(with_tls("      cert: " + good_.first + "\n      key: " + good_.second +
                           "\n      http_port: 81\n      acme: {hosts: [a.example.com]}\n"),
                  "apps.web.tls.acme", "remove cert/key/certificates"));
  // Let's Encrypt validates on port 80 only, and from the internet.
  EXPECT_TRUE(has(with_tls("      http_port: 8081\n      acme: {hosts: [a.example.com]}\n"),
                  "apps.web.tls.http_port", "port 80 only"));
  EXPECT_TRUE(has(with_tls("      http_port: 80\n      acme: {hosts: [a.example.com]}\n"),
                  "apps.web.tls.acme", "loopback only"));
  auto pub = check_config(with_app("    listen: 0.0.0.0\n    tls:\n      http_port: 80\n"
                                   "      acme: {hosts: [a.example.com]}\n"),
                          "ferry.yaml");
  EXPECT_TRUE(pub.config) << testing::dump(pub.errors);
}

}  // namespace
}  // namespace ferry
