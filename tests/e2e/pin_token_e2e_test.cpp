// `ferry pin-token` as an operator runs it (src/cli/pin_token_cmd.cpp): the value it prints
// is accepted by the router's check for that app, environment and release until the TTL
// ends, and by nothing else; bad input is refused with the flag or value named and no
// token printed.
#include "e2e_env.h"
#include "router/trust.h"

namespace ferry::e2e {
namespace {

class PinTokenCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ferry-pin-token-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // Runs `ferry pin-token ARGS`; the exit code, and stdout+stderr in *out.
  int pin_token(const std::string& args, std::string* out) {
    return run(ferry_bin() + " pin-token " + args, out);
  }
  std::filesystem::path dir_;
};

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

TEST_F(PinTokenCommand, PrintsATokenTheRouterAcceptsForThatAppReleaseAndTime) {
  // The key the agent's routers sign with (made as the agent makes it).
  auto key = routing::load_router_key((dir_ / "router.key").string());
  ASSERT_TRUE(key.ok()) << key.status().message();
  std::string out;
  const int64_t before = time(nullptr);
  ASSERT_EQ(pin_token("web v2 --env staging --ttl 1h --agent-data-dir " + dir_.string(), &out), 0)
      << out;
  const int64_t after = time(nullptr);
  const std::string token = trimmed(out);
  ASSERT_EQ(token.rfind("pin1.", 0), 0u) << out;
  EXPECT_EQ(token.find('\n'), std::string::npos) << "one line, the token only";

  EXPECT_EQ(routing::verify_pin_token(*key, "web.staging", token, after), "v2");
  // Valid for the TTL (1 h) and not past it.
  EXPECT_EQ(routing::verify_pin_token(*key, "web.staging", token, before + 3590), "v2");
  EXPECT_EQ(routing::verify_pin_token(*key, "web.staging", token, after + 3601), "");
  // Another environment, app or key does not take it; nor does an edited release.
  EXPECT_EQ(routing::verify_pin_token(*key, "web.production", token, after), "");
  EXPECT_EQ(routing::verify_pin_token(*key, "api.staging", token, after), "");
  EXPECT_EQ(routing::verify_pin_token(std::string(32, 'x'), "web.staging", token, after), "");
  std::string forged = token;
  forged.replace(forged.size() - 2, 2, "v3");
  EXPECT_EQ(routing::verify_pin_token(*key, "web.staging", forged, after), "");

  // The default environment is production.
  ASSERT_EQ(pin_token("web v2 --ttl 30m --agent-data-dir " + dir_.string(), &out), 0) << out;
  EXPECT_EQ(routing::verify_pin_token(*key, "web.production", trimmed(out), after), "v2");
}

TEST_F(PinTokenCommand, BadInputIsRefusedByNameAndPrintsNoToken) {
  ASSERT_TRUE(routing::load_router_key((dir_ / "router.key").string()).ok());
  const std::string d = " --agent-data-dir " + dir_.string();
  struct Case {
    std::string args, names;
  };
  const Case cases[] = {
      {"web v2 --ttl 0s" + d, "--ttl"},
      {"web v2 --ttl 8d" + d, "--ttl"},
      {"web v2 --ttl banana" + d, "--ttl"},
      {"web v2 --ttl -1h" + d, "--ttl"},
      {"web 'v 2' --ttl 1h" + d, "v 2"},
      {"web 'v2;x' --ttl 1h" + d, "v2;x"},
      {"web " + std::string(129, 'r') + " --ttl 1h" + d, "is not a release version"},
      {"web v2 --ttl 1h --agent-data-dir " + (dir_ / "nowhere").string(), "no router key at"},
  };
  for (const auto& c : cases) {
    std::string out;
    EXPECT_NE(pin_token(c.args, &out), 0) << c.args;
    EXPECT_NE(out.find(c.names), std::string::npos) << c.args << ": " << out;
    EXPECT_EQ(out.find("pin1."), std::string::npos) << c.args << ": " << out;
  }
  // A key file too short to sign with is named, not used.
  std::filesystem::create_directories(dir_ / "short");
  std::ofstream(dir_ / "short" / "router.key") << "tiny";
  std::string out;
  EXPECT_NE(pin_token("web v2 --agent-data-dir " + (dir_ / "short").string(), &out), 0);
  EXPECT_NE(out.find("shorter than 32 bytes"), std::string::npos) << out;
  EXPECT_EQ(out.find("pin1."), std::string::npos) << out;
}

}  // namespace
}  // namespace ferry::e2e
