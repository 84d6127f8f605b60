// The control plane's API without agents: auth and roles, the approval and window gates,
// the scan gate, secrets that never come back out, and the audit chain.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>

#include "server/auth.h"
#include "server/server_fixture.h"
#include "wait_until.h"

namespace ferry::testing {
namespace {

const char* kEnvs =
    "  dev: {}\n"
    "  production:\n    requires: [dev]\n    approvals: 1\n"
    "  frozen:\n    freezes:\n      - {from: 2000-01-01, to: 2999-12-31, timezone: UTC, reason: "
    "forever}\n";

class ServerTest : public ServerFixture {
 protected:
  void SetUp() override { start(kEnvs); }
};

TEST_F(ServerTest, EveryApiCallNeedsAValidToken) {
  EXPECT_EQ(call("", "GET", "/api/v1/apps")->status, 401);
  EXPECT_EQ(call("ferry_0000_bad", "GET", "/api/v1/apps")->status, 401);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/apps")->status, 200);
  EXPECT_EQ(call("", "GET", "/health/live")->status, 200);
  const std::string tok = token("temp", Role::kViewer);
  const std::string id = tok.substr(6, tok.find('_', 6) - 6);
  EXPECT_EQ(call(tok, "GET", "/api/v1/apps")->status, 200);
  ok_json(admin_, "DELETE", "/api/v1/tokens/" + id);
  EXPECT_EQ(call(tok, "GET", "/api/v1/apps")->status, 401);
}

TEST_F(ServerTest, NonCanonicalPathsAndRawBytesCannotSlipPastAuth) {
  for (const char* p :
       {"//api/v1/apps", "/./api/v1/audit/verify", "/x/../api/v1/apps", "//metrics"}) {
    auto r = call("", "GET", p);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << p << ": " << r->body;
  }
  // A path with bytes that are not UTF-8 is answered, and the server lives on.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(cp_->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string raw = "GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(write(fd, raw.data(), raw.size()), static_cast<ssize_t>(raw.size()));
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof buf);
  close(fd);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)).rfind("HTTP/1.1 401", 0), 0u);
  EXPECT_EQ(call(admin_, "GET", "/api/v1/apps")->status, 200);
  // Wrong method on a known path.
  EXPECT_EQ(call(admin_, "DELETE", "/api/v1/apps")->status, 405);
}

TEST_F(ServerTest, RolesAndEnvironmentScopesAreEnforcedAndDenialsAudited) {
  release("v1");
  const std::string viewer = token("vic", Role::kViewer);
  const std::string dev_only = token("dana", Role::kDeployer, {"dev"});
  auto r = call(viewer, "POST", "/api/v1/deployments",
                Json{{"app", "web"}, {"env", "dev"}, {"release", "v1"}});
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("needs deployer"), std::string::npos);
  r = call(dev_only, "POST", "/api/v1/deployments",
           Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("not allowed in environment production"), std::string::npos);
  EXPECT_EQ(call(viewer, "POST", "/api/v1/tokens", Json{{"name", "x"}, {"role", "admin"}})->status,
            403);
  // A denial is audited once its answer has gone out: wait for the third.
  Json audit;
  auto denials = [&] {
    int n = 0;
    for (const auto& e : audit["entries"]) n += e.value("action", "") == "api.denied";
    return n;
  };
  EXPECT_TRUE(wait_until([&] {
    audit = ok_json(admin_, "GET", "/api/v1/audit");
    return denials() >= 3;
  }));
  for (const auto& e : audit["entries"])
    if (e.value("action", "") == "api.denied")
      EXPECT_EQ(e.value("source_addr", "").rfind("127.0.0.1", 0), 0u) << e.dump();
  EXPECT_EQ(denials(), 3);
}

TEST_F(ServerTest, ProductionWaitsForAnApprovalThatIsNotTheRequesters) {
  release("v1");
  // Lifecycle: v1 never succeeded in dev, so production refuses it outright.
  Json d = ok_json(admin_, "POST", "/api/v1/deployments",
                   Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  d = wait_state(d["id"], [](const Json& j) { return j.value("state", "") == "failed"; });
  EXPECT_NE(d.value("reason", "").find("has not succeeded in dev"), std::string::npos) << d.dump();
}

TEST_F(ServerTest, SelfApprovalIsRefusedAndAnotherApproverOpensTheGate) {
  release("v1");
  // Pretend v1 succeeded in dev.
  ASSERT_TRUE(cp_->store().set_env_release({"web", "dev", "v1", "d-x", 1}).ok());
  const std::string alice = token("alice", Role::kApprover);
  const std::string bob = token("bob", Role::kApprover);
  Json d = ok_json(alice, "POST", "/api/v1/deployments",
                   Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  const std::string id = d["id"];
  d = wait_state(id, [](const Json& j) { return j.value("state", "") == "waiting"; });
  EXPECT_NE(d.value("reason", "").find("approv"), std::string::npos) << d.dump();
  auto r = call(alice, "POST", "/api/v1/approvals",
                Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}});
  EXPECT_EQ(r->status, 403) << r->body;
  // A deployer may not approve at all.
  const std::string dep = token("dave", Role::kDeployer);
  EXPECT_EQ(call(dep, "POST", "/api/v1/approvals",
                 Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}})
                ->status,
            403);
  ok_json(bob, "POST", "/api/v1/approvals",
          Json{{"app", "web"}, {"env", "production"}, {"release", "v1"}, {"comment", "lgtm"}});
  d = wait_state(id, [](const Json& j) { return j.value("state", "") != "waiting"; });
  // The approval opened the gate. (What happens after it does not matter here: this
  // fixture runs no agent, so the deployment then fails to place its instances.)
  bool opened = false;
  for (const auto& e : d["events"]) opened |= e.value("type", "") == "gates_passed";
  EXPECT_TRUE(opened) << d.dump();
}

TEST_F(ServerTest, FreezeHoldsADeploymentUntilAnAdminOverridesWithAReason) {
  release("v1");
  Json d = ok_json(admin_, "POST", "/api/v1/deployments",
                   Json{{"app", "web"}, {"env", "frozen"}, {"release", "v1"}});
  const std::string id = d["id"];
  d = wait_state(id, [](const Json& j) { return j.value("state", "") == "waiting"; });
  EXPECT_NE(d.value("reason", "").find("forever"), std::string::npos) << d.dump();
  const std::string dep = token("dave", Role::kDeployer);
  EXPECT_EQ(call(dep, "POST", "/api/v1/deployments/" + id + "/override",
                 Json{{"reason", "hotfix for outage"}})
                ->status,
            403);
  EXPECT_EQ(call(admin_, "POST", "/api/v1/deployments/" + id + "/override", Json{{"reason", "x"}})
                ->status,
            400);
  ok_json(admin_, "POST", "/api/v1/deployments/" + id + "/override",
          Json{{"reason", "hotfix for outage"}});
  d = wait_state(id, [](const Json& j) { return j.value("state", "") != "waiting"; });
  bool audited = false;
  Json entries = ok_json(admin_, "GET", "/api/v1/audit")["entries"];
  for (const auto& e : entries)
    audited |= e.value("action", "") == "gate.override" &&
               e["details"].value("reason", "") == "hotfix for outage";
  EXPECT_TRUE(audited) << entries.dump(1);
}

TEST_F(ServerTest, ScanGateRefusesSecretsAndOnlyAnAdminWithAReasonOverrides) {
  const auto src = dir_ / "src";
  std::filesystem::create_directories(src);
  std::ofstream(src / "config.py") << "aws_key = \"AKIAZ7QX3NB4KD2LP6WY\"\naws_secret = \""
                                   << "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"
                                   << "\"\n";
  const std::string dep = token("dave", Role::kDeployer);
  Json body{{"app", "web"}, {"version", "v9"}, {"source", src.string()}};
  auto r = call(dep, "POST", "/api/v1/releases", body);
  EXPECT_EQ(r->status, 412) << r->body;
  EXPECT_EQ(r->body.find("AKIAZ7QX3NB4KD2LP6WY"), std::string::npos) << "secret must be redacted";
  // A tree outside the server's folders is not read at all.
  Json outside{{"app", "web"}, {"version", "v8"}, {"source", "/etc"}};
  EXPECT_EQ(call(admin_, "POST", "/api/v1/releases", outside)->status, 403);
  body["override_scan"] = true;
  body["reason"] = "rotated already, test fixture";
  EXPECT_EQ(call(dep, "POST", "/api/v1/releases", body)->status, 403);
  body["reason"] = "short";
  EXPECT_EQ(call(admin_, "POST", "/api/v1/releases", body)->status, 400);
  body["reason"] = "rotated already, test fixture";
  Json rel = ok_json(admin_, "POST", "/api/v1/releases", body);
  EXPECT_EQ(rel.value("scan_status", ""), "overridden");
}

TEST_F(ServerTest, SecretValueNeverComesBackOutAndIsMaskedEverywhere) {
  const std::string value = "s3cr3t-Value-Only-The-App-Sees-8841";
  ok_json(admin_, "PUT", "/api/v1/apps/web/envs/dev/secrets/DB_PASSWORD", Json{{"value", value}});
  Json list = ok_json(admin_, "GET", "/api/v1/apps/web/envs/dev/secrets");
  ASSERT_EQ(list["secrets"].size(), 1u);
  EXPECT_EQ(list["secrets"][0].value("name", ""), "DB_PASSWORD");
  // Decrypted for injection, stored only as ciphertext.
  EXPECT_EQ(cp_->secrets_for("web", "dev").at("DB_PASSWORD"), value);
  auto rows = cp_->store().list_secrets("web", "dev");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0].ciphertext.find(value), std::string::npos);
  // A deployer may list names but not set; nothing returns the value.
  const std::string dep = token("dave", Role::kDeployer);
  EXPECT_EQ(
      call(dep, "PUT", "/api/v1/apps/web/envs/dev/secrets/X", Json{{"value", "abcdefgh"}})->status,
      403);
  for (const char* path : {"/api/v1/apps", "/api/v1/audit", "/api/v1/events", "/api/v1/deployments",
                           "/api/v1/apps/web/envs/dev/secrets"}) {
    auto r = call(admin_, "GET", path);
    EXPECT_EQ(r->body.find(value), std::string::npos) << path;
  }
  cp_->log().info("a line quoting " + value);
  cp_->audit("test", "probe", "web", "dev", "", "", Json{{"echo", value}});
  cp_->stop();
  EXPECT_EQ(read_all_logs().find(value), std::string::npos);
  auto audit = cp_->store().list_audit(0, 1000);
  for (const auto& a : *audit) EXPECT_EQ(a.details.dump().find(value), std::string::npos);
}

TEST_F(ServerTest, AuditChainVerifiesAndATamperedEntryIsPinpointed) {
  release("v1");
  release("v2");
  Json v = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_TRUE(v.value("ok", false)) << v.dump();
  EXPECT_GE(v.value("entries", 0), 3);
  // An attacker with the database file: drop the guard trigger and edit entry 2.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "ferry.db").string().c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 30'000);  // the running server may be writing for a moment
  char* err = nullptr;
  sqlite3_exec(db, "SELECT name FROM sqlite_master", nullptr, nullptr, nullptr);
  std::vector<std::string> triggers;
  sqlite3_exec(
      db, "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name='audit'",
      [](void* out, int, char** cols, char**) {
        static_cast<std::vector<std::string>*>(out)->push_back(cols[0]);
        return 0;
      },
      &triggers, &err);
  for (const auto& t : triggers)
    sqlite3_exec(db, ("DROP TRIGGER " + t).c_str(), nullptr, nullptr, &err);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE audit SET actor='token:mallory' WHERE seq=2", nullptr, nullptr,
                         &err),
            SQLITE_OK)
      << (err ? err : "");
  sqlite3_close(db);
  v = ok_json(admin_, "GET", "/api/v1/audit/verify");
  EXPECT_FALSE(v.value("ok", true));
  EXPECT_EQ(v.value("first_bad_seq", 0), 2) << v.dump();
}

TEST(Auth, TokensAreHashedAtRestAndRolesOrdered) {
  auto store = open_store("sqlite::memory:");
  if (!store.ok()) store = open_store("sqlite:/tmp/ferry-auth-" + std::to_string(getpid()) + ".db");
  ASSERT_TRUE(store.ok());
  Authenticator auth(store->get());
  auto t = auth.create("ci", Role::kDeployer, {"dev"}, "test", 1000, 5000);
  ASSERT_TRUE(t.ok());
  auto rec = (*store)->get_token(t->record.id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->hash.find(t->token), std::string::npos);
  EXPECT_NE(rec->hash, t->token);
  auto p = auth.authenticate("Bearer " + t->token, 2000);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->allow(Role::kDeployer, "dev").ok());
  EXPECT_EQ(p->allow(Role::kApprover, "dev").code(), Code::kPermissionDenied);
  EXPECT_EQ(p->allow(Role::kViewer, "production").code(), Code::kPermissionDenied);
  EXPECT_EQ(auth.authenticate(t->token, 7000).status().code(), Code::kUnauthenticated);  // expired
  std::string forged = t->token;
  forged.back() = forged.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(auth.authenticate(forged, 2000).status().code(), Code::kUnauthenticated);
  EXPECT_EQ(auth.create("bad name!", Role::kViewer, {}, "t", 1).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(parse_role("root").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::testing
