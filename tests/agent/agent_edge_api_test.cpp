// The agent's parts for load balancers and revocation (issue 16): the out mark kept across
// a restart, the stop drain, the plain readiness listener that answers readiness and
// nothing else, and the revocation list the server pushes to (only adds, needs the token).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "agent/agent_server.h"
#include "agent/edge_readiness.h"
#include "agent/http_agent_client.h"
#include "agent/revocation_list.h"
#include "common/http_client.h"
#include "common/http_server.h"

namespace ferry {
namespace {

std::filesystem::path edge_test_dir() {
  auto d = std::filesystem::temp_directory_path() /
           ("ferry-agent-edge-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::string edge_slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(RevocationList, APushOnlyAddsAndKeepsWhatTheOperatorWrote) {
  const auto dir = edge_test_dir();
  const auto path = dir / "revoked";
  std::ofstream(path) << "# by hand\nab12\n";
  RevocationList list(path.string());
  auto added = list.add({"ab12", "cd34", "cd34"});
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(*added, 1u);
  // A later push that leaves serials out (or is empty) revokes nothing less.
  ASSERT_TRUE(list.add({}).ok());
  ASSERT_TRUE(list.add({"ef56"}).ok());
  EXPECT_EQ(list.serials().value(), (std::set<std::string>{"ab12", "cd34", "ef56"}));
  EXPECT_NE(edge_slurp(path).find("# by hand\n"), std::string::npos);
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::filesystem::remove_all(dir);
}

TEST(RevocationList, ABadSerialIsNamedAndChangesNothing) {
  const auto dir = edge_test_dir();
  RevocationList list((dir / "revoked").string());
  ASSERT_TRUE(list.add({"aa"}).ok());
  const std::string before = edge_slurp(dir / "revoked");
  for (const std::string& bad :
       std::vector<std::string>{"", "AB", "ab\ncd", "zz", std::string(65, 'a'), "# x"}) {
    auto r = list.add({"bb", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("serials[1]"), std::string::npos) << r.status().message();
  }
  std::vector<std::string> many(RevocationList::kMaxSerials + 1, "ab");
  EXPECT_EQ(list.add(many).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(edge_slurp(dir / "revoked"), before);
  std::filesystem::remove_all(dir);
}

TEST(EdgeReadiness, TheOutMarkSurvivesARestart) {
  const auto dir = edge_test_dir();
  const std::string file = (dir / "edge-out").string();
  {
    EdgeReadiness e(file);
    EXPECT_FALSE(e.out());
    ASSERT_TRUE(e.set_out(true).ok());
  }
  EdgeReadiness after(file);  // the next agent process
  EXPECT_TRUE(after.out());
  ASSERT_TRUE(after.set_out(false).ok());
  EXPECT_FALSE(EdgeReadiness(file).out());
  // A mark that cannot be kept is not set either.
  EdgeReadiness nowhere((dir / "missing-dir" / "edge-out").string());
  EXPECT_FALSE(nowhere.set_out(true).ok());
  EXPECT_FALSE(nowhere.out());
  std::filesystem::remove_all(dir);
}

class AgentEdgeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = edge_test_dir();
    AgentOptions o;
    o.data_dir = (dir_ / "agent").string();
    o.tick_ms = 10;
    o.state_key = std::string(32, 'K');
    agent_ = std::make_unique<Agent>(o);
    ASSERT_TRUE(agent_->start().ok());
    edge_ = std::make_shared<EdgeReadiness>((dir_ / "edge-out").string());
    revoked_ = std::make_shared<RevocationList>((dir_ / "revoked").string());
    add_agent_routes(api_, *agent_, token_, AgentApiExtras{edge_, revoked_});
    add_readiness_routes(ready_, *agent_, edge_);
    ASSERT_TRUE(api_.start().ok());
    ASSERT_TRUE(ready_.start().ok());
  }
  void TearDown() override {
    ready_.stop();
    api_.stop();
    agent_->stop(true);
    std::filesystem::remove_all(dir_);
  }
  Result<HttpResponse> call(HttpServer& s, const std::string& method, const std::string& target,
                            const std::string& body = "", const std::string& token = "") {
    HttpClient c(Endpoint{"127.0.0.1", s.port()}, HttpClientOptions{5000, 1 << 20});
    if (!token.empty()) c.set_header("Authorization", "Bearer " + token);
    return c.request(method, target, body);
  }

  std::filesystem::path dir_;
  std::string token_ = std::string(32, 't');
  std::unique_ptr<Agent> agent_;
  std::shared_ptr<EdgeReadiness> edge_;
  std::shared_ptr<RevocationList> revoked_;
  HttpServer api_{HttpServerOptions{}};
  HttpServer ready_{HttpServerOptions{}};
};

TEST_F(AgentEdgeApi, TheReadinessListenerAnswersReadinessAndNothingElse) {
  auto r = call(ready_, "GET", "/v1/ready/web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);  // no ready instance
  EXPECT_NE(r->body.find("\"ready\":false"), std::string::npos) << r->body;
  // Nothing else, not even with the agent token.
  for (const auto& [method, target] :
       std::vector<std::pair<std::string, std::string>>{{"GET", "/v1/health"},
                                                        {"GET", "/v1/apps"},
                                                        {"GET", "/v1/generations"},
                                                        {"GET", "/metrics"},
                                                        {"GET", "/v1/revoked"},
                                                        {"PUT", "/v1/revoked"},
                                                        {"PUT", "/v1/ready"},
                                                        {"GET", "/v1/apps/web.dev"},
                                                        {"DELETE", "/v1/apps/web.dev"}}) {
    auto x = call(ready_, method, target, method == "PUT" ? "{\"out\":true}" : "", token_);
    ASSERT_TRUE(x.ok());
    EXPECT_EQ(x->status, 404) << method << " " << target << ": " << x->body;
  }
  EXPECT_FALSE(edge_->out());
}

TEST_F(AgentEdgeApi, StoppingAndOutAnswer503AndTheOutMarkIsKept) {
  auto put = call(api_, "PUT", "/v1/ready", "{\"out\":true}");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 401);  // the token is needed
  EXPECT_FALSE(edge_->out());
  put = call(api_, "PUT", "/v1/ready", "{\"out\":true}", token_);
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->status, 200) << put->body;
  EXPECT_TRUE(EdgeReadiness((dir_ / "edge-out").string()).out());
  auto r = call(ready_, "GET", "/v1/ready/web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->body.find("\"out\":true"), std::string::npos) << r->body;
  edge_->start_draining();
  r = call(api_, "GET", "/v1/ready/web.dev");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("\"stopping\":true"), std::string::npos) << r->body;
  EXPECT_TRUE(edge_->asked_within(std::chrono::minutes(1)));
}

TEST_F(AgentEdgeApi, ARevocationPushNeedsTheTokenOnlyAddsAndRefusesGarbage) {
  ASSERT_TRUE(revoked_->add({"aa11"}).ok());
  // Forged: no token, or a wrong one: refused, nothing written.
  for (const std::string& token : {std::string(), std::string(32, 'x')}) {
    auto r = call(api_, "PUT", "/v1/revoked", "{\"serials\":[\"bb22\"]}", token);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 401);
  }
  EXPECT_EQ(revoked_->serials().value(), (std::set<std::string>{"aa11"}));
  HttpAgentClient client(Endpoint{"127.0.0.1", api_.port()}, token_);
  auto added = client.push_revoked({"bb22"});
  ASSERT_TRUE(added.ok()) << added.status().message();
  EXPECT_EQ(*added, 1u);
  // A push cannot un-revoke: an empty or shorter list leaves every serial in place.
  ASSERT_TRUE(client.push_revoked({}).ok());
  EXPECT_EQ(revoked_->serials().value(), (std::set<std::string>{"aa11", "bb22"}));
  for (const std::string& body : std::vector<std::string>{
           "[]", "{\"serials\":\"aa\"}", "{\"serials\":[1]}", "{\"serials\":[\"XYZ\"]}", "nope"}) {
    auto r = call(api_, "PUT", "/v1/revoked", body, token_);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 400) << body << ": " << r->body;
  }
  EXPECT_EQ(revoked_->serials().value(), (std::set<std::string>{"aa11", "bb22"}));
}

}  // namespace
}  // namespace ferry
